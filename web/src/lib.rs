//! gRPC-Web for browsers, in front of a native gRPC server, as Envoy's
//! `grpc_web` filter does it: a browser's unary and server-streaming calls
//! (`application/grpc-web` and `application/grpc-web-text`) become HTTP/2
//! gRPC calls to the upstream, and their answers come back with the trailers
//! in the body. The translation is tonic-web's ([`tonic_web::GrpcWebLayer`]);
//! the upstream call is hyper's; this crate routes, refuses what gRPC-Web
//! cannot carry, answers CORS and turns upstream failures into statuses.
//!
//! - [`gateway`]: the server: one runtime of its own, the page and the calls.
//! - [`upstream`]: the HTTP/2 call to the gRPC server, on a connection per browser connection.
//! - [`websocket`]: gRPC-Web over a WebSocket, for the patterns whose requests stream.
//! - [`origin`]: who may open a WebSocket (cross-site WebSocket hijacking).
//! - [`grpc_frame`]: where a byte stream stands among gRPC frames.
//! - [`methods`]: each known method's pattern, and the refusal of streamed requests.
//! - [`cors`]: which other origins' pages may call.
//! - [`hosts`]: which names the gateway answers to (DNS rebinding).
//! - [`page`]: the page (checked-in static files) the gateway serves.
//!
//! No grpcio: `webgate` links no C-core, and `server --web-addr` runs this
//! beside grpcio on its own tokio runtime.

pub mod cors;
pub mod gateway;
pub mod grpc_frame;
pub mod hosts;
pub mod methods;
pub mod origin;
pub mod page;
pub mod upstream;
pub mod websocket;

pub use gateway::{Gateway, GatewayOptions, DEFAULT_MAX_MESSAGE_BYTES};
