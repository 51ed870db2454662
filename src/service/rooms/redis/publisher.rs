//! A participant's updates on their way to the store, in the order sent: one
//! task per participant sends each to the publish script as it comes,
//! without waiting for the previous answer (their round trips overlap on the
//! one connection, which keeps their order), and hands each outcome back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use grpcio::RpcStatus;
use messenger_lab::room::SINCE_HEADER;

use super::super::event::ParticipantId;
use super::super::store::unavailable;
use super::remote::RemoteRoom;
use super::scripts::publish_reply;
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
    let (updates, mut queued) = mpsc::unbounded::<Update>();
    let (shared, room, id) = (shared.clone(), room.clone(), id.clone());
    shared.clone().runtime.spawn(async move {
        let mut sending = FuturesOrdered::new();
        loop {
            tokio::select! {
                next = queued.next(), if sending.len() < IN_FLIGHT => match next {
                    Some(update) => sending.push_back(publish(shared.clone(), room.clone(), id.clone(), update)),
                    None => break,
                },
                Some(()) = sending.next(), if !sending.is_empty() => {}
            }
        }
        while sending.next().await.is_some() {}
    });
    updates
}

/// Publishes one update, riding out a blip shorter than the store grace.
async fn publish(shared: Arc<Shared>, room: Arc<RemoteRoom>, id: ParticipantId, update: Update) {
    let started = Instant::now();
    let outcome = loop {
        let call = shared.scripts.publish(
            &room.keys,
            shared.terms,
            &id,
            update.counter,
            update.payload.clone(),
            update.named.clone(),
        );
        let failed = match shared.link.run(call).await {
            Ok(value) => {
                break match publish_reply(&value) {
                    Ok((Some(_), expired)) => {
                        shared.counters.presence_expired(expired);
                        Ok(())
                    }
                    Ok((None, expired)) => {
                        shared.counters.presence_expired(expired);
                        Err(unavailable(format!(
                            "room '{}': this participant's presence expired in the room store \
                             (it was announced as left); rejoin with {SINCE_HEADER} to recover",
                            room.name
                        )))
                    }
                    Err(why) => Err(shared.unreachable(&why)),
                };
            }
            Err(e) => e,
        };
        if started.elapsed() >= shared.limits.store_grace {
            break Err(shared.unreachable(&failed));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = update.done.send(outcome);
}
