//! Refusing a call before any handler sees it: one over the server's limit
//! on calls in flight or from a caller the service does not accept (any
//! pattern), or a single-request call (unary, server streaming) whose
//! request is refused. Either way the call ends with the
//! status saying why.

use std::future::Future;

use grpcio::{RpcContext, RpcStatus};

use super::decode::RequestDecoder;
use super::limit::InFlightLimit;
use super::method::Encoded;
use super::observe::{CallRecord, Reply, SingleAnswer, StreamFailure, StreamReply};

/// The reply of a call, which a refusal ends. `unread` (the call's request
/// stream, if any) is kept until the status is sent: grpcio cancels a call
/// whose request stream is dropped unread, and the cancellation (CANCELLED)
/// could overtake the status.
pub(crate) trait Refusable {
    fn record(&mut self) -> &mut CallRecord;
    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus, unread: impl Send + 'static);
}

impl<S> Refusable for Reply<S>
where
    S: SingleAnswer,
    S::Answer: Send + 'static,
{
    fn record(&mut self) -> &mut CallRecord {
        Reply::record(self)
    }

    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus, unread: impl Send + 'static) {
        send_on(ctx, self.fail(status), unread)
    }
}

impl<S> Refusable for StreamReply<S>
where
    S: StreamFailure,
    S::Failure: Send + 'static,
{
    fn record(&mut self) -> &mut CallRecord {
        StreamReply::record(self)
    }

    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus, unread: impl Send + 'static) {
        send_on(ctx, self.fail(status), unread)
    }
}

/// Drives a refusal to the client on the call's queue, then drops `unread`;
/// if the client has gone, there is nobody left to tell.
fn send_on(
    ctx: &RpcContext<'_>,
    sent: impl Future<Output = grpcio::Result<()>> + Send + 'static,
    unread: impl Send + 'static,
) {
    ctx.spawn(async move {
        let _ = sent.await;
        drop(unread);
    });
}

/// Hands the call and its `requests` to `serve` holding a place among the
/// calls in flight, or refuses it (RESOURCE_EXHAUSTED) when the server has
/// none left.
pub(crate) fn within_limit<R: Refusable, Q: Send + 'static>(
    limit: &InFlightLimit,
    ctx: RpcContext<'_>,
    mut reply: R,
    requests: Q,
    serve: impl FnOnce(RpcContext<'_>, R, Q),
) {
    match limit.admit() {
        Ok(place) => {
            reply.record().hold(place);
            serve(ctx, reply, requests)
        }
        // Not logged: under overload that would be a line per call; the
        // metrics count them (grpc_code="ResourceExhausted").
        Err(status) => reply.refuse(&ctx, status, requests),
    }
}

/// Hands a single-request call to `handle` with its request decoded, or
/// refuses the call with the reason.
pub(crate) fn with_request<Req, S>(
    decoder: RequestDecoder,
    ctx: RpcContext<'_>,
    req: Encoded,
    mut sink: S,
    handle: impl FnOnce(RpcContext<'_>, Req, S),
) where
    Req: protobuf::Message,
    S: Refusable,
{
    match decoder.decode(req) {
        Ok(req) => {
            sink.record().received();
            handle(ctx, req, sink)
        }
        Err(status) => {
            log::warn!(
                "{}: refusing the request: {}",
                String::from_utf8_lossy(ctx.method()),
                status.message()
            );
            sink.refuse(&ctx, status, ())
        }
    }
}
