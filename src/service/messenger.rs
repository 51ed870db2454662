//! The LearningMessenger handlers: the lab's server.py, handler by handler.
//! Each builds its call's work as one future and spawns it, counted. A feed
//! opened with a `room` header takes part in that room (`rooms`); without
//! one it is the lab's echo.

use std::time::Duration;

use futures::future::{self, Either};
use futures::{Sink, SinkExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{RpcContext, WriteFlags};
use log::{debug, info};
use messenger_lab::answers::{self, acknowledge, summarize, LAB_DELAY, STATUS_MESSAGE};

use super::in_flight::CallCounter;
use super::outcome::{log_outcome, reject};
use super::rooms::{self, Rooms};
use crate::auth::Caller;
use crate::proto::messenger::{
    FeedUpdate, LearningUpdate, ResearchNote, StatusRequest, StatusResponse, SummaryResponse,
    TopicRequest,
};
use crate::rpc::messenger::LearningMessenger;
use crate::rpc::{
    call_ended, ClientStreamReply, DuplexReply, Requests, ServerStreamReply, UnaryReply,
};
use crate::untrusted::untrusted;

/// The four LearningMessenger handlers.
#[derive(Clone, Debug)]
pub struct MessengerService {
    /// Pause before each StreamLearnings update; zero sends at once.
    delay: Duration,
    in_flight: CallCounter,
    rooms: Rooms,
}

impl MessengerService {
    /// The lab's handlers, with the default room limits.
    pub fn new(delay: Duration) -> Self {
        MessengerService {
            delay,
            in_flight: CallCounter::default(),
            rooms: Rooms::default(),
        }
    }

    /// The same, its feed's rooms being `rooms`.
    pub fn with_rooms(mut self, rooms: Rooms) -> Self {
        self.rooms = rooms;
        self
    }

    /// The count of this service's calls whose work is still running.
    pub fn in_flight(&self) -> CallCounter {
        self.in_flight.clone()
    }
}

impl Default for MessengerService {
    fn default() -> Self {
        MessengerService::new(LAB_DELAY)
    }
}

/// The first `n` characters of `text` (not bytes: notes may be any Unicode).
fn prefix(text: &str, n: usize) -> &str {
    text.char_indices()
        .nth(n)
        .map_or(text, |(end, _)| &text[..end])
}

impl LearningMessenger for MessengerService {
    fn get_learning_status(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: StatusRequest,
        sink: UnaryReply<StatusResponse>,
    ) {
        info!(
            "📡 {}Unary Request from: {}",
            caller.in_log(),
            untrusted(&req.user_id)
        );
        let response = StatusResponse {
            message: STATUS_MESSAGE.to_owned(),
            active: true,
            ..Default::default()
        };
        let reply = sink.success(response);
        self.in_flight.spawn(&ctx, async move {
            log_outcome("GetLearningStatus", reply.await)
        });
    }

    fn stream_learnings(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: TopicRequest,
        mut sink: ServerStreamReply<LearningUpdate>,
    ) {
        info!(
            "📡 {}Server Streaming topic: {}",
            caller.in_log(),
            untrusted(&req.topic)
        );
        let delay = self.delay;
        // Without a delay the updates are ready together: buffered, they leave
        // with the status in one write; with one, each must go out when made.
        let flags = WriteFlags::default().buffer_hint(delay.is_zero());
        self.in_flight.spawn(&ctx, async move {
            let contents = answers::learning_contents(&req.topic);
            for (index, content) in contents.into_iter().enumerate() {
                if !delay.is_zero() && !sleep_unless_call_ends(&mut sink, delay).await {
                    return debug!("StreamLearnings ended by the client during a delay");
                }
                let update = answers::learning_update(index, content);
                if let Err(e) = sink.send((update, flags)).await {
                    return log_outcome("StreamLearnings", Err(e));
                }
            }
            log_outcome("StreamLearnings", sink.close().await);
        });
    }

    fn submit_research_notes(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        mut notes: Requests<ResearchNote>,
        sink: ClientStreamReply<SummaryResponse>,
    ) {
        info!(
            "📡 {}Receiving stream of research notes...",
            caller.in_log()
        );
        self.in_flight.spawn(&ctx, async move {
            // Only the count and the last note are kept: memory stays flat however long the stream.
            let mut count: i32 = 0;
            let mut last = None;
            loop {
                match notes.try_next().await {
                    Ok(Some(note)) => {
                        count = count.saturating_add(1);
                        debug!(
                            " - Received fragment {count}: {}...",
                            untrusted(prefix(&note.text, 20))
                        );
                        last = Some(note.text);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return reject("SubmitResearchNotes", e, |status| sink.fail(status)).await
                    }
                }
            }
            let summary = summarize(count, last.as_deref());
            log_outcome("SubmitResearchNotes", sink.success(summary).await);
        });
    }

    fn collaborative_feed(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        updates: Requests<FeedUpdate>,
        mut sink: DuplexReply<FeedUpdate>,
    ) {
        info!(
            "📡 {}Bi-directional 'Collaborative Feed' opened.",
            caller.in_log()
        );
        // Echoes that are ready together go out in one batch; the last of each batch is flushed.
        sink.enhance_batch(true);
        // A `room` header joins that room, as the caller may; without one, the lab's echo.
        match rooms::requested_room(ctx.request_headers(), &caller) {
            Ok(None) => self.in_flight.spawn(&ctx, async move {
                let mut echoes = updates.map_ok(|update| {
                    debug!(
                        " [Feed] From {}: {}",
                        untrusted(&update.user),
                        untrusted(&update.message)
                    );
                    (acknowledge(&update), WriteFlags::default())
                });
                match sink.send_all(&mut echoes).await {
                    Ok(()) => log_outcome("CollaborativeFeed", sink.close().await),
                    Err(e) => reject("CollaborativeFeed", e, |status| sink.fail(status)).await,
                }
            }),
            // The updates are kept until a refusal is sent: dropping them
            // unread cancels the call, which could overtake the status.
            Ok(Some((request, speaker))) => {
                let joining = self.rooms.join(request);
                self.in_flight.spawn(&ctx, async move {
                    match joining.await {
                        Ok(joined) => rooms::take_part(joined, speaker, updates, sink).await,
                        Err(refused) => {
                            log_outcome("CollaborativeFeed", sink.fail(refused).await);
                            drop(updates);
                        }
                    }
                })
            }
            Err(refused) => self.in_flight.spawn(&ctx, async move {
                log_outcome("CollaborativeFeed", sink.fail(refused).await);
                drop(updates);
            }),
        }
    }
}

/// Waits `delay`, unless the call ends first (the client cancelled, or its
/// deadline passed): then returns false at once and the timer is dropped.
async fn sleep_unless_call_ends<T, S>(sink: &mut S, delay: Duration) -> bool
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    let ended = call_ended(sink);
    futures::pin_mut!(ended);
    matches!(
        future::select(Delay::new(delay), ended).await,
        Either::Left(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_counts_characters_not_bytes() {
        assert_eq!(
            prefix("Note 1: gRPC uses HTTP/2 Multiplexing", 20),
            "Note 1: gRPC uses HT"
        );
        assert_eq!(prefix("短い", 20), "短い");
        assert_eq!(prefix("ééééééééééééééééééééé", 20).chars().count(), 20);
    }
}
