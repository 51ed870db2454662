//! Admission: the one step every call takes before its handler sees it,
//! shared by the four adapters (`handler`). In order: a place among the
//! calls in flight, then who is calling, then (for a single-request call)
//! its request decoded. A call that fails a check ends there, with the
//! status saying why, and the later checks never run.

use std::future::Future;
use std::sync::Arc;

use grpcio::{RpcContext, RpcStatus};

use super::decode::RequestDecoder;
use super::limit::InFlightLimit;
use super::method::Encoded;
use super::observe::{CallRecord, Reply, SingleAnswer, StreamFailure, StreamReply};
use crate::auth::{Authentication, Caller};

/// The checks of one service's calls: its limit on calls in flight (shared
/// by every service given the same one), who may call (anyone, without
/// authentication) and its requests' decoder.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(crate) in_flight: InFlightLimit,
    pub(crate) authentication: Option<Arc<Authentication>>,
    pub(crate) decoder: RequestDecoder,
}

impl Admission {
    /// Admits a call and gives back its caller, or refuses it and gives
    /// back nothing: over the limit (RESOURCE_EXHAUSTED), or a caller the
    /// service does not accept. `requests` is held until a refusal is sent.
    pub(crate) fn admit<R: Refusable, Q: Send + 'static>(
        &self,
        ctx: &RpcContext<'_>,
        mut reply: R,
        requests: Q,
    ) -> Option<(Caller, R, Q)> {
        match self.in_flight.admit() {
            Ok(place) => reply.record().hold(place),
            // Not logged: under overload that would be a line per call; the
            // metrics count them (grpc_code="ResourceExhausted").
            Err(status) => return reply.refuse(ctx, status, requests),
        }
        let caller = match &self.authentication {
            None => Caller::Anonymous,
            Some(authentication) => match authentication.caller(ctx) {
                Ok(caller) => caller,
                Err(status) => return reply.refuse(ctx, status, requests),
            },
        };
        Some((caller, reply, requests))
    }

    /// [`Admission::admit`] for a single-request call (unary, server
    /// streaming), and then its request decoded, or the call refused.
    pub(crate) fn admit_one<Req: protobuf::Message, R: Refusable>(
        &self,
        ctx: &RpcContext<'_>,
        reply: R,
        request: Encoded,
    ) -> Option<(Caller, Req, R)> {
        let (caller, mut reply, request) = self.admit(ctx, reply, request)?;
        match self.decoder.decode(request) {
            Ok(request) => {
                reply.record().received();
                Some((caller, request, reply))
            }
            Err(status) => {
                log::warn!(
                    "{}: refusing the request: {}",
                    String::from_utf8_lossy(ctx.method()),
                    status.message()
                );
                reply.refuse(ctx, status, ())
            }
        }
    }
}

/// The reply of a call, which a refusal ends. `unread` (the call's request
/// stream, if any) is kept until the status is sent: grpcio cancels a call
/// whose request stream is dropped unread, and the cancellation (CANCELLED)
/// could overtake the status.
pub(crate) trait Refusable {
    fn record(&mut self) -> &mut CallRecord;

    /// Ends the call with `status`; admits nothing, hence `None`.
    fn refuse<T>(
        self,
        ctx: &RpcContext<'_>,
        status: RpcStatus,
        unread: impl Send + 'static,
    ) -> Option<T>;
}

// Both replies refuse alike: their failure, driven on the call's queue.
macro_rules! refusable {
    ($reply:ident, $kind:ident, $sent:ident) => {
        impl<S> Refusable for $reply<S>
        where
            S: $kind,
            S::$sent: Send + 'static,
        {
            fn record(&mut self) -> &mut CallRecord {
                $reply::record(self)
            }

            fn refuse<T>(
                self,
                ctx: &RpcContext<'_>,
                status: RpcStatus,
                unread: impl Send + 'static,
            ) -> Option<T> {
                send_on(ctx, self.fail(status), unread)
            }
        }
    };
}

refusable!(Reply, SingleAnswer, Answer);
refusable!(StreamReply, StreamFailure, Failure);

/// Drives a refusal to the client on the call's queue, then drops `unread`;
/// if the client has gone, there is nobody left to tell.
fn send_on<T>(
    ctx: &RpcContext<'_>,
    sent: impl Future<Output = grpcio::Result<()>> + Send + 'static,
    unread: impl Send + 'static,
) -> Option<T> {
    ctx.spawn(async move {
        let _ = sent.await;
        drop(unread);
    });
    None
}
