//! What the LearningMessenger lab defines, for everything that speaks it: the
//! contract's messages, the answers the lab's server gives, the lab
//! client's demo inputs, and the checks and reports the tools build on.
//! Nothing here needs grpcio, so a tool that frames gRPC itself (loadgen) links
//! no C-core.
//!
//! - [`proto`]: the messages, generated from `proto/` by `scripts/codegen.sh`.
//! - [`method_path`]: each RPC's path, as gRPC routes it.
//! - [`answers`]: what the lab's server answers, word for word.
//! - [`demo`]: what the lab's client sends in its four demos.
//! - [`checks`]: numbered requests for load tools, and checks of their answers.
//! - [`clock`]: the `HH:MM:SS` timestamps of StreamLearnings.
//! - [`closed_loop`]: the measured window and tally of a closed-loop load.
//! - [`report`]: figures, units and tables.
//! - [`process`]: a process's memory and threads, from `/proc`.
//! - [`port`]: loopback ports for child processes, safe from parallel tests.
//! - [`host`]: which `Host` a local web page answers to (DNS rebinding).
//! - [`room`]: joining a CollaborativeFeed room, and the server's notices about it.
//! - [`status_code`]: gRPC's status codes by name.

#[rustfmt::skip]
#[path = "../../generated/mod.rs"]
pub mod proto;

pub mod answers;
pub mod checks;
pub mod clock;
pub mod closed_loop;
pub mod demo;
pub mod host;
pub mod method_path;
pub mod port;
pub mod process;
pub mod report;
pub mod room;
pub mod status_code;
