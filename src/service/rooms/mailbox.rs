//! A participant's queue of events to write, shared by its room (which
//! pushes) and its call's writer (which takes). Past `queue` events or
//! `queue_bytes` bytes of updates it is full: the room's gate closes and the
//! time is noted, and the room removes the participant if it stays full for
//! longer than the lag bound or its queue reaches the hard bound, in events
//! or in bytes (senders on other replicas cannot be made to wait).

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
    /// The bytes of the events queued.
    bytes: usize,
    writer: Option<Waker>,
    /// Since when it has been full; None while it is not.
    full_since: Option<Instant>,
    /// No more events: what is queued is written, then the stream ends.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    gate: Arc<Gate>,
    bounds: Bounds,
}

impl Shared {
    fn is_full(&self, state: &State) -> bool {
        state.events.len() >= self.bounds.queue || state.bytes >= self.bounds.queue_bytes
    }
}

/// How much a queue holds: full past `queue` events or `queue_bytes` bytes,
/// refused past `hard` events or `hard_bytes` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) queue: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) hard: usize,
    pub(crate) hard_bytes: usize,
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

/// A participant's queue within `bounds` (at least one event before it is
/// full), its writer's end first delivering `backlog`.
pub(crate) fn mailbox(
    gate: Arc<Gate>,
    bounds: Bounds,
    backlog: Vec<SharedEvent>,
) -> (Mailbox, Deliveries) {
    let queue = bounds.queue.max(1);
    let queue_bytes = bounds.queue_bytes.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            events: VecDeque::new(),
            bytes: 0,
            writer: None,
            full_since: None,
            closed: false,
        }),
        gate,
        bounds: Bounds {
            queue,
            queue_bytes,
            hard: bounds.hard.max(queue),
            hard_bytes: bounds.hard_bytes.max(queue_bytes),
        },
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
        let bounds = &shared.bounds;
        if behind >= bounds.hard || (behind > 0 && state.bytes + event.bytes > bounds.hard_bytes) {
            return Pushed::Overflowing { behind };
        }
        state.bytes += event.bytes;
        state.events.push_back(event);
        if state.full_since.is_none() && shared.is_full(&state) {
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
            state.bytes = 0;
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
                state.bytes -= event.bytes;
                if !shared.is_full(&state) && state.full_since.take().is_some() {
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
        Arc::new(Event::new(seq, None, Default::default()))
    }

    /// An event whose update is `bytes` long, encoded.
    fn sized(seq: u64, bytes: usize) -> SharedEvent {
        let update = crate::proto::messenger::FeedUpdate {
            message: "x".repeat(bytes - 3),
            ..Default::default()
        };
        let event = Event::new(seq, None, update);
        assert_eq!(event.bytes, bytes);
        Arc::new(event)
    }

    fn counted(queue: usize, hard: usize) -> Bounds {
        Bounds {
            queue,
            queue_bytes: usize::MAX,
            hard,
            hard_bytes: usize::MAX,
        }
    }

    fn next(deliveries: &mut Deliveries) -> Option<u64> {
        deliveries.next().now_or_never().flatten().map(|e| e.seq)
    }

    use futures::FutureExt;

    #[test]
    fn a_full_queue_closes_the_gate_until_it_drains_and_the_hard_bound_refuses() {
        let gate = Arc::new(Gate::default());
        let (mailbox, mut deliveries) = mailbox(gate.clone(), counted(2, 3), vec![event(1)]);
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
        let (mailbox, _deliveries) = mailbox(gate.clone(), counted(1, 2), Vec::new());
        mailbox.push(event(1));
        assert!(!gate.is_open());
        drop(mailbox);
        assert!(gate.is_open());
    }

    #[test]
    fn bytes_fill_a_queue_and_bound_it_however_few_the_events() {
        let gate = Arc::new(Gate::default());
        let bounds = Bounds {
            queue: 1000,
            queue_bytes: 200,
            hard: 1000,
            hard_bytes: 450,
        };
        let (mailbox, mut deliveries) = mailbox(gate.clone(), bounds, Vec::new());
        assert_eq!(mailbox.push(sized(1, 150)), Pushed::Queued);
        assert!(gate.is_open());
        assert_eq!(mailbox.push(sized(2, 140)), Pushed::Queued);
        assert!(!gate.is_open(), "290 bytes waiting: full");
        assert_eq!(mailbox.push(sized(3, 140)), Pushed::Queued);
        assert_eq!(
            mailbox.push(sized(4, 140)),
            Pushed::Overflowing { behind: 3 },
            "570 bytes would pass the hard bound"
        );
        assert_eq!(next(&mut deliveries), Some(1));
        assert!(!gate.is_open(), "280 bytes still waiting");
        assert_eq!(next(&mut deliveries), Some(2));
        assert!(gate.is_open());
    }
}
