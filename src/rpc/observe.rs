//! Every call observed once, in the glue every handler goes through (grpcio
//! has no interceptors): counted as started when it arrives, its messages as
//! they are read and written, and its end, with the status and the time it
//! took, exactly once. The handlers answer through these wrappers of
//! grpcio's sinks; with metrics off, a wrapper holds nothing and costs a
//! branch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Sink;
use grpcio::{
    ClientStreamingSink, Deadline, DuplexSink, Metadata, MetadataBuilder, RpcContext, RpcStatus,
    RpcStatusCode, ServerStreamingSink, UnarySink, WriteFlags,
};

use super::limit::InFlight;
use crate::metrics::MethodMetrics;

/// The reply of a unary call.
pub type UnaryReply<T> = Reply<UnarySink<T>>;
/// The reply of a client streaming call.
pub type ClientStreamReply<T> = Reply<ClientStreamingSink<T>>;
/// The response stream of a server streaming call.
pub type ServerStreamReply<T> = StreamReply<ServerStreamingSink<T>>;
/// The response stream of a bidirectional call.
pub type DuplexReply<T> = StreamReply<DuplexSink<T>>;

/// One call's observation, and its place among the calls in flight (held
/// as long as the call's reply).
pub(crate) struct CallRecord(Option<Observed>, Option<InFlight>);

struct Observed {
    method: Arc<MethodMetrics>,
    started: Instant,
    deadline: Deadline,
    ended: bool,
}

impl CallRecord {
    /// A call of `method` (None: metrics off) has arrived.
    pub(crate) fn start(method: Option<&Arc<MethodMetrics>>, ctx: &RpcContext<'_>) -> CallRecord {
        let observed = method.map(|method| {
            method.started.inc();
            method.in_flight.inc();
            Observed {
                method: method.clone(),
                started: Instant::now(),
                deadline: ctx.deadline(),
                ended: false,
            }
        });
        CallRecord(observed, None)
    }

    /// The call holds `place` until its record is dropped.
    pub(crate) fn hold(&mut self, place: InFlight) {
        self.1 = Some(place);
    }

    pub(crate) fn received(&self) {
        if let Some(observed) = &self.0 {
            observed.method.received.inc();
        }
    }

    fn sent(&self) {
        if let Some(observed) = &self.0 {
            observed.method.sent.inc();
        }
    }

    /// The call ended with `code`; only the first end counts.
    fn end(&mut self, code: RpcStatusCode) {
        if let Some(observed) = &mut self.0 {
            if !observed.ended {
                observed.ended = true;
                observed.method.handled(code).inc();
                observed
                    .method
                    .handling
                    .observe(observed.started.elapsed().as_secs_f64());
                observed.method.in_flight.dec();
            }
        }
    }

    /// The call ended without us: its deadline passed, or the client cancelled.
    fn end_unanswered(&mut self) {
        let code = match &self.0 {
            Some(observed) if observed.deadline.exceeded() => RpcStatusCode::DEADLINE_EXCEEDED,
            _ => RpcStatusCode::CANCELLED,
        };
        self.end(code);
    }

    /// A write's or the answer's outcome: an error means the call is over.
    fn end_on_error<T>(&mut self, result: &grpcio::Result<T>) {
        if result.is_err() {
            self.end_unanswered();
        }
    }
}

impl Drop for CallRecord {
    /// A call whose reply is dropped unanswered was cancelled (or expired).
    fn drop(&mut self) {
        self.end_unanswered();
    }
}

/// grpcio's sinks that answer a call with one message or a status.
pub trait SingleAnswer {
    type Message;
    type Answer: Future<Output = grpcio::Result<()>> + Unpin;
    fn success(self, message: Self::Message) -> Self::Answer;
    fn fail(self, status: RpcStatus) -> Self::Answer;
}

impl<T> SingleAnswer for UnarySink<T> {
    type Message = T;
    type Answer = grpcio::UnarySinkResult;
    fn success(self, message: T) -> Self::Answer {
        UnarySink::success(self, message)
    }
    fn fail(self, status: RpcStatus) -> Self::Answer {
        UnarySink::fail(self, status)
    }
}

impl<T> SingleAnswer for ClientStreamingSink<T> {
    type Message = T;
    type Answer = grpcio::ClientStreamingSinkResult;
    fn success(self, message: T) -> Self::Answer {
        ClientStreamingSink::success(self, message)
    }
    fn fail(self, status: RpcStatus) -> Self::Answer {
        ClientStreamingSink::fail(self, status)
    }
}

/// The reply of a call answered with one message or a status.
pub struct Reply<S> {
    sink: S,
    record: CallRecord,
}

impl<S: SingleAnswer> Reply<S> {
    pub(crate) fn new(sink: S, record: CallRecord) -> Self {
        Reply { sink, record }
    }

    pub(crate) fn record(&mut self) -> &mut CallRecord {
        &mut self.record
    }

    pub fn success(self, message: S::Message) -> Answered<S::Answer> {
        self.record.sent();
        Answered {
            answer: self.sink.success(message),
            record: self.record,
            code: RpcStatusCode::OK,
        }
    }

    pub fn fail(self, status: RpcStatus) -> Answered<S::Answer> {
        let code = status.code();
        Answered {
            answer: self.sink.fail(status),
            record: self.record,
            code,
        }
    }
}

/// An answer on its way: the call ends when it is sent.
pub struct Answered<F> {
    answer: F,
    record: CallRecord,
    code: RpcStatusCode,
}

impl<F: Future<Output = grpcio::Result<()>> + Unpin> Future for Answered<F> {
    type Output = grpcio::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<grpcio::Result<()>> {
        let sent = Pin::new(&mut self.answer).poll(cx);
        if let Poll::Ready(result) = &sent {
            match result {
                Ok(()) => {
                    let code = self.code;
                    self.record.end(code);
                }
                Err(_) => self.record.end_unanswered(),
            }
        }
        sent
    }
}

/// grpcio's streaming sinks, which can also end a call with a status.
pub trait StreamFailure {
    type Failure: Future<Output = grpcio::Result<()>> + Unpin;
    fn fail(self, status: RpcStatus) -> Self::Failure;
}

impl<T> StreamFailure for ServerStreamingSink<T> {
    type Failure = grpcio::ServerStreamingSinkFailure;
    fn fail(self, status: RpcStatus) -> Self::Failure {
        ServerStreamingSink::fail(self, status)
    }
}

impl<T> StreamFailure for DuplexSink<T> {
    type Failure = grpcio::DuplexSinkFailure;
    fn fail(self, status: RpcStatus) -> Self::Failure {
        DuplexSink::fail(self, status)
    }
}

/// The response stream of a call: a `Sink` of messages; closing it ends the
/// call with OK.
pub struct StreamReply<S> {
    sink: S,
    record: CallRecord,
    /// The answer's initial metadata so far.
    headers: Option<Metadata>,
}

impl<S> StreamReply<S> {
    pub(crate) fn new(sink: S, record: CallRecord, headers: Option<Metadata>) -> Self {
        StreamReply {
            sink,
            record,
            headers,
        }
    }

    pub(crate) fn record(&mut self) -> &mut CallRecord {
        &mut self.record
    }
}

impl<S: StreamFailure> StreamReply<S> {
    /// Ends the call with `status` instead.
    pub fn fail(self, status: RpcStatus) -> Answered<S::Failure> {
        let code = status.code();
        Answered {
            answer: self.sink.fail(status),
            record: self.record,
            code,
        }
    }

    /// Ends the call at once with RST_STREAM, whatever it still has queued or
    /// in flight: for a client that stopped granting flow-control window,
    /// whose stuck write would hold back a status forever. Counted as ended
    /// with `code`, the status it could not be sent.
    pub fn cut(mut self, code: RpcStatusCode) {
        self.record.end(code);
        // grpcio cancels a call whose sink is dropped unanswered.
        drop(self.sink);
    }
}

impl<T> StreamReply<DuplexSink<T>> {
    /// Messages that are ready together go out in one batch.
    pub fn enhance_batch(&mut self, on: bool) {
        self.sink.enhance_batch(on)
    }

    /// Adds `key: value` to the answer's initial metadata (it goes with the
    /// first message, so only before it); a value that cannot be a header
    /// (not printable ASCII) is left out.
    pub fn add_header(&mut self, key: &str, value: &str) {
        let mut headers = MetadataBuilder::new();
        for (k, v) in self.headers.iter().flat_map(Metadata::iter) {
            let _ = match std::str::from_utf8(v) {
                Ok(text) if !k.ends_with("-bin") => headers.add_str(k, text),
                _ => headers.add_bytes(k, v),
            };
        }
        if headers.add_str(key, value).is_ok() {
            let headers = headers.build();
            self.sink.set_headers(headers.clone());
            self.headers = Some(headers);
        }
    }
}

impl<T, S> Sink<(T, WriteFlags)> for StreamReply<S>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    type Error = grpcio::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<grpcio::Result<()>> {
        let ready = Pin::new(&mut self.sink).poll_ready(cx);
        if let Poll::Ready(result) = &ready {
            self.record.end_on_error(result);
        }
        ready
    }

    fn start_send(mut self: Pin<&mut Self>, item: (T, WriteFlags)) -> grpcio::Result<()> {
        let started = Pin::new(&mut self.sink).start_send(item);
        match &started {
            Ok(()) => self.record.sent(),
            Err(_) => self.record.end_unanswered(),
        }
        started
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<grpcio::Result<()>> {
        let flushed = Pin::new(&mut self.sink).poll_flush(cx);
        if let Poll::Ready(result) = &flushed {
            self.record.end_on_error(result);
        }
        flushed
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<grpcio::Result<()>> {
        let closed = Pin::new(&mut self.sink).poll_close(cx);
        match &closed {
            Poll::Ready(Ok(())) => self.record.end(RpcStatusCode::OK),
            Poll::Ready(Err(_)) => self.record.end_unanswered(),
            Poll::Pending => {}
        }
        closed
    }
}
