//! A process's resident memory and thread count, read from `/proc/PID/status`
//! (Linux): what the benchmark reports and the reliability tests bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Memory and threads of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStatus {
    pub rss_kib: u64,
    pub threads: u64,
}

impl ProcessStatus {
    /// The status of process `pid`, if it can be read.
    pub fn of(pid: u32) -> Option<ProcessStatus> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        Some(ProcessStatus {
            rss_kib: field("VmRSS:")?,
            threads: field("Threads:")?,
        })
    }

    pub fn rss_bytes(&self) -> f64 {
        self.rss_kib as f64 * 1024.0
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// The larger of each figure.
    pub fn max(self, other: ProcessStatus) -> ProcessStatus {
        ProcessStatus {
            rss_kib: self.rss_kib.max(other.rss_kib),
            threads: self.threads.max(other.threads),
        }
    }
}

/// Samples a process's status every 50 ms on a thread of its own: the
/// peaks over a stretch of work.
pub struct PeakWatcher {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<Option<ProcessStatus>>,
}

impl PeakWatcher {
    pub fn start(pid: u32) -> PeakWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak: Option<ProcessStatus> = None;
            while !stopped.load(Ordering::Relaxed) {
                // The process may be gone before the watcher is stopped.
                let Some(now) = ProcessStatus::of(pid) else {
                    break;
                };
                peak = Some(peak.map_or(now, |peak| peak.max(now)));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        PeakWatcher { stop, sampler }
    }

    /// The highest RSS and thread count seen; None if the process was never seen.
    pub fn stop(self) -> Option<ProcessStatus> {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_a_thread() {
        let status = ProcessStatus::of(std::process::id()).expect("/proc/self/status");
        assert!(status.rss_kib > 0 && status.threads >= 1);
        assert_eq!(ProcessStatus::of(u32::MAX), None);
    }
}
