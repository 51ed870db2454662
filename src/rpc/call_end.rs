//! Telling that a call has ended, and grpcio's refusals once it has.

use std::pin::Pin;
use std::task::Poll;

use futures::Sink;
use grpcio::WriteFlags;

/// Resolves when a server streaming call ends without us: the client cancelled,
/// its deadline passed, or the server is cancelling all calls. A streaming
/// sink's `poll_ready` reports the call's end and registers for it.
pub async fn call_ended<T, S>(sink: &mut S)
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    futures::future::poll_fn(|cx| match Pin::new(&mut *sink).poll_ready(cx) {
        Poll::Ready(Err(_)) => Poll::Ready(()),
        _ => Poll::Pending,
    })
    .await
}

/// Whether grpcio refused a write or a half-close only because the call is
/// over. It says so even for a call that ended well, when its end overtakes
/// the half-close: the receiving half's outcome is then the call's outcome.
pub fn is_call_over(error: &grpcio::Error) -> bool {
    matches!(
        error,
        grpcio::Error::RpcFinished(_) | grpcio::Error::RemoteStopped
    )
}

/// A write's or half-close's result, with a refusal because the call is over
/// counted as done: the receiving half tells how the call went.
pub fn ok_if_call_over(result: grpcio::Result<()>) -> grpcio::Result<()> {
    match result {
        Err(e) if !is_call_over(&e) => Err(e),
        _ => Ok(()),
    }
}
