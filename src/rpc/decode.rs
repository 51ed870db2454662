//! A server's requests: checked against the size limit, then decoded.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use grpcio::{RequestStream, Result, RpcStatus, RpcStatusCode};

use std::sync::Arc;

use super::method::Encoded;
use crate::metrics::MethodMetrics;

/// Decodes a server's requests, refusing those over its size limit.
///
/// The limit is checked here, not by C-core's message-size filter, which the
/// server leaves out of its stack: that filter's cost on every streamed
/// message is measured in `docs/tuning-log.md`. Our server's C-core refuses
/// a message over the limit earlier, at its length prefix (patch 0006), so
/// this check is the one for a server without that channel argument.
#[derive(Clone, Copy, Debug)]
pub struct RequestDecoder {
    max_message_bytes: usize,
}

impl RequestDecoder {
    pub fn new(max_message_bytes: usize) -> Self {
        RequestDecoder { max_message_bytes }
    }

    /// The request, or the status refusing it: RESOURCE_EXHAUSTED for one over
    /// the limit, INTERNAL (gRPC's code for a request that fails to parse) for
    /// bytes that are not the message.
    pub(crate) fn decode<T: protobuf::Message>(
        self,
        Encoded(mut reader): Encoded,
    ) -> std::result::Result<T, RpcStatus> {
        let len = reader.len();
        if len > self.max_message_bytes {
            let reason = format!(
                "request message larger than max ({len} vs. {} bytes)",
                self.max_message_bytes
            );
            return Err(RpcStatus::with_message(
                RpcStatusCode::RESOURCE_EXHAUSTED,
                reason,
            ));
        }
        T::parse_from(&mut protobuf::CodedInputStream::from_buf_read(&mut reader)).map_err(|e| {
            RpcStatus::with_message(
                RpcStatusCode::INTERNAL,
                format!("invalid request message: {e}"),
            )
        })
    }

    /// `encoded`, each request decoded as it is read (and counted in `observed`).
    pub(crate) fn stream<T: protobuf::Message>(
        self,
        encoded: RequestStream<Encoded>,
        observed: Option<Arc<MethodMetrics>>,
    ) -> Requests<T> {
        Requests {
            encoded,
            decoder: self,
            observed,
            message: PhantomData,
        }
    }
}

/// A client's stream of requests, decoded as they are read. A request that is
/// refused ends it with `Err(Error::RpcFailure(status))`: the status to fail
/// the call with. Other errors mean the client has ended the call.
pub struct Requests<T> {
    encoded: RequestStream<Encoded>,
    decoder: RequestDecoder,
    observed: Option<Arc<MethodMetrics>>,
    message: PhantomData<fn() -> T>,
}

impl<T: protobuf::Message> Stream for Requests<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let decoder = self.decoder;
        let next = self.encoded.poll_next_unpin(cx).map(|item| {
            item.map(|encoded| {
                encoded
                    .and_then(|encoded| decoder.decode(encoded).map_err(grpcio::Error::RpcFailure))
            })
        });
        if let (Poll::Ready(Some(Ok(_))), Some(observed)) = (&next, &self.observed) {
            observed.received.inc();
        }
        next
    }
}
