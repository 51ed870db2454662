//! A participant's queue of events to write, shared by its room (which
//! pushes) and its call's writer (which takes). Past `queue` events it is
//! full: the room's gate closes and the time is noted, and the room removes
//! the participant if it stays full for longer than the lag bound or its
//! queue reaches the hard bound (senders on other replicas cannot be made to
//! wait).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::Stream;

use super::event::SharedEvent;
use super::gate::Gate;

struct State {
    events: VecDeque<SharedEvent>,
    writer: Option<Waker>,
    /// Since when it has been full; None while it is not.
    full_since: Option<Instant>,
    /// No more events: what is queued is written, then the stream ends.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    gate: Arc<Gate>,
    queue: usize,
    hard: usize,
}

/// The room's end of a participant's queue.
pub(crate) struct Mailbox(Arc<Shared>);

/// The writer's end: the events to write, in order (a stream).
pub(crate) struct Deliveries {
    backlog: VecDeque<SharedEvent>,
    shared: Arc<Shared>,
}

/// What a push found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Refused: the queue is at its hard bound, `behind` events waiting.
    Overflowing {
        behind: usize,
    },
}

/// A participant's queue of at most `queue` events before it counts as full
/// (at least 1) and `hard` in all, its writer's end first delivering `backlog`.
pub(crate) fn mailbox(
    gate: Arc<Gate>,
    queue: usize,
    hard: usize,
    backlog: Vec<SharedEvent>,
) -> (Mailbox, Deliveries) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            events: VecDeque::new(),
            writer: None,
            full_since: None,
            closed: false,
        }),
        gate,
        queue: queue.max(1),
        hard: hard.max(queue.max(1)),
    });
    let deliveries = Deliveries {
        backlog: backlog.into(),
        shared: shared.clone(),
    };
    (Mailbox(shared), deliveries)
}

impl Mailbox {
    pub(crate) fn push(&self, event: SharedEvent) -> Pushed {
        let shared = &*self.0;
        let mut state = shared.state.lock();
        if state.closed {
            return Pushed::Queued;
        }
        let behind = state.events.len();
        if behind >= shared.hard {
            return Pushed::Overflowing { behind };
        }
        state.events.push_back(event);
        if behind + 1 == shared.queue {
            state.full_since = Some(Instant::now());
            shared.gate.close_one();
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
        Pushed::Queued
    }

    /// Since when the queue has been full, if it is.
    pub(crate) fn full_since(&self) -> Option<Instant> {
        self.0.state.lock().full_since
    }

    /// Events waiting now.
    pub(crate) fn len(&self) -> usize {
        self.0.state.lock().events.len()
    }

    /// No more events: the writer writes what is queued and ends. With
    /// `discard`, what is queued is dropped (the call ends with a status).
    pub(crate) fn close(&self, discard: bool) {
        let shared = &*self.0;
        let mut state = shared.state.lock();
        state.closed = true;
        if discard {
            state.events.clear();
        }
        // A participant that leaves holds no sender back.
        if state.full_since.take().is_some() {
            shared.gate.open_one();
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.close(false);
    }
}

impl Stream for Deliveries {
    type Item = SharedEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SharedEvent>> {
        let this = self.get_mut();
        if let Some(event) = this.backlog.pop_front() {
            return Poll::Ready(Some(event));
        }
        let shared = &*this.shared;
        let mut state = shared.state.lock();
        match state.events.pop_front() {
            Some(event) => {
                if state.events.len() < shared.queue && state.full_since.take().is_some() {
                    shared.gate.open_one();
                }
                Poll::Ready(Some(event))
            }
            None if state.closed => Poll::Ready(None),
            None => {
                state.writer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::rooms::event::Event;
    use futures::StreamExt;

    fn event(seq: u64) -> SharedEvent {
        Arc::new(Event {
            seq,
            sender: None,
            update: Default::default(),
        })
    }

    fn next(deliveries: &mut Deliveries) -> Option<u64> {
        deliveries.next().now_or_never().flatten().map(|e| e.seq)
    }

    use futures::FutureExt;

    #[test]
    fn a_full_queue_closes_the_gate_until_it_drains_and_the_hard_bound_refuses() {
        let gate = Arc::new(Gate::default());
        let (mailbox, mut deliveries) = mailbox(gate.clone(), 2, 3, vec![event(1)]);
        assert_eq!(mailbox.push(event(2)), Pushed::Queued);
        assert!(gate.is_open());
        assert_eq!(mailbox.push(event(3)), Pushed::Queued);
        assert!(!gate.is_open() && mailbox.full_since().is_some());
        assert_eq!(mailbox.push(event(4)), Pushed::Queued);
        assert_eq!(mailbox.push(event(5)), Pushed::Overflowing { behind: 3 });
        assert_eq!(next(&mut deliveries), Some(1), "the backlog first");
        assert_eq!(next(&mut deliveries), Some(2));
        assert!(!gate.is_open(), "two still waiting: full");
        assert_eq!(next(&mut deliveries), Some(3));
        assert!(gate.is_open() && mailbox.full_since().is_none());
        mailbox.close(false);
        assert_eq!(next(&mut deliveries), Some(4), "what was queued is written");
        assert_eq!(deliveries.next().now_or_never(), Some(None));
    }

    #[test]
    fn a_full_participant_that_leaves_opens_the_gate() {
        let gate = Arc::new(Gate::default());
        let (mailbox, _deliveries) = mailbox(gate.clone(), 1, 2, Vec::new());
        mailbox.push(event(1));
        assert!(!gate.is_open());
        drop(mailbox);
        assert!(gate.is_open());
    }
}
