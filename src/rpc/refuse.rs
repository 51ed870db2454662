//! A single-request call (unary, server streaming) whose request is refused
//! ends with the status saying why, before any handler sees it.

use std::future::Future;

use grpcio::{RpcContext, RpcStatus, ServerStreamingSink};

use super::decode::RequestDecoder;
use super::method::Encoded;
use super::observe::{CallRecord, Reply, SingleAnswer, StreamReply};

/// The reply of a call with a single request, which a refused request ends.
pub(crate) trait Refusable {
    fn record(&self) -> &CallRecord;
    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus);
}

impl<S> Refusable for Reply<S>
where
    S: SingleAnswer,
    S::Answer: Send + 'static,
{
    fn record(&self) -> &CallRecord {
        Reply::record(self)
    }

    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus) {
        send_on(ctx, self.fail(status))
    }
}

impl<T> Refusable for StreamReply<ServerStreamingSink<T>> {
    fn record(&self) -> &CallRecord {
        StreamReply::record(self)
    }

    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus) {
        send_on(ctx, self.fail(status))
    }
}

/// Drives a refusal to the client on the call's queue; if the client has gone,
/// there is nobody left to tell.
fn send_on(ctx: &RpcContext<'_>, sent: impl Future<Output = grpcio::Result<()>> + Send + 'static) {
    ctx.spawn(async move {
        let _ = sent.await;
    });
}

/// Hands a single-request call to `handle` with its request decoded, or
/// refuses the call with the reason.
pub(crate) fn with_request<Req, S>(
    decoder: RequestDecoder,
    ctx: RpcContext<'_>,
    req: Encoded,
    sink: S,
    handle: &mut impl FnMut(RpcContext<'_>, Req, S),
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
            sink.refuse(&ctx, status)
        }
    }
}
