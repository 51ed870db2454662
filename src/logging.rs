//! The server's log output: lines are buffered and written to stderr by a
//! thread of their own, in batches. A line logged per call then costs its
//! formatting and a copy on the completion-queue thread, not a write(2) (the
//! cost of each is measured in `docs/tuning-log.md`).

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long the writer lets lines gather after the first one of a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Past this many buffered bytes (stderr is slow or blocked), the logging
/// thread writes them itself: memory stays bounded.
const MAX_BUFFERED: usize = 1 << 20;

#[derive(Default)]
struct Shared {
    lines: Mutex<Vec<u8>>,
    ready: Condvar,
}

/// Drains the buffer when dropped: keep it until the process ends.
pub struct LogFlush(Arc<Shared>);

/// Sends `env_logger`'s output (default filter `default_filter`, overridden by
/// `RUST_LOG`) to stderr through the batch writer.
pub fn init(default_filter: &str) -> LogFlush {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter));
    let shared = Arc::new(Shared::default());
    let writer = shared.clone();
    // Without the thread, lines are written where they are logged, as usual.
    if std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn(move || write_batches(&writer))
        .is_ok()
    {
        builder.target(env_logger::Target::Pipe(Box::new(BatchedStderr(
            shared.clone(),
        ))));
        // env_logger cannot see that the pipe ends in a terminal: colour as it would.
        if std::env::var_os("RUST_LOG_STYLE").is_none() && io::stderr().is_terminal() {
            builder.write_style(env_logger::WriteStyle::Always);
        }
    }
    builder.init();
    LogFlush(shared)
}

/// Writes out what is buffered. Every writer takes stderr's lock before the
/// lines' lock, so batches leave in the order they were logged.
fn write_buffered(shared: &Shared) {
    let mut stderr = io::stderr().lock();
    let batch = std::mem::take(&mut *shared.lines.lock());
    // Nowhere to report a failed write of the log itself.
    let _ = stderr.write_all(&batch);
}

fn write_batches(shared: &Shared) {
    loop {
        let mut lines = shared.lines.lock();
        while lines.is_empty() {
            shared.ready.wait(&mut lines);
        }
        drop(lines);
        std::thread::sleep(BATCH_WINDOW);
        write_buffered(shared);
    }
}

struct BatchedStderr(Arc<Shared>);

impl Write for BatchedStderr {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let overflowing = {
            let mut lines = self.0.lines.lock();
            if lines.is_empty() {
                self.0.ready.notify_one();
            }
            lines.extend_from_slice(line);
            lines.len() > MAX_BUFFERED
        };
        if overflowing {
            write_buffered(&self.0);
        }
        Ok(line.len())
    }

    /// `env_logger` flushes after every line: the batch writer does it later.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogFlush {
    fn drop(&mut self) {
        write_buffered(&self.0);
    }
}
