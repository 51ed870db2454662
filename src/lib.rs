//! learning-messenger: the LearningMessenger gRPC lab in Rust.
//!
//! - [`proto`]: the messages, generated from `proto/` by `scripts/codegen.sh`.
//! - [`rpc`]: the hand-built gRPC glue (descriptors, client stubs, service traits).
//! - [`service`]: the business logic, the four LearningMessenger handlers.
//! - [`health`]: the standard health service and its serving states.
//! - [`server`]: running a server (ports, TLS, keepalive, graceful stop).
//! - [`logging`]: the server's log lines, written to stderr in batches.
//! - [`client`]: connecting, and the client's commands and demos.
//! - [`bench`]: the benchmark: checked load patterns, codec costs, the comparison with Python.

#[path = "../generated/mod.rs"]
pub mod proto;

pub mod rpc;
pub mod client;
pub mod health;
pub mod server;
pub mod logging;
pub mod service;
pub mod bench;
