//! Progress of long jobs: a bar with rate and ETA on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// How often progress is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Reports progress towards a known total.
pub struct Progress {
    what: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    logged: Instant,
}

impl Progress {
    /// Starts reporting `what` (e.g. "projects") towards `total`.
    pub fn new(what: &'static str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            what,
            total,
            bar,
            started: now,
            logged: now,
        }
    }

    /// Records that `done` items are finished so far.
    pub fn set(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if self.logged.elapsed() >= LOG_EVERY {
            self.logged = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / seconds;
            let eta = if rate > 0.0 {
                self.total.saturating_sub(done) as f64 / rate
            } else {
                f64::NAN
            };
            info!(
                what = self.what,
                done,
                total = self.total,
                rate = rate.round(),
                eta_seconds = eta.round(),
                "progress"
            );
        }
    }

    /// Ends the report.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
