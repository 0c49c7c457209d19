//! Real processes: CPU seconds and peak memory read from `/proc`, the services' processes (the
//! PostgreSQL postmaster and its backends, the engine's JVM), and `athens` run as a child.
//!
//! CPU seconds are `utime + stime` of `/proc/<pid>/stat`. PostgreSQL forks a backend per
//! connection, so its figure is the postmaster's own time, plus the time of its exited children
//! (`cutime + cstime`, added when the postmaster reaps them), plus the time of its live children: a
//! backend that exits between two readings moves from the third term to the second, and the sum
//! stays monotonic.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Clock ticks per second of the `/proc` CPU counters (`getconf CLK_TCK`, 100 on Linux).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/<pid>/stat` after the command name: `[0]` is the state, `[1]` the parent
/// pid, `[11..15]` utime, stime, cutime, cstime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn ticks(fields: &[String], index: usize) -> f64 {
    fields
        .get(index)
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// CPU seconds a process has used itself (all its threads), `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    Some((ticks(&fields, 11) + ticks(&fields, 12)) / ticks_per_second())
}

/// The machine's CPU counters from the first line of `/proc/stat`: (busy ticks, all ticks), all cores
/// together; `iowait` and `idle` count as not busy.
pub fn machine_ticks() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<f64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    let all: f64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    Some((all - idle, all))
}

/// The share of all cores busy between two [`machine_ticks`] readings, 0 to 1.
pub fn machine_busy(before: Option<(f64, f64)>, after: Option<(f64, f64)>) -> f64 {
    match (before, after) {
        (Some((busy0, all0)), Some((busy1, all1))) if all1 > all0 => {
            (busy1 - busy0) / (all1 - all0)
        }
        _ => f64::NAN,
    }
}

/// CPU seconds of a process and all its children, live or reaped (see the module docs).
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    let mut total =
        ticks(&fields, 11) + ticks(&fields, 12) + ticks(&fields, 13) + ticks(&fields, 14);
    let parent = pid.to_string();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(child_fields) = stat_fields(child)
                && child_fields.get(1) == Some(&parent)
            {
                total += ticks(&child_fields, 11) + ticks(&child_fields, 12);
            }
        }
    }
    Some(total / ticks_per_second())
}

/// The peak resident set of a live process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The services whose CPU a measurement splits out.
#[derive(Debug, Clone, Copy)]
pub struct Services {
    /// The PostgreSQL postmaster.
    pub postgres: u32,
    /// The search engine's JVM.
    pub engine: u32,
}

impl Services {
    /// Finds the postmaster (first line of `postmaster.pid`) of the services `deploy/local/up`
    /// started in `athens_home`, and the engine JVM (its pid file under `run/`) of those it started
    /// in `engine_home` (the same directory, or an engine instance of a benchmark's own).
    pub fn find(athens_home: &Path, engine_home: &Path, engine: &str) -> anyhow::Result<Services> {
        let read_pid = |path: PathBuf| -> anyhow::Result<u32> {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            text.lines()
                .next()
                .and_then(|line| line.trim().parse().ok())
                .with_context(|| format!("no pid in {}", path.display()))
        };
        let services = Services {
            postgres: read_pid(athens_home.join("pg/data/postmaster.pid"))?,
            engine: read_pid(engine_home.join(format!("run/{engine}.pid")))?,
        };
        if cpu_seconds(services.postgres).is_none() || cpu_seconds(services.engine).is_none() {
            bail!("PostgreSQL or the engine is not running: start them with deploy/local/up");
        }
        Ok(services)
    }

    /// CPU seconds used so far by PostgreSQL (all backends) and by the engine.
    pub fn cpu(&self) -> CpuReading {
        CpuReading {
            postgres: tree_cpu_seconds(self.postgres).unwrap_or(f64::NAN),
            engine: cpu_seconds(self.engine).unwrap_or(f64::NAN),
            at: Instant::now(),
        }
    }
}

/// One reading of the services' CPU counters.
#[derive(Debug, Clone, Copy)]
pub struct CpuReading {
    /// PostgreSQL's CPU seconds.
    pub postgres: f64,
    /// The engine's CPU seconds.
    pub engine: f64,
    /// When it was read.
    pub at: Instant,
}

impl CpuReading {
    /// CPU seconds each used since `earlier`: (postgres, engine, wall seconds).
    pub fn since(&self, earlier: &CpuReading) -> (f64, f64, f64) {
        (
            self.postgres - earlier.postgres,
            self.engine - earlier.engine,
            (self.at - earlier.at).as_secs_f64(),
        )
    }
}

/// How to run the `athens` binary against the benchmark's database and index.
#[derive(Debug, Clone)]
pub struct Athens {
    /// The binary.
    pub bin: PathBuf,
    /// Environment of every run (database, engine, alias, log filter).
    pub env: Vec<(String, String)>,
    /// Where children's output goes.
    pub log_dir: PathBuf,
}

impl Athens {
    fn command(&self, args: &[&str], log: &str) -> anyhow::Result<Command> {
        let mut command = Command::new(&self.bin);
        command.args(args).stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let path = self.log_dir.join(format!("bench-{log}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        command.stderr(file);
        Ok(command)
    }

    /// Runs `athens args…` to completion and returns its standard output; fails unless it exits 0.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command(args, args.first().copied().unwrap_or("athens"))?
            .stdout(Stdio::piped())
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !output.status.success() {
            bail!(
                "athens {args:?} exited with {} (log: {}/bench-{}.log)",
                output.status,
                self.log_dir.display(),
                args.first().copied().unwrap_or("athens")
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `athens args…` in the background, with `extra` environment variables.
    pub fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> anyhow::Result<Running> {
        let log = args.first().copied().unwrap_or("athens");
        let mut command = self.command(args, log)?;
        for (key, value) in extra {
            command.env(key, value);
        }
        let path = self.log_dir.join(format!("bench-{log}.out"));
        command.stdout(File::create(&path)?);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        Ok(Running::watch(child))
    }
}

/// A child process whose CPU and peak memory are followed until it ends.
pub struct Running {
    child: Child,
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    cpu_at_exit: Arc<AtomicU64>,
    started: Instant,
}

/// What a finished child used.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// How it ended.
    pub status: Option<ExitStatus>,
    /// Its CPU seconds.
    pub cpu: f64,
    /// Its peak resident set in MiB.
    pub peak_rss_mib: f64,
    /// Its wall time.
    pub wall: Duration,
}

impl Running {
    fn watch(child: Child) -> Running {
        let pid = child.id();
        let peak_kib = Arc::new(AtomicU64::new(0));
        let cpu_at_exit = Arc::new(AtomicU64::new(0));
        let (peak, cpu) = (peak_kib.clone(), cpu_at_exit.clone());
        // Samples VmHWM (a high-water mark, so sampling misses nothing once read late enough) and
        // the CPU counters, which stay readable while the child is a zombie.
        tokio::spawn(async move {
            loop {
                if let Some(kib) = peak_rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                match cpu_seconds(pid) {
                    Some(seconds) => cpu.store(seconds.to_bits(), Ordering::Relaxed),
                    None => return,
                }
                if stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z")) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Running {
            child,
            pid,
            peak_kib,
            cpu_at_exit,
            started: Instant::now(),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU seconds used so far.
    pub fn cpu(&self) -> f64 {
        cpu_seconds(self.pid)
            .unwrap_or_else(|| f64::from_bits(self.cpu_at_exit.load(Ordering::Relaxed)))
    }

    /// Whether the child still runs (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        stat_fields(self.pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
    }

    /// Waits for the child to exit by itself.
    pub async fn wait(mut self) -> anyhow::Result<Usage> {
        while self.alive() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.finish()
    }

    /// Asks the child to stop (SIGTERM), waits for it (SIGKILL after 30 s).
    pub async fn stop(mut self) -> anyhow::Result<Usage> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.finish()
    }

    fn finish(&mut self) -> anyhow::Result<Usage> {
        let cpu = self.cpu();
        let status = self.child.wait()?;
        Ok(Usage {
            status: Some(status),
            cpu,
            peak_rss_mib: self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0,
            wall: self.started.elapsed(),
        })
    }
}
