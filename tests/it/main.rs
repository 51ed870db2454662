//! The integration tests, one binary: real servers on free loopback ports,
//! the `server` and `client` programs as processes, and the Python reference.
//! Slow tests are `#[ignore]`d, their reason given, so a plain `cargo test`
//! stays quick; `scripts/test.sh` (and CI) runs them too (`--run-ignored all`).

mod strict_h2;
mod support;

mod auth;
mod bootstrap;
mod cli;
mod compression;
mod credentials;
mod deploy;
mod docs;
mod fleet;
mod floods;
mod health;
mod interop;
mod messenger;
mod metrics;
mod multiplexing;
mod prefix;
mod reflection;
mod reliability;
mod room_store;
mod rooms;
mod shutdown;
mod soak;
mod stream_ends;
mod tls;
mod web;
mod wire;
