//! The processes under chaos: two `athens sync` (one writes, one waits as a standby), restarted
//! like a supervisor would, and maintenance jobs (`athens reindex`, `athens verify --repair`) that
//! take the writer lease over from them; and a monitor of who holds the lease.
//!
//! Each process logs in to PostgreSQL under its own `application_name` (a configuration file of
//! its own), so the monitor reads the lease holder from `pg_locks`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::support::{World, signal};

/// The supervised sync processes.
pub const SYNCS: [&str; 2] = ["soak-sync-a", "soak-sync-b"];

/// A maintenance job the chaos starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Reindex,
    Repair,
}

/// How a job ended.
#[derive(Debug)]
pub struct JobEnd {
    pub kind: JobKind,
    pub name: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub seconds: f64,
}

struct Job {
    kind: JobKind,
    name: String,
    child: Child,
    stdout: PathBuf,
    started: Instant,
}

struct Slot {
    name: &'static str,
    child: Option<Child>,
    last_start: Instant,
}

/// The processes, their logs (one file for the syncs, one per job) and configuration files.
pub struct Fleet<'a> {
    world: &'a World,
    database_url: String,
    engine_url: String,
    dir: PathBuf,
    log: PathBuf,
    slots: Vec<Slot>,
    job: Option<Job>,
    jobs_started: u64,
    /// Syncs stay down until a job holds the lease, or this instant passes.
    paused_until: Option<Instant>,
    /// A killed leader stays down until the other sync took the lease over, or this instant
    /// passes: otherwise it could come back first and take the lease again itself.
    held_down: Option<(usize, Instant)>,
    pub starts: u64,
    /// Exit statuses of sync processes that ended without being killed.
    pub own_exits: Vec<Option<i32>>,
    pub ended: Vec<JobEnd>,
}

impl<'a> Fleet<'a> {
    pub fn new(world: &'a World, database_url: String, engine_url: String) -> Fleet<'a> {
        let dir = std::env::temp_dir().join(format!("{}-soak", world.alias));
        std::fs::create_dir_all(&dir).unwrap();
        Fleet {
            world,
            database_url,
            engine_url,
            log: dir.join("athens.log"),
            dir,
            slots: SYNCS
                .iter()
                .map(|name| Slot {
                    name,
                    child: None,
                    last_start: Instant::now(),
                })
                .collect(),
            job: None,
            jobs_started: 0,
            paused_until: None,
            held_down: None,
            starts: 0,
            own_exits: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// A process's command: through the proxies, under its own `application_name`, its logs
    /// into `log`.
    fn command(&self, name: &str, args: &[&str], log: &Path) -> std::process::Command {
        let config = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!("[database]\napplication_name = \"{name}\"\n"),
        )
        .unwrap();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = self.world.athens(args);
        command
            .env("ATHENS_DATABASE_URL", &self.database_url)
            .env("ATHENS_ENGINE_URL", &self.engine_url)
            .env("ATHENS_CONFIG", config)
            .stderr(Stdio::from(log));
        command
    }

    fn start(&mut self, at: usize) {
        let child = self
            .command(self.slots[at].name, &["sync"], &self.log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.slots[at].child = Some(child);
        self.slots[at].last_start = Instant::now();
        self.starts += 1;
    }

    /// Starts both syncs.
    pub fn start_all(&mut self) {
        for at in 0..self.slots.len() {
            self.start(at);
        }
    }

    /// Reaps what ended; restarts syncs that are down (at most once a second each) unless paused
    /// for a job that has not taken the lease yet.
    pub fn watch(&mut self, holder: Option<&str>) {
        for slot in &mut self.slots {
            if let Some(child) = slot.child.as_mut()
                && let Some(status) = child.try_wait().unwrap()
            {
                self.own_exits.push(status.code());
                slot.child = None;
            }
        }
        if let Some(job) = self.job.as_mut()
            && let Some(status) = job.child.try_wait().unwrap()
        {
            let job = self.job.take().unwrap();
            self.ended.push(JobEnd {
                kind: job.kind,
                name: job.name,
                code: status.code(),
                stdout: std::fs::read_to_string(&job.stdout).unwrap_or_default(),
                seconds: job.started.elapsed().as_secs_f64(),
            });
        }
        if let Some(until) = self.paused_until {
            let job_leads = self
                .job
                .as_ref()
                .is_some_and(|job| holder == Some(job.name.as_str()));
            if job_leads || self.job.is_none() || Instant::now() >= until {
                self.paused_until = None;
            }
        }
        if let Some((at, until)) = self.held_down {
            let other_leads = holder
                .is_some_and(|holder| SYNCS.contains(&holder) && holder != self.slots[at].name);
            if other_leads || Instant::now() >= until {
                self.held_down = None;
            }
        }
        if self.paused_until.is_none() {
            for at in 0..self.slots.len() {
                let held = self.held_down.is_some_and(|(down, _)| down == at);
                if !held
                    && self.slots[at].child.is_none()
                    && self.slots[at].last_start.elapsed() >= Duration::from_secs(1)
                {
                    self.start(at);
                }
            }
        }
    }

    /// Whether `holder` is one of the syncs (not a job, not nobody).
    pub fn is_sync(&self, holder: Option<&str>) -> bool {
        self.slots.iter().any(|slot| Some(slot.name) == holder)
    }

    /// SIGKILLs the sync holding the lease (the first one when no sync holds it).
    pub fn kill_leader(&mut self, holder: Option<&str>) {
        self.watch(holder);
        let at = self
            .slots
            .iter()
            .position(|slot| Some(slot.name) == holder)
            .unwrap_or(0);
        if let Some(mut child) = self.slots[at].child.take() {
            signal(&mut child, "KILL").unwrap();
            self.held_down = Some((at, Instant::now() + Duration::from_secs(8)));
        }
    }

    /// Whether a job is running.
    pub fn job_running(&self) -> bool {
        self.job.is_some()
    }

    /// Starts a job and hands it the lease: the syncs are SIGKILLed (a crash, so the lease passes
    /// when their sessions end) and stay down until the job holds the lease (at most 20 s).
    pub fn start_job(&mut self, kind: JobKind) {
        self.jobs_started += 1;
        let name = format!(
            "soak-{}-{}",
            match kind {
                JobKind::Reindex => "reindex",
                JobKind::Repair => "repair",
            },
            self.jobs_started
        );
        let args: &[&str] = match kind {
            JobKind::Reindex => &["reindex"],
            JobKind::Repair => &["verify", "--repair", "--json", "--lease-wait-secs", "120"],
        };
        let stdout = self.dir.join(format!("{name}.out"));
        let child = self
            .command(&name, args, &self.dir.join(format!("{name}.log")))
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .spawn()
            .unwrap();
        self.job = Some(Job {
            kind,
            name,
            child,
            stdout,
            started: Instant::now(),
        });
        self.paused_until = Some(Instant::now() + Duration::from_secs(20));
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                signal(&mut child, "KILL").unwrap();
            }
        }
    }

    /// SIGTERMs every sync; the exit statuses.
    pub fn stop(&mut self) -> Vec<Option<i32>> {
        let mut codes = Vec::new();
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                match child.try_wait().unwrap() {
                    Some(status) => {
                        self.own_exits.push(status.code());
                        codes.push(status.code());
                    }
                    None => codes.push(signal(&mut child, "TERM").unwrap()),
                }
            }
        }
        codes
    }

    /// Kills a job still running (at the end of a run that waited long enough).
    pub fn kill_job(&mut self) {
        if let Some(mut job) = self.job.take() {
            signal(&mut job.child, "KILL").unwrap();
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Why sync processes ended by themselves: the last line each printed (`athens: …`), cut
    /// before its details, with how often it came.
    pub fn exit_reasons(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut reasons = BTreeMap::new();
        for line in text.lines().filter(|line| line.starts_with("athens: ")) {
            let reason: String = line.chars().take(90).collect();
            *reasons.entry(reason).or_insert(0) += 1;
        }
        reasons
    }

    pub fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Who holds the writer lease, sampled five times a second, and how often it changed hands.
#[derive(Default)]
pub struct LeaseWatch {
    holder: Mutex<Option<String>>,
    last: Mutex<Option<String>>,
    handovers: Mutex<Vec<(String, String)>>,
}

impl LeaseWatch {
    pub fn holder(&self) -> Option<String> {
        self.holder.lock().unwrap().clone()
    }

    /// Each change of holder: (from, to).
    pub fn handovers(&self) -> Vec<(String, String)> {
        self.handovers.lock().unwrap().clone()
    }
}

pub async fn watch_lease(sql: DatabaseConnection, watch: Arc<LeaseWatch>, stop: Arc<AtomicBool>) {
    let query = "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted \
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND a.application_name LIKE 'soak-%'";
    while !stop.load(Ordering::Relaxed) {
        let row = sql
            .query_one_raw(Statement::from_string(
                sql.get_database_backend(),
                query.to_string(),
            ))
            .await;
        if let Ok(row) = row {
            let holder: Option<String> = row.and_then(|row| row.try_get_by_index(0).ok());
            if let Some(now) = &holder {
                let mut last = watch.last.lock().unwrap();
                if let Some(before) = last.as_ref()
                    && before != now
                {
                    watch
                        .handovers
                        .lock()
                        .unwrap()
                        .push((before.clone(), now.clone()));
                }
                *last = Some(now.clone());
            }
            *watch.holder.lock().unwrap() = holder;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
