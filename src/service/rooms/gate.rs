//! A room's gate for its senders on this replica: closed while some local
//! participant's queue is full. A sender waits at it before reading its next
//! update, so a burst is slowed by HTTP/2 flow control instead of
//! overrunning the queues of participants that are reading.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Local participants whose queue is full.
    full: AtomicUsize,
    waiting: Mutex<Vec<Waker>>,
}

impl Gate {
    /// A queue became full.
    pub(crate) fn close_one(&self) {
        self.full.fetch_add(1, Ordering::SeqCst);
    }

    /// A full queue has room again, or went away.
    pub(crate) fn open_one(&self) {
        if self.full.fetch_sub(1, Ordering::SeqCst) == 1 {
            let wakers = std::mem::take(&mut *self.waiting.lock());
            for waker in wakers {
                waker.wake();
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.full.load(Ordering::SeqCst) == 0
    }

    /// Resolves once no local queue is full.
    pub(crate) fn opened(self: &Arc<Self>) -> Opened {
        Opened(self.clone())
    }
}

/// The future of [`Gate::opened`].
pub(crate) struct Opened(Arc<Gate>);

impl Future for Opened {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let gate = &self.0;
        if gate.is_open() {
            return Poll::Ready(());
        }
        let mut waiting = gate.waiting.lock();
        // Checked again under the lock that `open_one` wakes under: no wake-up is lost.
        if gate.is_open() {
            return Poll::Ready(());
        }
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn the_gate_opens_when_the_last_full_queue_drains() {
        let gate = Arc::new(Gate::default());
        assert!(gate.opened().now_or_never().is_some());
        gate.close_one();
        gate.close_one();
        let mut opened = gate.opened();
        assert!((&mut opened).now_or_never().is_none());
        gate.open_one();
        assert!((&mut opened).now_or_never().is_none());
        gate.open_one();
        assert!(opened.now_or_never().is_some());
    }
}
