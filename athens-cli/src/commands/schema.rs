//! `migrate`, `seed`, `setup`, `teardown` and `grant-runtime`: the demo schema, its data, change
//! capture, and the runtime role.
#![allow(clippy::print_stdout)] // command output for the user

use std::time::Instant;

use anyhow::{Context, bail};
use athens_core::SourceLookup;
use athens_pg::CaptureMode;

use crate::cli::{GrantRuntimeArgs, SeedArgs};
use crate::config::Settings;
use crate::progress::Progress;
use crate::wiring;

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    let applied = source.migrate().await?;
    println!("schema up to date ({applied} migration(s) applied)");
    Ok(())
}

pub async fn seed(settings: &Settings, args: &SeedArgs) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    source.check_schema().await?;
    let existing = source.count().await?;
    if existing > 0 && !args.force {
        if args.if_empty {
            println!("database already holds {existing} projects, not seeding");
            return Ok(());
        }
        bail!(
            "the database already holds {existing} projects: pass --force to add more, or --if-empty to skip"
        );
    }
    let mut options = athens_pg::SeedOptions::scaled(args.projects);
    options.seed = args.seed;
    if let Some(users) = args.users {
        options.users = users;
    }
    if let Some(hashtags) = args.hashtags {
        options.hashtags = hashtags;
    }
    let started = Instant::now();
    let mut progress = Progress::new("projects", options.projects);
    let report = source.seed(&options, |done| progress.set(done)).await?;
    progress.finish();
    println!(
        "seeded {} projects, {} users, {} hashtags in {:.1} s",
        report.projects,
        report.users,
        report.hashtags,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn setup(settings: &Settings) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    source.check_schema().await?;
    let capture = &settings.capture;
    match capture.mode {
        CaptureMode::Outbox => {
            // A slot left from the logical mode would retain WAL for nobody.
            source.remove_logical_capture(capture).await?;
            source
                .install_partitioned_capture(capture.partitions)
                .await?;
            if capture.partitions.get() > 1 {
                println!(
                    "change capture installed (outbox, {} partitions)",
                    capture.partitions
                );
            } else {
                println!("change capture installed (outbox)");
            }
        }
        CaptureMode::Logical => {
            source.install_logical_capture(capture).await?;
            println!(
                "change capture installed (logical decoding: publication {}, slot {})",
                capture.publication,
                source.slot_name(capture).await?
            );
        }
    }
    Ok(())
}

pub async fn teardown(settings: &Settings) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    source.remove_logical_capture(&settings.capture).await?;
    source.remove_capture().await?;
    println!("change capture removed (your tables are untouched)");
    // The writers' claim indexes (`<alias>-claim-<writer>`) are Athens' alone; the search index
    // itself stays and keeps serving.
    let index = wiring::engine(settings)
        .await
        .context("could not remove the writer claim indexes")?;
    index
        .drop_claims()
        .await
        .context("could not remove the writer claim indexes")?;
    println!("writer claim indexes of {} removed", index.alias());
    Ok(())
}

/// Where `grant-runtime` reads the runtime role's password (a secret, never a flag).
pub const RUNTIME_PASSWORD: &str = "ATHENS_RUNTIME_PASSWORD";

pub async fn grant_runtime(settings: &Settings, args: &GrantRuntimeArgs) -> anyhow::Result<()> {
    let Some(password) = std::env::var(RUNTIME_PASSWORD)
        .ok()
        .filter(|p| !p.is_empty())
    else {
        bail!("{RUNTIME_PASSWORD} is not set: it holds the password the runtime role logs in with");
    };
    let source = wiring::database(settings).await?;
    source.grant_runtime(&args.role, &password).await?;
    println!(
        "role {} may now run sync and serve (docs/operations.md \"Least privilege\")",
        args.role
    );
    Ok(())
}
