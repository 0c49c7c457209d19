//! The `athens` command: configuration, wiring of the PostgreSQL and search adapters into the sync
//! engine and the API, and one subcommand per job.

mod cli;
mod commands;
mod config;
mod emf;
mod logging;
mod progress;
mod recorder;
mod shutdown;
mod wiring;

use std::process::ExitCode;

use athens_core::ErrorChain;
use clap::Parser;

use crate::cli::Cli;

/// Exit code for a configuration problem (bad value, missing file).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running (unreachable service, missing schema, ...).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match config::load(&cli.global) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("athens: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logging::init(&settings.log);
    let metrics = recorder::install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("athens: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli.command, settings, metrics)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("athens: {}", ErrorChain(error.as_ref()));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
