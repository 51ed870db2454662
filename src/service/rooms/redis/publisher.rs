//! A participant's updates on their way to the store, in the order sent: one
//! task per participant sends each to the publish script as it comes,
//! without waiting for the previous answer (their round trips overlap on the
//! one connection, which keeps their order), and hands each outcome back.
//! The script takes only the update after the last one it numbered, so when
//! a round trip fails, that update and every one sent after it are sent
//! again, one at a time and in order, until the store has them all (or the
//! store grace runs out): a retry can never overtake an earlier update.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use grpcio::RpcStatus;
use messenger_lab::room::SINCE_HEADER;
use redis::Value;

use super::super::epoch::Position;
use super::super::event::ParticipantId;
use super::super::store::unavailable;
use super::link::{StoreError, RETRY_EVERY};
use super::remote::RemoteRoom;
use super::scripts::{publish_reply, Published};
use super::Shared;

/// One update to publish.
pub(super) struct Update {
    /// Its number among the participant's updates: a retried one is numbered once.
    pub(super) counter: u64,
    pub(super) payload: Vec<u8>,
    /// Its participant's join and leave notices, if this update names it.
    pub(super) named: Option<(Vec<u8>, Vec<u8>)>,
    pub(super) done: oneshot::Sender<Result<(), RpcStatus>>,
}

/// Updates sent to the store and not yet answered, at most.
const IN_FLIGHT: usize = 64;

/// Starts the publishing task of participant `id` in `room`; it ends when
/// the returned sender is dropped and its last update is answered.
pub(super) fn start(
    shared: &Arc<Shared>,
    room: &Arc<RemoteRoom>,
    id: &ParticipantId,
) -> mpsc::UnboundedSender<Update> {
    let (updates, queued) = mpsc::unbounded::<Update>();
    let publisher = Publisher {
        shared: shared.clone(),
        room: room.clone(),
        id: id.clone(),
    };
    shared.runtime.spawn(publisher.run(queued));
    updates
}

struct Publisher {
    shared: Arc<Shared>,
    room: Arc<RemoteRoom>,
    id: ParticipantId,
}

/// An update sent and not yet answered, and since when it has been tried.
struct Pending {
    update: Update,
    since: Instant,
}

/// What one answer of the publish script means for its update.
enum Settled {
    /// Its outcome, for the call.
    Done(Result<(), RpcStatus>),
    /// Not taken: tried again (in order, from it on).
    Again(String),
    /// Not taken because the store has this participant's updates only up to
    /// this counter.
    Behind(u64),
}

impl Publisher {
    async fn run(self, mut queued: mpsc::UnboundedReceiver<Update>) {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut replies = FuturesOrdered::new();
        let mut open = true;
        while open || !pending.is_empty() {
            tokio::select! {
                next = queued.next(), if open && pending.len() < IN_FLIGHT => match next {
                    Some(update) => {
                        replies.push_back(self.attempt(&update));
                        pending.push_back(Pending { update, since: Instant::now() });
                    }
                    None => open = false,
                },
                Some(reply) = replies.next(), if !replies.is_empty() => {
                    let Some(first) = pending.pop_front() else { continue };
                    match self.settle(reply) {
                        Settled::Done(outcome) => {
                            let _ = first.update.done.send(outcome);
                        }
                        Settled::Again(_) | Settled::Behind(_) => {
                            // The answers still on their way are for updates
                            // sent again below, in order.
                            replies = FuturesOrdered::new();
                            pending.push_front(first);
                            self.resend(&mut pending).await;
                        }
                    }
                }
            }
        }
    }

    /// One round trip of the publish script for `update`.
    fn attempt(&self, update: &Update) -> BoxFuture<'static, Result<Value, StoreError>> {
        let (shared, room, id) = (self.shared.clone(), self.room.clone(), self.id.clone());
        let (counter, payload, named) =
            (update.counter, update.payload.clone(), update.named.clone());
        async move {
            let seen = shared.seen(&room.name);
            let call = shared.scripts.publish(
                &room.keys,
                shared.terms,
                seen.as_ref(),
                &id,
                counter,
                payload,
                named,
            );
            shared.link.run(call).await
        }
        .boxed()
    }

    fn settle(&self, reply: Result<Value, StoreError>) -> Settled {
        let shared = &self.shared;
        let value = match reply {
            Ok(value) => value,
            Err(e) => return Settled::Again(e.to_string()),
        };
        match publish_reply(&value) {
            Ok((published, expired)) => {
                shared.counters.presence_expired(expired);
                match published {
                    Published::Numbered { seq, epoch } => {
                        if let Some(seq) = seq {
                            shared.saw(&self.room.name, &Position { epoch, seq });
                        }
                        Settled::Done(Ok(()))
                    }
                    Published::Behind(done) => Settled::Behind(done),
                    Published::Gone => Settled::Done(Err(unavailable(format!(
                        "room '{}': this participant's presence expired in the room store \
                         (it was announced as left); rejoin with {SINCE_HEADER} to recover",
                        self.room.name
                    )))),
                }
            }
            Err(why) => Settled::Done(Err(shared.unreachable(&why))),
        }
    }

    /// Sends `pending` again, one at a time and in order, each until the
    /// store takes it or the store grace runs out; a failure fails the rest
    /// too (the call ends with the first failure).
    async fn resend(&self, pending: &mut VecDeque<Pending>) {
        while let Some(first) = pending.front() {
            let outcome = loop {
                let reply = self.attempt(&first.update).await;
                let why = match self.settle(reply) {
                    Settled::Done(outcome) => break outcome,
                    Settled::Behind(done) if done + 1 < first.update.counter => {
                        // Updates it had taken are gone: the store came back older.
                        break Err(unavailable(format!(
                            "room '{}': the room store lost this participant's updates after \
                             its update {done} (it came back older); rejoin with {SINCE_HEADER}",
                            self.room.name
                        )));
                    }
                    Settled::Behind(_) => "the store has not taken the update before".to_owned(),
                    Settled::Again(why) => why,
                };
                if first.since.elapsed() >= self.shared.limits.store_grace {
                    break Err(self.shared.unreachable(&why));
                }
                tokio::time::sleep(RETRY_EVERY).await;
            };
            let failed = outcome.clone().err();
            if let Some(first) = pending.pop_front() {
                let _ = first.update.done.send(outcome);
            }
            if let Some(status) = failed {
                for rest in pending.drain(..) {
                    let _ = rest.update.done.send(Err(status.clone()));
                }
            }
        }
    }
}
