//! The services: what each RPC does. Handlers never block a completion-queue
//! thread: each call's work is one future spawned on it, delays are timers,
//! and every write is awaited so HTTP/2 flow control paces the stream.
//!
//! - [`messenger`]: the four LearningMessenger handlers, the lab's server.py.
//! - [`rooms`]: the feed's rooms: one order per room, in this process or on Redis, recovery, flow control.
//! - [`health`]: the standard health service and its serving states.
//! - [`reflection`]: server reflection (v1 and v1alpha), from the generated descriptors.
//! - [`in_flight`]: the count of calls whose work is still running.
//! - `outcome`: how the end of a call is logged.

pub mod health;
pub mod in_flight;
pub mod messenger;
mod outcome;
pub mod reflection;
pub mod rooms;

pub use health::HealthService;
pub use in_flight::CallCounter;
pub use messenger::MessengerService;
pub use reflection::ReflectionService;
pub use rooms::{RoomLimits, RoomStoreAddr, Rooms};
