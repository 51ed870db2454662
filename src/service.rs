//! The LearningMessenger business logic: the seed's server.py, handler by
//! handler. Handlers never block a completion-queue thread: each call's work
//! is a future spawned on it, delays are timers, and every write is awaited
//! so HTTP/2 flow control paces the stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use futures::{Sink, SinkExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{
    ClientStreamingSink, DuplexSink, RpcContext, RpcStatus, ServerStreamingSink, UnarySink, WriteFlags,
};
use log::{debug, info, warn};

use crate::proto::messenger::{
    FeedUpdate, LearningUpdate, ResearchNote, StatusRequest, StatusResponse, SummaryResponse,
    TopicRequest,
};
use crate::rpc::messenger::LearningMessenger;
use crate::rpc::Requests;

/// The unary answer, word for word as the seed's server gives it.
pub const STATUS_MESSAGE: &str = "System ready for research. Status check OK.";

/// The user the server's feed echoes come from.
pub const FEED_ECHO_USER: &str = "System";

/// The seed's simulated latency before each streamed update.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// The four LearningMessenger handlers.
#[derive(Clone)]
pub struct MessengerService {
    /// Pause before each StreamLearnings update; zero sends at once.
    delay: Duration,
    in_flight: CallCounter,
}

impl MessengerService {
    pub fn new(delay: Duration) -> Self {
        MessengerService { delay, in_flight: CallCounter::default() }
    }

    /// The count of this service's calls whose work is still running.
    pub fn in_flight(&self) -> CallCounter {
        self.in_flight.clone()
    }
}

/// Counts calls whose work is still running: each handler holds a guard until
/// its spawned future ends (finished, failed or cancelled). One relaxed atomic
/// add and subtract per call; it shows that cancelled calls leave nothing behind.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn enter(&self) -> CallGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        CallGuard(self.0.clone())
    }
}

struct CallGuard(Arc<AtomicUsize>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for MessengerService {
    fn default() -> Self {
        MessengerService::new(DEFAULT_DELAY)
    }
}

/// The four StreamLearnings contents for `topic`, in order.
pub fn learning_contents(topic: &str) -> [String; 4] {
    [
        format!("Searching for research papers on {topic}..."),
        format!("Analyzing core principles of {topic}..."),
        "Synthesizing key gRPC use cases...".to_owned(),
        "Finalizing the consolidated report.".to_owned(),
    ]
}

/// The SubmitResearchNotes answer for `count` notes, the last being `last`.
pub fn summarize(count: i32, last: Option<&str>) -> SummaryResponse {
    SummaryResponse {
        count,
        final_summary: format!("Processed {count} notes. Key takeaway: {}", last.unwrap_or("None")),
        ..Default::default()
    }
}

/// The CollaborativeFeed echo of one update.
pub fn acknowledge(update: &FeedUpdate) -> FeedUpdate {
    FeedUpdate {
        user: FEED_ECHO_USER.to_owned(),
        message: format!("Acknowledged {}'s update: {}", update.user, update.message),
        ..Default::default()
    }
}

/// Local wall-clock time as `HH:MM:SS`, like the seed's `time.strftime`.
pub fn local_timestamp() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// The first `n` characters of `text` (not bytes: notes may be any Unicode).
fn prefix(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(end, _)| &text[..end])
}

impl LearningMessenger for MessengerService {
    fn get_learning_status(&mut self, ctx: RpcContext, req: StatusRequest, sink: UnarySink<StatusResponse>) {
        info!("📡 Unary Request from: {}", req.user_id);
        let response = StatusResponse { message: STATUS_MESSAGE.to_owned(), active: true, ..Default::default() };
        let reply = sink.success(response);
        let in_flight = self.in_flight.enter();
        ctx.spawn(async move {
            let _in_flight = in_flight;
            log_outcome("GetLearningStatus", reply.await)
        });
    }

    fn stream_learnings(&mut self, ctx: RpcContext, req: TopicRequest, mut sink: ServerStreamingSink<LearningUpdate>) {
        info!("📡 Server Streaming topic: {}", req.topic);
        let delay = self.delay;
        let in_flight = self.in_flight.enter();
        // Without a delay the updates are ready together: buffered, they leave
        // with the status in one write; with one, each must go out when made.
        let flags = WriteFlags::default().buffer_hint(delay.is_zero());
        ctx.spawn(async move {
            let _in_flight = in_flight;
            for (i, content) in learning_contents(&req.topic).into_iter().enumerate() {
                if !delay.is_zero() && !pause(&mut sink, delay).await {
                    return debug!("StreamLearnings ended by the client during a delay");
                }
                let update = LearningUpdate {
                    content,
                    progress: (i as i32 + 1) * 25,
                    timestamp: local_timestamp(),
                    ..Default::default()
                };
                if let Err(e) = sink.send((update, flags)).await {
                    return log_outcome("StreamLearnings", Err(e));
                }
            }
            log_outcome("StreamLearnings", sink.close().await);
        });
    }

    fn submit_research_notes(
        &mut self,
        ctx: RpcContext,
        mut notes: Requests<ResearchNote>,
        sink: ClientStreamingSink<SummaryResponse>,
    ) {
        info!("📡 Receiving stream of research notes...");
        let in_flight = self.in_flight.enter();
        ctx.spawn(async move {
            let _in_flight = in_flight;
            // Only the count and the last note are kept: memory stays flat however long the stream.
            let mut count: i32 = 0;
            let mut last = None;
            loop {
                match notes.try_next().await {
                    Ok(Some(note)) => {
                        count = count.saturating_add(1);
                        debug!(" - Received fragment {count}: {}...", prefix(&note.text, 20));
                        last = Some(note.text);
                    }
                    Ok(None) => break,
                    Err(e) => return reject("SubmitResearchNotes", e, |status| sink.fail(status)).await,
                }
            }
            log_outcome("SubmitResearchNotes", sink.success(summarize(count, last.as_deref())).await);
        });
    }

    fn collaborative_feed(&mut self, ctx: RpcContext, updates: Requests<FeedUpdate>, mut sink: DuplexSink<FeedUpdate>) {
        info!("📡 Bi-directional 'Collaborative Feed' opened.");
        // Echoes that are ready together go out in one batch; the last of each batch is flushed.
        sink.enhance_batch(true);
        let in_flight = self.in_flight.enter();
        ctx.spawn(async move {
            let _in_flight = in_flight;
            let mut echoes = updates.map_ok(|update| {
                debug!(" [Feed] From {}: {}", update.user, update.message);
                (acknowledge(&update), WriteFlags::default())
            });
            match sink.send_all(&mut echoes).await {
                Ok(()) => log_outcome("CollaborativeFeed", sink.close().await),
                Err(e) => reject("CollaborativeFeed", e, |status| sink.fail(status)).await,
            }
        });
    }
}

/// Waits `delay`, unless the call ends first (the client cancelled, or its
/// deadline passed): then returns false at once and the timer is dropped.
async fn pause<T, S>(sink: &mut S, delay: Duration) -> bool
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    let call_ended = crate::rpc::call_ended(sink);
    futures::pin_mut!(call_ended);
    matches!(future::select(Delay::new(delay), call_ended).await, Either::Left(_))
}

/// Ends a call whose request stream failed: a refused request gets the status
/// saying why; a call the client already ended needs no answer.
async fn reject<F, Fut>(method: &str, error: grpcio::Error, fail: F)
where
    F: FnOnce(RpcStatus) -> Fut,
    Fut: std::future::Future<Output = grpcio::Result<()>>,
{
    match error {
        grpcio::Error::RpcFailure(status) => {
            warn!("{method}: refusing a request message: {}", status.message());
            log_outcome(method, fail(status).await);
        }
        other => log_outcome(method, Err(other)),
    }
}

/// Logs how a call ended. A client that went away is routine, not a warning.
fn log_outcome(method: &str, result: grpcio::Result<()>) {
    match result {
        Ok(()) => {}
        Err(grpcio::Error::RemoteStopped) | Err(grpcio::Error::RpcFinished(_)) => debug!("{method}: the client ended the call"),
        Err(grpcio::Error::RpcFailure(status)) => debug!("{method}: call ended with {status:?}"),
        Err(e) => warn!("{method}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_counts_characters_not_bytes() {
        assert_eq!(prefix("Note 1: gRPC uses HTTP/2 Multiplexing", 20), "Note 1: gRPC uses HT");
        assert_eq!(prefix("短い", 20), "短い");
        assert_eq!(prefix("ééééééééééééééééééééé", 20).chars().count(), 20);
    }

    #[test]
    fn summary_of_no_notes_says_none() {
        assert_eq!(summarize(0, None).final_summary, "Processed 0 notes. Key takeaway: None");
        assert_eq!(summarize(2, Some("b")).final_summary, "Processed 2 notes. Key takeaway: b");
    }
}
