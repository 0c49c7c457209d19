//! The periodic capture check while syncing (issue 12, finding 6): capture disabled or dropped
//! under a running `athens run` is noticed within the check interval, in the log, in
//! `athens_capture_healthy` on `/metrics` and in `athens status`; and its return likewise.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Running, World, engines, free_port};

/// The check interval the test configures (`sync.capture_check_interval_ms`).
const INTERVAL: Duration = Duration::from_secs(1);
/// How long past the interval a notice may take: a batch in flight, a poll's wait, a loaded
/// machine. Well under the default interval (60 s), which the test would not meet.
const SLACK: Duration = Duration::from_secs(9);

/// `athens_capture_healthy` as `/metrics` shows it, `None` before the first check.
async fn healthy(base: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("athens_capture_healthy "))
        .and_then(|value| value.trim().parse().ok())
}

fn alarms(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("change capture is missing or disabled")
        .count()
}

/// Waits until the gauge reads `want` (and, for an alarm, the log said so once more than before),
/// at most `within`; returns how long it took.
async fn noticed(
    base: &str,
    log: &Path,
    want: f64,
    alarms_before: usize,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let gauge = healthy(base).await;
        let logged = want == 1.0 || alarms(log) > alarms_before;
        if gauge == Some(want) && logged {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "capture_healthy still {gauge:?} (want {want}), alarm logged: {logged}, after {:?}\n{}",
            started.elapsed(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ALTER TABLE projects <action> TRIGGER` for each capture trigger of `projects`.
async fn switch_triggers(world: &World, action: &str) {
    world
        .sql(&format!(
            "DO $$ DECLARE s text; BEGIN \
             SELECT string_agg(format('ALTER TABLE projects {action} TRIGGER %I', tgname), '; ') INTO s \
             FROM pg_trigger WHERE tgrelid = 'projects'::regclass AND tgname LIKE 'athens\\_capture\\_%'; \
             EXECUTE s; END $$"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn capture_disabled_or_dropped_while_syncing_is_noticed_within_the_check_interval() {
    let engine = &engines().await[0];
    let world = World::new("capture-check", engine).await.unwrap();
    world.prepare(20).unwrap();
    let port = free_port();
    let config = std::env::temp_dir().join(format!("{}.toml", world.alias));
    std::fs::write(
        &config,
        format!(
            "[sync]\ncapture_check_interval_ms = {}\n",
            INTERVAL.as_millis()
        ),
    )
    .unwrap();
    let log = std::env::temp_dir().join(format!("{}.log", world.alias));
    let mut run = Running(Some(
        world
            .athens(&["run"])
            .env("ATHENS_CONFIG", &config)
            .env("ATHENS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    // The first check runs once the backfill is done and streaming begins.
    let took = noticed(&base, &log, 1.0, 0, Duration::from_secs(120)).await;
    eprintln!("capture healthy reported {took:?} after start");

    // Disabled (an operator, a restore script): the triggers stay, silent.
    switch_triggers(&world, "DISABLE").await;
    let took = noticed(&base, &log, 0.0, 0, INTERVAL + SLACK).await;
    eprintln!("disabled capture noticed after {took:?}");
    let status = world.run(&["status", "--json"]).unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "status fails while capture is off"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|error| {
            panic!(
                "status --json printed no report ({error}): {}",
                String::from_utf8_lossy(&status.stderr)
            )
        });
    assert!(
        report["capture_error"]
            .as_str()
            .is_some_and(|error| error.contains("projects")),
        "{report:#}"
    );

    switch_triggers(&world, "ENABLE ALWAYS").await;
    let took = noticed(&base, &log, 1.0, 0, INTERVAL + SLACK).await;
    eprintln!("capture back noticed after {took:?}");
    assert!(world.status().unwrap()["capture_error"].is_null());

    // Dropped: `athens setup` of another deployment, a migration that re-created the table.
    let before = alarms(&log);
    world
        .sql(
            "DO $$ DECLARE s text; BEGIN \
             SELECT string_agg(format('DROP TRIGGER %I ON projects', tgname), '; ') INTO s \
             FROM pg_trigger WHERE tgrelid = 'projects'::regclass AND tgname LIKE 'athens\\_capture\\_%'; \
             EXECUTE s; END $$",
        )
        .await
        .unwrap();
    let took = noticed(&base, &log, 0.0, before, INTERVAL + SLACK).await;
    eprintln!("dropped capture noticed after {took:?}");
    assert_eq!(world.run(&["status"]).unwrap().status.code(), Some(1));

    assert_eq!(run.stop(), Some(0), "the sync goes on while it alarms");
    world.cleanup().await;
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_file(&log);
}
