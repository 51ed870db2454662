//! What the LearningMessenger lab defines, for everything that speaks it: the
//! contract's messages, the answers the lab's server gives, the lab
//! client's demo inputs, and the rooms of its collaborative feed. Nothing
//! here needs grpcio, so a tool that frames gRPC itself (loadgen) links no
//! C-core. The tests' and tools' toolkit over it is messenger-testkit.
//!
//! - [`proto`]: the messages, generated from `proto/` by `scripts/codegen.sh`.
//! - [`method_path`]: each RPC's path, as gRPC routes it.
//! - [`answers`]: what the lab's server answers, word for word.
//! - [`demo`]: what the lab's client sends in its four demos.
//! - [`clock`]: the `HH:MM:SS` timestamps of StreamLearnings.
//! - [`room`]: joining a CollaborativeFeed room, and the server's notices about it.
//! - [`status_code`]: gRPC's status codes by name.

#[rustfmt::skip]
#[path = "../../generated/mod.rs"]
pub mod proto;

pub mod answers;
pub mod clock;
pub mod demo;
pub mod method_path;
pub mod room;
pub mod status_code;
