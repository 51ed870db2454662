//! Hand-built gRPC glue over grpcio: for each service in `proto/`, its method
//! descriptors, a typed client stub, the service trait a server implements,
//! and the function that registers an implementation. It is what
//! grpcio-compiler would generate, written out by hand.
//!
//! - [`messenger`], [`health`], [`reflection`]: one module per service
//!   (`reflection` serves both of its versions).
//! - `handler`: the adapters every handler is registered through, one per pattern.
//! - `observe`: each call observed once (metrics), and the replies handlers answer through.
//! - `method`: descriptors, and the server's side of each (requests received encoded).
//! - `admission`: the one step before a handler: the limit on calls in
//!   flight, then the caller, then the request; a refusal ends the call.
//! - `decode`: a server's requests checked against the size limit, then decoded.
//! - `limit`: the server-wide count of calls in flight.
//! - `call_end`: telling that a call has ended, and grpcio's refusals once it has.
//! - `blocking`: the client stubs' blocking forms.

pub mod health;
pub mod messenger;
pub mod reflection;

mod admission;
mod blocking;
mod call_end;
mod decode;
mod handler;
mod limit;
mod method;
mod observe;

pub use blocking::BlockingResponses;
pub use call_end::{call_ended, is_call_over, ok_if_call_over};
pub use decode::{RequestDecoder, Requests};
pub use handler::{ServedBy, ServiceOptions, SERVED_BY};
pub use limit::InFlightLimit;
pub use observe::{
    Answered, ClientStreamReply, DuplexReply, Reply, ServerStreamReply, SingleAnswer,
    StreamFailure, StreamReply, UnaryReply,
};
