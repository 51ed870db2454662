//! Hand-built gRPC glue over grpcio: for each service in `proto/`, its method
//! descriptors, a typed client stub, the service trait a server implements,
//! and the function that registers an implementation. It is what
//! grpcio-compiler would generate, written out by hand.

pub mod health;
pub mod messenger;

use std::pin::Pin;
use std::task::Poll;

use futures::executor::{block_on, block_on_stream};
use futures::{Sink, SinkExt, Stream};
use grpcio::{Marshaller, Method, MethodType, Result, WriteFlags};

/// A method descriptor whose messages travel as protobuf binary.
const fn protobuf_method<Req: protobuf::Message, Resp: protobuf::Message>(
    ty: MethodType,
    name: &'static str,
) -> Method<Req, Resp> {
    Method {
        ty,
        name,
        req_mar: Marshaller { ser: grpcio::pb_ser, de: grpcio::pb_de },
        resp_mar: Marshaller { ser: grpcio::pb_ser, de: grpcio::pb_de },
    }
}

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

/// Sends every item of a blocking iterator, one write in flight at a time
/// (HTTP/2 flow control paces the producer), then half-closes.
fn send_blocking<T, S>(sink: &mut S, items: impl IntoIterator<Item = T>) -> Result<()>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    for item in items {
        block_on(sink.send((item, WriteFlags::default())))?;
    }
    block_on(sink.close())
}

/// A response stream read by blocking the calling thread. It holds the
/// channel: grpcio stops a call's completion queue when the last handle on
/// its channel goes, so the iterator must not outlive it.
pub struct BlockingResponses<S: Stream + Unpin> {
    responses: futures::executor::BlockingStream<S>,
    _channel: grpcio::Channel,
}

impl<S: Stream + Unpin> Iterator for BlockingResponses<S> {
    type Item = S::Item;

    fn next(&mut self) -> Option<S::Item> {
        self.responses.next()
    }
}

fn blocking_iter<S: Stream + Unpin>(stream: S, channel: &grpcio::Channel) -> BlockingResponses<S> {
    BlockingResponses { responses: block_on_stream(stream), _channel: channel.clone() }
}

/// Whether a write or half-close was refused only because the call is over.
/// grpcio says so even for a call that ended well, when its end overtakes the
/// half-close: the receiving half's outcome is then the call's outcome.
pub fn call_already_over(error: &grpcio::Error) -> bool {
    matches!(error, grpcio::Error::RpcFinished(_) | grpcio::Error::RemoteStopped)
}

/// A write's or half-close's result, a refusal because the call is over
/// counted as done: the receiving half tells how the call went.
pub fn sent(result: grpcio::Result<()>) -> grpcio::Result<()> {
    match result {
        Err(e) if !call_already_over(&e) => Err(e),
        _ => Ok(()),
    }
}
