//! A single-request call (unary, server streaming) whose request is refused
//! ends with the status saying why, before any handler sees it.

use std::future::Future;

use grpcio::{RpcContext, RpcStatus, ServerStreamingSink, UnarySink};

use super::decode::RequestDecoder;
use super::method::Encoded;

/// The sink of a call with a single request, which a refused request ends.
pub(crate) trait Refusable {
    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus);
}

impl<T> Refusable for UnarySink<T> {
    fn refuse(self, ctx: &RpcContext<'_>, status: RpcStatus) {
        send_on(ctx, self.fail(status))
    }
}

impl<T> Refusable for ServerStreamingSink<T> {
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
    handle: impl FnOnce(RpcContext<'_>, Req, S),
) where
    Req: protobuf::Message,
    S: Refusable,
{
    match decoder.decode(req) {
        Ok(req) => handle(ctx, req, sink),
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
