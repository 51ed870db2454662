//! A closed-loop load: each worker starts its next call when its last one
//! ends. Calls that start after the warm-up and before the window ends are
//! counted and timed. `bench` (grpcio) and `loadgen` (h2) both drive their
//! workers with [`worker`], each on its own executor.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::{latency_histogram, record_latency};

/// The unmeasured warm-up, then the measured window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    pub fn starting_now(warmup: Duration, duration: Duration) -> Window {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            end: measure_from + duration,
        }
    }

    /// Whether a call started at `start` counts.
    pub fn measures(&self, start: Instant) -> bool {
        start >= self.measure_from && start < self.end
    }
}

/// What workers saw in the measured window.
#[derive(Debug)]
pub struct Tally {
    /// Calls answered (and checked).
    pub calls: u64,
    pub latencies: Histogram<u64>,
    /// Calls that failed without stopping their worker, by kind (a status code).
    pub failures: BTreeMap<&'static str, u64>,
    last_done: Option<Instant>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            calls: 0,
            latencies: latency_histogram(),
            failures: BTreeMap::new(),
            last_done: None,
        }
    }
}

impl Tally {
    /// Counts a call started at `start` and done now, if the window measures it.
    pub fn record(&mut self, window: &Window, start: Instant) {
        if window.measures(start) {
            let done = Instant::now();
            self.calls += 1;
            record_latency(&mut self.latencies, done - start);
            self.last_done = Some(done);
        }
    }

    /// Counts a failed call started at `start`, if the window measures it.
    pub fn record_failure(&mut self, window: &Window, start: Instant, kind: &'static str) {
        if window.measures(start) {
            *self.failures.entry(kind).or_default() += 1;
        }
    }

    /// The workers' tallies together, and the time from the window's start to
    /// the last counted answer.
    pub fn merge(tallies: impl IntoIterator<Item = Tally>, window: &Window) -> (Tally, Duration) {
        let mut total = Tally::default();
        for tally in tallies {
            total.calls += tally.calls;
            // Same bounds on both sides: adding cannot fail.
            let _ = total.latencies.add(&tally.latencies);
            total.last_done = total.last_done.max(tally.last_done);
            for (kind, count) in tally.failures {
                *total.failures.entry(kind).or_default() += count;
            }
        }
        let elapsed = total
            .last_done
            .map_or(Duration::ZERO, |done| done - window.measure_from);
        (total, elapsed)
    }
}

/// One worker: `call` again and again until the window ends; the first error
/// stops it.
pub async fn worker<E, F, Fut>(window: Window, mut call: F) -> Result<Tally, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let answered = move || {
        let call = call();
        async move { call.await.map(Ok) }
    };
    worker_counting_failures(window, answered).await
}

/// One worker like [`worker`], whose calls may also fail without stopping
/// it (`Ok(Err(kind))`): those are counted by kind, not timed.
pub async fn worker_counting_failures<E, F, Fut>(window: Window, mut call: F) -> Result<Tally, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<(), &'static str>, E>>,
{
    let mut tally = Tally::default();
    loop {
        let start = Instant::now();
        if start >= window.end {
            return Ok(tally);
        }
        match call().await? {
            Ok(()) => tally.record(&window, start),
            Err(kind) => tally.record_failure(&window, start, kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        // A worker whose calls never wait: one poll finishes it.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }

    #[test]
    fn only_calls_in_the_window_count() {
        let now = Instant::now();
        let window = Window {
            measure_from: now,
            end: now + Duration::from_secs(60),
        };
        let mut tally = Tally::default();
        tally.record(&window, now - Duration::from_millis(1)); // in the warm-up
        tally.record(&window, now);
        tally.record(&window, now + Duration::from_secs(61)); // after the end
        assert_eq!(tally.calls, 1);
        let (total, elapsed) = Tally::merge([tally, Tally::default()], &window);
        assert_eq!((total.calls, total.latencies.len()), (1, 1));
        assert!(elapsed < Duration::from_secs(60));
    }

    #[test]
    fn a_worker_stops_when_the_window_ends() {
        let window = Window::starting_now(Duration::ZERO, Duration::ZERO);
        let tally = block_on(worker(window, || async { Ok::<(), ()>(()) })).unwrap();
        assert_eq!(tally.calls, 0);
    }

    #[test]
    fn failed_calls_are_counted_by_kind_and_the_worker_goes_on() {
        let window = Window::starting_now(Duration::ZERO, Duration::from_millis(50));
        let mut made = 0;
        let tally = block_on(worker_counting_failures(window, || {
            made += 1;
            std::thread::sleep(Duration::from_millis(1));
            let outcome = if made % 2 == 0 {
                Err("UNAVAILABLE")
            } else {
                Ok(())
            };
            async move { Ok::<_, ()>(outcome) }
        }))
        .unwrap();
        let failed = tally.failures.get("UNAVAILABLE").copied().unwrap_or(0);
        assert!(made >= 2, "{made}");
        assert_eq!((tally.calls, failed), (made - made / 2, made / 2));
        let (total, _) = Tally::merge([tally, Tally::default()], &window);
        assert_eq!(total.failures.get("UNAVAILABLE"), Some(&failed));
    }

    #[test]
    fn an_error_stops_the_worker() {
        let window = Window::starting_now(Duration::ZERO, Duration::from_secs(60));
        let mut calls = 0;
        let result = block_on(worker(window, || {
            calls += 1;
            let failed = calls == 3;
            async move {
                if failed {
                    Err("third")
                } else {
                    Ok(())
                }
            }
        }));
        assert_eq!(result.unwrap_err(), "third");
        assert_eq!(calls, 3);
    }
}
