//! The failure everybody fears, on a PostgreSQL of the test's own: a slot whose consumer is away
//! retains WAL until `max_slot_wal_keep_size` makes the server invalidate it; the next poll
//! re-creates the slot, and the engine rebuilds every document from a snapshot, so the index ends
//! equal to the database, the changes made while the slot was lost included.
//!
//! The shared test server cannot be given a small `max_slot_wal_keep_size` (it needs a superuser
//! and would affect every other test), so this test runs `initdb` and `pg_ctl` from the newest
//! `/usr/lib/postgresql/*/bin` (as the `postgres` OS user when run as root) on a free port, and
//! stops and removes the cluster at the end. About 3 s.

use athens_core::KeysetPage;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use athens_core::{ChangeSource, DocumentSource, Table};
use athens_pg::{CaptureConfig, PgSource};

use crate::support::{SMALL_SEED, config, exec, quick_engine, scalar, seeded_engine, truncated};

/// A throwaway PostgreSQL cluster, stopped and deleted on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

fn server_binaries() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("initdb and pg_ctl in /usr/lib/postgresql/*/bin")
}

/// `program args…`, as the `postgres` OS user when this process is root (the server refuses root).
fn as_owner(program: &Path, args: &[&str]) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    let mut command = if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .output()
        .expect("run a PostgreSQL binary");
    assert!(
        output.status.success(),
        "{program:?} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    fn start() -> Cluster {
        let bin = server_binaries();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let data = std::env::temp_dir().join(format!("athens-small-wal-{port}"));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&data)
            .status();
        let cluster = Cluster { bin, data, port };
        let data = cluster.data.to_string_lossy().into_owned();
        as_owner(
            &cluster.bin.join("initdb"),
            &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        let options = format!(
            "-p {port} -k {data} -c listen_addresses=127.0.0.1 -c wal_level=logical \
             -c max_slot_wal_keep_size=1MB -c max_wal_size=64MB -c min_wal_size=32MB \
             -c fsync=off"
        );
        as_owner(
            &cluster.bin.join("pg_ctl"),
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                &format!("{data}/log"),
                "-w",
                "start",
            ],
        );
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        as_owner(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

#[tokio::test]
async fn an_invalidated_slot_is_recreated_and_the_index_rebuilt() {
    let cluster = Cluster::start();
    let source = PgSource::connect(&config(&cluster.url())).await.unwrap();
    source.migrate().await.unwrap();
    let capture = CaptureConfig::logical();
    source.install_logical_capture(&capture).await.unwrap();
    let changes = Arc::new(source.logical(&capture).await.unwrap());
    let (engine, index) =
        seeded_engine(&source, changes.clone(), &SMALL_SEED, quick_engine()).await;
    engine.acquire_lease().await.unwrap();
    engine.drain().await.unwrap();
    let expected = || async {
        source
            .load_page(KeysetPage::first(1000))
            .await
            .unwrap()
            .documents
    };
    assert_eq!(index.live_documents(), expected().await);

    // The consumer is away: a change to the documents, then WAL until the server gives up on
    // the slot.
    exec(
        &source,
        "UPDATE projects SET name = 'changed while the slot was lost' WHERE id = 1;
         DELETE FROM projects WHERE id = 2;
         CREATE TABLE filler (payload text);",
    )
    .await;
    let slot = source.slot_name(&capture).await.unwrap();
    let status = format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND wal_status = 'lost'"
    );
    for _ in 0..20 {
        if scalar(&source, &status).await == 1 {
            break;
        }
        exec(
            &source,
            "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 4000);
             SELECT pg_switch_wal(); CHECKPOINT;",
        )
        .await;
    }
    let lost = source.slot_status(&capture).await.unwrap().unwrap();
    assert_eq!(lost.wal_status, "lost", "{lost:?}");

    // The next poll re-creates the slot and asks for a rebuild; the engine does it.
    let mut asked = Vec::new();
    for _ in 0..3 {
        // The first poll finds the slot unusable; the next one re-creates it.
        if let Ok(records) = changes.poll(100, Duration::from_secs(5)).await {
            asked = records.into_iter().map(|record| record.change).collect();
            break;
        }
    }
    assert_eq!(asked, vec![truncated(Table::Projects)]);
    engine.drain().await.unwrap();
    let rebuilt = index.live_documents();
    assert_eq!(rebuilt, expected().await);
    assert_eq!(rebuilt[0].name, "changed while the slot was lost");
    assert_ne!(
        source
            .slot_status(&capture)
            .await
            .unwrap()
            .unwrap()
            .wal_status,
        "lost"
    );
    // And streaming goes on in the new slot.
    exec(&source, "UPDATE projects SET name = 'after' WHERE id = 3").await;
    engine.drain().await.unwrap();
    assert_eq!(index.live_documents(), expected().await);
    engine.release_lease().await.unwrap();
    source.remove_logical_capture(&capture).await.unwrap();
    source.close().await;
}
