//! What a test logged: a `tracing` subscriber that writes into memory, for tests that assert on log
//! lines (an error's whole chain in a warning, ...).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

/// The log lines written while the guard of [`CapturedLogs::start`] lives, on this thread.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Makes a plain-text subscriber writing here this thread's default until the guard drops.
    pub fn start() -> (CapturedLogs, DefaultGuard) {
        let logs = CapturedLogs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Another test thread may have cached a callsite's interest while no subscriber of this
        // thread existed; recompute it so this thread's events are not dropped.
        tracing::callsite::rebuild_interest_cache();
        (logs.clone(), guard)
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// The first line that contains `message`.
    pub fn line(&self, message: &str) -> Option<String> {
        self.text()
            .lines()
            .find(|line| line.contains(message))
            .map(str::to_owned)
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> CapturedLogs {
        self.clone()
    }
}
