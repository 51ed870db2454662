//! Hand-built gRPC glue over grpcio: for each service in `proto/`, its method
//! descriptors, a typed client stub, the service trait a server implements,
//! and the function that registers an implementation. It is what
//! grpcio-compiler would generate, written out by hand.

pub mod health;
pub mod messenger;

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::{block_on, block_on_stream};
use futures::{Sink, SinkExt, Stream, StreamExt};
use grpcio::{
    GrpcSlice, Marshaller, MessageReader, Method, MethodType, RequestStream, Result, RpcContext, RpcStatus,
    RpcStatusCode, ServerStreamingSink, UnarySink, WriteFlags,
};

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

/// A request as it arrived, still encoded: a server decodes it with its
/// [`RequestDecoder`], which first checks its size.
pub struct Encoded(MessageReader);

/// The server's side of `method`: the same RPC, its requests received [`Encoded`].
fn server_side<Req, Resp: protobuf::Message>(method: &Method<Req, Resp>) -> Method<Encoded, Resp> {
    Method {
        ty: method.ty,
        name: method.name,
        req_mar: Marshaller { ser: encoded_is_never_sent, de: |reader| Ok(Encoded(reader)) },
        resp_mar: Marshaller { ser: grpcio::pb_ser, de: grpcio::pb_de },
    }
}

/// `Encoded` only travels inwards: a server never sends a request.
fn encoded_is_never_sent(_: &Encoded, _: &mut GrpcSlice) -> Result<()> {
    Err(grpcio::Error::Codec("a received request cannot be sent on".into()))
}

/// Decodes a server's requests, refusing those over its size limit.
///
/// The limit is checked here, not by C-core's message-size filter, which the
/// server leaves out: that filter cost a quarter of the server's time per
/// streamed message (see the README's tuning log). C-core has the whole
/// message either way before it is judged.
#[derive(Clone, Copy, Debug)]
pub struct RequestDecoder {
    max_bytes: usize,
}

impl RequestDecoder {
    pub fn new(max_bytes: usize) -> Self {
        RequestDecoder { max_bytes }
    }

    /// The request, or the status refusing it: RESOURCE_EXHAUSTED for one over
    /// the limit, INTERNAL (gRPC's code for a request that fails to parse) for
    /// bytes that are not the message.
    pub fn decode<T: protobuf::Message>(self, Encoded(mut reader): Encoded) -> std::result::Result<T, RpcStatus> {
        let len = reader.len();
        if len > self.max_bytes {
            let reason = format!("request message larger than max ({len} vs. {} bytes)", self.max_bytes);
            return Err(RpcStatus::with_message(RpcStatusCode::RESOURCE_EXHAUSTED, reason));
        }
        T::parse_from(&mut protobuf::CodedInputStream::from_buf_read(&mut reader))
            .map_err(|e| RpcStatus::with_message(RpcStatusCode::INTERNAL, format!("invalid request message: {e}")))
    }

    /// `encoded`, each request decoded as it is read.
    pub fn stream<T: protobuf::Message>(self, encoded: RequestStream<Encoded>) -> Requests<T> {
        Requests { encoded, decoder: self, message: PhantomData }
    }
}

/// A client's stream of requests, decoded as they are read. A request that is
/// refused ends it with `Err(Error::RpcFailure(status))`: the status to fail
/// the call with. Other errors mean the client has ended the call.
pub struct Requests<T> {
    encoded: RequestStream<Encoded>,
    decoder: RequestDecoder,
    message: PhantomData<fn() -> T>,
}

impl<T: protobuf::Message> Stream for Requests<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let decoder = self.decoder;
        self.encoded.poll_next_unpin(cx).map(|item| {
            item.map(|encoded| encoded.and_then(|encoded| decoder.decode(encoded).map_err(grpcio::Error::RpcFailure)))
        })
    }
}

/// The sink of a call with a single request, which a refused request ends.
pub trait Refusable {
    fn refuse(self, ctx: &RpcContext, status: RpcStatus);
}

impl<T> Refusable for UnarySink<T> {
    fn refuse(self, ctx: &RpcContext, status: RpcStatus) {
        send_on(ctx, self.fail(status))
    }
}

impl<T> Refusable for ServerStreamingSink<T> {
    fn refuse(self, ctx: &RpcContext, status: RpcStatus) {
        send_on(ctx, self.fail(status))
    }
}

/// Drives a refusal to the client on the call's queue; if the client has gone,
/// there is nobody left to tell.
fn send_on(ctx: &RpcContext, sent: impl std::future::Future<Output = Result<()>> + Send + 'static) {
    ctx.spawn(async move {
        let _ = sent.await;
    });
}

/// Hands a single-request call to `handle` with its request decoded, or
/// refuses the call with the reason.
fn with_request<Req, S>(decoder: RequestDecoder, ctx: RpcContext, req: Encoded, sink: S, handle: impl FnOnce(RpcContext, Req, S))
where
    Req: protobuf::Message,
    S: Refusable,
{
    match decoder.decode(req) {
        Ok(req) => handle(ctx, req, sink),
        Err(status) => {
            log::warn!("{}: refusing the request: {}", String::from_utf8_lossy(ctx.method()), status.message());
            sink.refuse(&ctx, status)
        }
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
