//! learning-messenger: the LearningMessenger gRPC lab in Rust, on grpcio
//! (gRPC C-core).
//!
//! - [`rpc`]: the hand-built gRPC glue (descriptors, client stubs, service traits, registration).
//! - [`service`]: the handlers: the four LearningMessenger RPCs, and health.
//! - [`auth`]: who is calling (bearer tokens, client certificates) and what it may do in rooms.
//! - [`server`]: running a server (queues, limits, keepalive, TLS, graceful stop).
//! - [`client`]: connecting, the lab's demos and the client's commands.
//! - [`logging`]: the server's log lines, written to stderr in batches.
//! - [`untrusted`]: what a caller sent, escaped for a log line.
//! - [`grpc_log`]: C-core's log lines into `log`, peers' failed TLS handshakes at debug.
//! - [`transport`]: HTTP/2 settings the server and the client share.
//!
//! Every program that links this library allocates with jemalloc (`allocator`).
//!
//! The messages and the lab's expected answers live in `messenger-lab`,
//! which needs no grpcio; [`proto`] is its generated code.

// `ServerConfig::describe`'s one json! of every setting nests deeper than the default.
#![recursion_limit = "256"]

pub use messenger_lab::proto;

mod allocator;
pub mod auth;
pub mod client;
pub mod compression;
pub mod grpc_log;
pub mod logging;
pub mod metrics;
pub mod rpc;
pub mod server;
pub mod service;
mod tls;
pub mod transport;
pub mod untrusted;
