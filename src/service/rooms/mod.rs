//! Rooms of the CollaborativeFeed: a call that opens the feed with a `room`
//! header takes part in that room instead of getting the lab's echo. Every
//! room event (an update, a join, a leave, a removal) gets the room's next
//! number, and every participant receives every event after its join, in
//! that order, its own updates coming back as acknowledgements in their
//! place. The answer's `room-seq` header is the number of the last event
//! before its first delivery; a call that opens with `room-since: S` first
//! gets the events after S from the room's history.
//!
//! Where rooms are kept is a store (`store`): in this process (`memory`,
//! the default), or on a Redis that replicas share (`redis`), with the same
//! guarantees. Each participant has a bounded queue (`mailbox`); its room's
//! senders on this replica wait at the room's gate while a queue is full
//! (`gate`), and one that stays behind past the lag bound is removed with
//! RESOURCE_EXHAUSTED (`local`).
//!
//! - `request`: what a call asks for in its headers; where a participant's name is decided.
//! - `participate`: a participant's call, from its join to its end.
//! - `epoch`: which run of numbers a position counts in.
//! - `event`, `counters`, `settings`, `store_addr`: events, metrics, limits, `--rooms`.

mod counters;
mod epoch;
mod event;
mod gate;
mod local;
mod mailbox;
mod memory;
mod participate;
mod redis;
mod request;
mod settings;
mod store;
mod store_addr;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use grpcio::RpcStatus;

use crate::metrics::RoomMetrics;
use counters::Counters;
use store::{Joined, RoomStore};

pub(crate) use participate::take_part;
pub(crate) use request::{requested_room, JoinRequest};
pub use settings::{
    RoomLimits, DEFAULT_FEED_QUEUE, DEFAULT_FEED_QUEUE_BYTES, DEFAULT_MAX_ROOMS,
    DEFAULT_MAX_ROOM_SIZE, DEFAULT_PRESENCE_TTL, DEFAULT_ROOM_HISTORY, DEFAULT_ROOM_LAG,
    DEFAULT_ROOM_LINGER, DEFAULT_ROOM_UPDATE_BYTES, DEFAULT_STORE_GRACE,
};
pub use store_addr::{RedisAddr, RedisTlsFiles, RoomStoreAddr};

/// The rooms of one server, shared by every call on every completion queue.
#[derive(Clone)]
pub struct Rooms(Arc<dyn RoomStore>);

impl Rooms {
    /// Rooms in this process.
    pub fn new(limits: RoomLimits, metrics: Option<RoomMetrics>) -> Rooms {
        Rooms(Arc::new(memory::MemoryStore::new(
            limits,
            Counters::new(metrics),
        )))
    }

    /// Rooms kept in `store`. A shared store need not be reachable yet.
    pub fn open(
        store: &RoomStoreAddr,
        limits: RoomLimits,
        metrics: Option<RoomMetrics>,
    ) -> Result<Rooms, String> {
        match store {
            RoomStoreAddr::Memory => Ok(Rooms::new(limits, metrics)),
            RoomStoreAddr::Redis(addr) => {
                let store = redis::RedisStore::open(addr, limits, Counters::new(metrics))?;
                Ok(Rooms(Arc::new(store)))
            }
        }
    }

    /// What can be checked of `store` without reaching it (`--check-config`):
    /// a Redis's TLS files.
    pub fn check(store: &RoomStoreAddr) -> Result<(), String> {
        match store {
            RoomStoreAddr::Memory => Ok(()),
            RoomStoreAddr::Redis(addr) => redis::check(addr),
        }
    }

    /// Joins the requested room (see [`RoomStore::join`]).
    pub(crate) fn join(
        &self,
        request: JoinRequest,
    ) -> BoxFuture<'static, Result<Joined, RpcStatus>> {
        self.0.clone().join(request)
    }

    /// Rooms with participants on this replica.
    pub fn count(&self) -> usize {
        self.0.open_rooms()
    }

    /// Lets the store finish announcing leaves (up to `within`), then stops it.
    pub fn close(&self, within: Duration) {
        self.0.close(within);
    }

    /// Logs where rooms are kept (or that the store is unreachable): once
    /// the server has started, so that a failed start says one line.
    pub fn announce(&self) {
        self.0.announce();
    }
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms::new(RoomLimits::default(), None)
    }
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms").finish_non_exhaustive()
    }
}
