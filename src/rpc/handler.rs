//! The adapters every handler is registered through, one per pattern: each
//! sets the answer's initial metadata (`x-served-by`), observes the call
//! (`observe`), admits it or refuses it (`admission`: the limit on calls in
//! flight, then the caller, then the request) and hands the handler the
//! caller, typed requests and a reply.

use std::fmt;
use std::sync::{Arc, OnceLock};

use grpcio::{
    ClientStreamingSink, DuplexSink, Metadata, MetadataBuilder, Method, RequestStream, RpcContext,
    ServerStreamingSink, UnarySink,
};

use super::admission::Admission;
use super::decode::{RequestDecoder, Requests};
use super::limit::InFlightLimit;
use super::method::Encoded;
use super::observe::{
    CallRecord, ClientStreamReply, DuplexReply, Reply, ServerStreamReply, StreamReply, UnaryReply,
};
use crate::auth::{Authentication, Caller};
use crate::metrics::{MethodMetrics, Metrics};

/// The initial-metadata header that names the replica which answered a call.
pub const SERVED_BY: &str = "x-served-by";

/// The replica's name, sent as [`SERVED_BY`] at the start of every answer
/// once it is set: a server learns its port, part of its default name, only
/// after its services are registered. Unset, answers carry no header.
#[derive(Clone, Default)]
pub struct ServedBy(Arc<OnceLock<Metadata>>);

impl ServedBy {
    /// Names the replica; fails for a name that cannot be a header value,
    /// and if it was named already.
    pub fn set(&self, name: &str) -> Result<(), String> {
        self.0
            .set(ServedBy::headers(name)?)
            .map_err(|_| "the replica is named already".to_owned())
    }

    /// The header naming replica `name`; only printable ASCII may go in a
    /// gRPC header value.
    pub fn headers(name: &str) -> Result<Metadata, String> {
        let mut headers = MetadataBuilder::with_capacity(1);
        headers.add_str(SERVED_BY, name).map_err(|_| {
            format!("--replica-name {name:?}: only printable ASCII may go in a header")
        })?;
        Ok(headers.build())
    }

    /// Puts the header on the answer `sink` will send; returns the headers set.
    fn apply<S: InitialMetadata>(&self, sink: &mut S) -> Option<Metadata> {
        let headers = self.0.get()?;
        sink.set_headers(headers.clone());
        Some(headers.clone())
    }
}

impl fmt::Debug for ServedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .0
            .get()
            .and_then(|headers| headers.get(0))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned());
        f.debug_tuple("ServedBy").field(&name).finish()
    }
}

/// grpcio's sinks, which send initial metadata with the first message (a
/// streaming sink) or with the answer (a unary one). A streaming call that
/// ends before its first message sends none: grpcio's `fail` and `close`
/// send empty initial metadata.
trait InitialMetadata {
    fn set_headers(&mut self, headers: Metadata);
}

macro_rules! initial_metadata {
    ($($sink:ident),*) => {$(
        impl<T> InitialMetadata for $sink<T> {
            fn set_headers(&mut self, headers: Metadata) {
                $sink::set_headers(self, headers)
            }
        }
    )*};
}

initial_metadata!(
    UnarySink,
    ClientStreamingSink,
    ServerStreamingSink,
    DuplexSink
);

/// What every call of a service goes through: the limit on calls in flight
/// (shared by every service given the same options), the request size
/// limit, the metrics it is counted in (if any) and the replica's name on
/// its answer.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub in_flight: InFlightLimit,
    pub decoder: RequestDecoder,
    pub metrics: Option<Arc<Metrics>>,
    pub served_by: ServedBy,
    /// Who may call: anyone, without authentication.
    pub authentication: Option<Arc<Authentication>>,
}

impl ServiceOptions {
    /// Requests up to `max_message_bytes`, no limit on calls in flight, no
    /// metrics, no replica name.
    pub fn new(max_message_bytes: usize) -> Self {
        ServiceOptions {
            in_flight: InFlightLimit::new(0),
            decoder: RequestDecoder::new(max_message_bytes),
            metrics: None,
            served_by: ServedBy::default(),
            authentication: None,
        }
    }

    /// The same, with at most `max` calls in flight (0: no limit).
    pub fn with_max_calls_in_flight(self, max: usize) -> Self {
        self.with_in_flight(InFlightLimit::new(max))
    }

    /// The same, its calls holding places of `limit`.
    pub fn with_in_flight(mut self, limit: InFlightLimit) -> Self {
        self.in_flight = limit;
        self
    }

    /// The same, counted in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The same, every call's caller verified by `authentication`.
    pub fn with_authentication(mut self, authentication: Option<Arc<Authentication>>) -> Self {
        self.authentication = authentication;
        self
    }

    fn admission(&self) -> Admission {
        Admission {
            in_flight: self.in_flight.clone(),
            authentication: self.authentication.clone(),
            decoder: self.decoder,
        }
    }

    fn method_metrics<Req, Resp>(&self, method: &Method<Req, Resp>) -> Option<Arc<MethodMetrics>> {
        self.metrics
            .as_ref()
            .map(|metrics| Arc::new(metrics.method(method.ty, method.name)))
    }
}

/// A unary handler, as grpcio registers it.
pub(crate) fn unary<Req, Resp, H>(
    options: &ServiceOptions,
    method: &Method<Req, Resp>,
    mut handle: H,
) -> impl FnMut(RpcContext<'_>, Encoded, UnarySink<Resp>) + Send + Clone + 'static
where
    Req: protobuf::Message,
    Resp: Send + 'static,
    H: FnMut(RpcContext<'_>, Caller, Req, UnaryReply<Resp>) + Send + Clone + 'static,
{
    let (admission, observed) = (options.admission(), options.method_metrics(method));
    let served_by = options.served_by.clone();
    move |ctx: RpcContext<'_>, req: Encoded, mut sink: UnarySink<Resp>| {
        served_by.apply(&mut sink);
        let reply = Reply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        if let Some((caller, req, reply)) = admission.admit_one(&ctx, reply, req) {
            handle(ctx, caller, req, reply)
        }
    }
}

/// A server streaming handler, as grpcio registers it.
pub(crate) fn server_streaming<Req, Resp, H>(
    options: &ServiceOptions,
    method: &Method<Req, Resp>,
    mut handle: H,
) -> impl FnMut(RpcContext<'_>, Encoded, ServerStreamingSink<Resp>) + Send + Clone + 'static
where
    Req: protobuf::Message,
    Resp: Send + 'static,
    H: FnMut(RpcContext<'_>, Caller, Req, ServerStreamReply<Resp>) + Send + Clone + 'static,
{
    let (admission, observed) = (options.admission(), options.method_metrics(method));
    let served_by = options.served_by.clone();
    move |ctx: RpcContext<'_>, req: Encoded, mut sink: ServerStreamingSink<Resp>| {
        let headers = served_by.apply(&mut sink);
        let reply = StreamReply::new(sink, CallRecord::start(observed.as_ref(), &ctx), headers);
        if let Some((caller, req, reply)) = admission.admit_one(&ctx, reply, req) {
            handle(ctx, caller, req, reply)
        }
    }
}

/// A client streaming handler, as grpcio registers it.
pub(crate) fn client_streaming<Req, Resp, H>(
    options: &ServiceOptions,
    method: &Method<Req, Resp>,
    mut handle: H,
) -> impl FnMut(RpcContext<'_>, RequestStream<Encoded>, ClientStreamingSink<Resp>) + Send + Clone + 'static
where
    Req: protobuf::Message,
    H: FnMut(RpcContext<'_>, Caller, Requests<Req>, ClientStreamReply<Resp>)
        + Send
        + Clone
        + 'static,
{
    let (admission, observed) = (options.admission(), options.method_metrics(method));
    let served_by = options.served_by.clone();
    move |ctx: RpcContext<'_>,
          requests: RequestStream<Encoded>,
          mut sink: ClientStreamingSink<Resp>| {
        served_by.apply(&mut sink);
        let reply = Reply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        if let Some((caller, reply, requests)) = admission.admit(&ctx, reply, requests) {
            let requests = admission.decoder.stream(requests, observed.clone());
            handle(ctx, caller, requests, reply)
        }
    }
}

/// A bidirectional streaming handler, as grpcio registers it.
pub(crate) fn duplex<Req, Resp, H>(
    options: &ServiceOptions,
    method: &Method<Req, Resp>,
    mut handle: H,
) -> impl FnMut(RpcContext<'_>, RequestStream<Encoded>, DuplexSink<Resp>) + Send + Clone + 'static
where
    Req: protobuf::Message,
    H: FnMut(RpcContext<'_>, Caller, Requests<Req>, DuplexReply<Resp>) + Send + Clone + 'static,
{
    let (admission, observed) = (options.admission(), options.method_metrics(method));
    let served_by = options.served_by.clone();
    move |ctx: RpcContext<'_>, requests: RequestStream<Encoded>, mut sink: DuplexSink<Resp>| {
        let headers = served_by.apply(&mut sink);
        let reply = StreamReply::new(sink, CallRecord::start(observed.as_ref(), &ctx), headers);
        if let Some((caller, reply, requests)) = admission.admit(&ctx, reply, requests) {
            let requests = admission.decoder.stream(requests, observed.clone());
            handle(ctx, caller, requests, reply)
        }
    }
}
