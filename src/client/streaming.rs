//! The sending half of a streaming call, paced and flow-controlled, and how
//! it runs together with the receiving half.

use std::future::Future;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt};
use futures::{Sink, SinkExt, Stream, StreamExt};
use futures_timer::Delay;
use grpcio::WriteFlags;

use super::error::ClientError;
use crate::rpc::messenger::LearningMessengerClient;

/// Sends each item of `items` after a pause of `delay`, then half-closes the
/// stream. One write is in flight at a time, so HTTP/2 flow control paces the
/// source; items that are ready together go out in one batch (the sink should
/// have `enhance_batch` on), and what is buffered is flushed before waiting.
pub(super) async fn send_paced<T, S, I>(
    sink: &mut S,
    items: I,
    delay: Duration,
) -> Result<(), ClientError>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
    I: Stream<Item = Result<T, ClientError>>,
{
    futures::pin_mut!(items);
    loop {
        let next = match items.next().now_or_never() {
            Some(next) => next,
            None => {
                sink.flush().await?;
                items.next().await
            }
        };
        let Some(item) = next else { break };
        let item = item?;
        if !delay.is_zero() {
            sink.flush().await?;
            Delay::new(delay).await;
        }
        sink.feed((item, WriteFlags::default())).await?;
    }
    sink.flush().await?;
    sink.close().await?;
    Ok(())
}

/// Runs [`send_paced`] on the channel's completion-queue thread, where each
/// write's completion resumes the sending at once, without a hop to another
/// thread (docs/tuning-log.md has the gain). It never blocks that
/// thread: items come from memory or a channel, pauses are timers. The
/// returned future resolves with the outcome.
pub(crate) fn spawn_sender<T, S, I>(
    client: &LearningMessengerClient,
    mut sink: S,
    items: I,
    delay: Duration,
) -> impl Future<Output = Result<(), ClientError>>
where
    T: Send + 'static,
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin + Send + 'static,
    I: Stream<Item = Result<T, ClientError>> + Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel();
    client.spawn(async move {
        let _ = done_tx.send(send_paced(&mut sink, items, delay).await);
    });
    // Dropped unfinished (the queue shut down): the call is over, and its status says why.
    done_rx.map(|done| done.unwrap_or(Err(ClientError::Rpc(grpcio::Error::RpcFinished(None)))))
}

/// Runs the two halves of a streaming call together: `send` writes the
/// outgoing messages, `receive` reads what comes back. A failed write means
/// the call has ended, and `receive` then reports the status that says why. A
/// local failure (unreadable input) ends the call at once: dropping the
/// receiving half cancels it.
pub(crate) async fn send_and_receive<R>(
    send: impl Future<Output = Result<(), ClientError>>,
    receive: impl Future<Output = Result<R, ClientError>>,
) -> Result<R, ClientError> {
    futures::pin_mut!(send, receive);
    match future::select(send, receive).await {
        Either::Left((Ok(()), receive)) => receive.await,
        // A write refused because the call is over: its outcome is the status
        // the receiving half reads.
        Either::Left((Err(ClientError::Rpc(e)), receive)) if crate::rpc::is_call_over(&e) => {
            receive.await
        }
        Either::Left((Err(failed), _)) => Err(failed),
        // The server ended the call before we finished sending.
        Either::Right((received, _)) => received,
    }
}
