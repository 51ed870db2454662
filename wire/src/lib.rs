//! The wire view: what gRPC puts on the wire, shown as it passes. A proxy
//! ([`proxy`]) forwards every byte unchanged, both ways, and shows each
//! HTTP/2 frame ([`frame`], with [`names`] for the numbers), each header
//! block HPACK-decoded, and each gRPC message reassembled from its DATA
//! frames ([`message`]) and decoded with the contract ([`contract`]), also
//! as annotated bytes ([`annotate`]). No view shows a credential's bytes
//! ([`credential`]). [`connection`] turns one connection's
//! bytes into [`event`] records; [`output`] prints them as text or JSON,
//! and [`web`] serves a page that draws them live, one lane per stream.
//!
//! No grpcio: `wiretap` links no C-core, and the client runs a tap in-process.

pub mod annotate;
pub mod connection;
pub mod contract;
pub mod credential;
pub mod event;
pub mod frame;
pub mod message;
pub mod names;
pub mod output;
pub mod proxy;
pub mod web;

pub use output::Format;
pub use proxy::{BackgroundTap, TapOptions};
