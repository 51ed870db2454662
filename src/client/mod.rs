//! The client side: connecting to a server, the lab's demos and the
//! `client` commands, and reporting a failure in one line.
//!
//! - [`connect`]: the channel to a server (load balancing, retries, deadline, TLS, keepalive).
//! - [`target`]: targets in gRPC's name syntax, checked.
//! - [`error`]: why a command failed, its one-line report and exit code.
//! - [`calls`]: one function per RPC, printing what comes back.
//! - [`demo`]: the lab's four demos, built on those calls.
//! - [`health`]: a health probe, like grpc_health_probe.
//! - [`commands`]: the `client` commands and Ctrl-C.
//! - [`input`]: lines of a file or of standard input, read on a thread of their own.
//! - [`output`]: the lab's lines (coloured on a terminal) or JSON.
//! - [`room`]: `chat --room`: a participant that reconnects with `room-since`.
//! - [`wire`]: `--show-wire`, the calls through an in-process tap that prints every frame.
//! - [`token`]: `--token-file`, a bearer token on every call, never in plaintext off this machine.
//! - `streaming`: the paced sending half of a streaming call.

pub mod calls;
pub mod commands;
pub mod connect;
pub mod demo;
pub mod error;
pub mod health;
pub mod input;
pub mod output;
pub mod room;
mod streaming;
pub mod target;
pub mod token;
pub mod wire;

pub use crate::tls::TlsIdentity;
pub use connect::{connect, open_channel, Balancing, ConnectOptions, LbPolicy};
pub use error::{exit, ClientError};
pub use token::BearerToken;
