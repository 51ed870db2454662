//! The adapters every handler is registered through, one per pattern: each
//! observes the call (`observe`), decodes its requests with the service's
//! decoder (refusing those over the limit) and hands the handler typed
//! requests and a reply.

use std::sync::Arc;

use grpcio::{
    ClientStreamingSink, DuplexSink, Method, RequestStream, RpcContext, ServerStreamingSink,
    UnarySink,
};

use super::decode::{RequestDecoder, Requests};
use super::method::Encoded;
use super::observe::{
    CallRecord, ClientStreamReply, DuplexReply, Reply, ServerStreamReply, StreamReply, UnaryReply,
};
use super::refuse::with_request;
use crate::metrics::{MethodMetrics, Metrics};

/// What every call of a service goes through: the request size limit, and
/// the metrics it is counted in (if any).
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub decoder: RequestDecoder,
    pub metrics: Option<Arc<Metrics>>,
}

impl ServiceOptions {
    /// Requests up to `max_message_bytes`, no metrics.
    pub fn new(max_message_bytes: usize) -> Self {
        ServiceOptions {
            decoder: RequestDecoder::new(max_message_bytes),
            metrics: None,
        }
    }

    /// The same, counted in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
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
    H: FnMut(RpcContext<'_>, Req, UnaryReply<Resp>) + Send + Clone + 'static,
{
    let (decoder, observed) = (options.decoder, options.method_metrics(method));
    move |ctx: RpcContext<'_>, req: Encoded, sink: UnarySink<Resp>| {
        let reply = Reply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        with_request(decoder, ctx, req, reply, &mut handle)
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
    H: FnMut(RpcContext<'_>, Req, ServerStreamReply<Resp>) + Send + Clone + 'static,
{
    let (decoder, observed) = (options.decoder, options.method_metrics(method));
    move |ctx: RpcContext<'_>, req: Encoded, sink: ServerStreamingSink<Resp>| {
        let reply = StreamReply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        with_request(decoder, ctx, req, reply, &mut handle)
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
    H: FnMut(RpcContext<'_>, Requests<Req>, ClientStreamReply<Resp>) + Send + Clone + 'static,
{
    let (decoder, observed) = (options.decoder, options.method_metrics(method));
    move |ctx: RpcContext<'_>, requests: RequestStream<Encoded>, sink: ClientStreamingSink<Resp>| {
        let reply = Reply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        let requests = decoder.stream(requests, observed.clone());
        handle(ctx, requests, reply)
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
    H: FnMut(RpcContext<'_>, Requests<Req>, DuplexReply<Resp>) + Send + Clone + 'static,
{
    let (decoder, observed) = (options.decoder, options.method_metrics(method));
    move |ctx: RpcContext<'_>, requests: RequestStream<Encoded>, sink: DuplexSink<Resp>| {
        let reply = StreamReply::new(sink, CallRecord::start(observed.as_ref(), &ctx));
        let requests = decoder.stream(requests, observed.clone());
        handle(ctx, requests, reply)
    }
}
