//! What the rooms are run with: how large and how long-lived they may grow.

use std::time::Duration;

/// Updates a participant may have waiting before its room's senders wait for it.
pub const DEFAULT_FEED_QUEUE: usize = 1024;
/// Bytes of updates a participant may have waiting before its room's senders wait for it.
pub const DEFAULT_FEED_QUEUE_BYTES: usize = 4 << 20;
/// The largest update a room takes, encoded: its history and every
/// participant's queue hold it, so it is far below --max-message-bytes.
pub const DEFAULT_ROOM_UPDATE_BYTES: usize = 64 << 10;
/// Rooms with participants on one replica.
pub const DEFAULT_MAX_ROOMS: usize = 1000;
/// Participants of one room, on every replica together. Each update costs
/// one queue push per participant, so its fan-out stays well under a millisecond.
pub const DEFAULT_MAX_ROOM_SIZE: usize = 256;
/// Events each room keeps for participants that come back with `room-since`.
pub const DEFAULT_ROOM_HISTORY: usize = 1000;
/// How long a room's history outlives its last participant.
pub const DEFAULT_ROOM_LINGER: Duration = Duration::from_secs(300);
/// How long a participant whose replica stopped renewing it stays in its
/// room (a shared store only): a dead replica's participants leave within it.
pub const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(15);
/// How long a participant may stay behind (its queue full) before it is removed.
pub const DEFAULT_ROOM_LAG: Duration = Duration::from_secs(5);
/// How long open room calls ride out a store that does not answer.
pub const DEFAULT_STORE_GRACE: Duration = Duration::from_secs(2);

/// How large the rooms may grow and how long they and their participants live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomLimits {
    /// Updates a participant may have waiting (at least 1) before the room's
    /// senders on its replica wait for it.
    pub queue: usize,
    /// Bytes of updates a participant may have waiting before its room's
    /// senders on its replica wait for it.
    pub queue_bytes: usize,
    /// The largest update (encoded) a room takes; a larger one is RESOURCE_EXHAUSTED.
    pub update_bytes: usize,
    /// Rooms with participants on this replica.
    pub max_rooms: usize,
    /// Participants of one room, counted on every replica.
    pub max_room_size: usize,
    /// Events kept per room for recovery (`room-since`), at least 1.
    pub history: usize,
    /// How long a room's history is kept after its last participant left.
    pub linger: Duration,
    /// A shared store's heartbeat TTL: renewed every third of it.
    pub presence_ttl: Duration,
    /// How long a participant may stay behind before it is removed.
    pub lag: Duration,
    /// How long open calls ride out an unreachable store before they end.
    pub store_grace: Duration,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            queue: DEFAULT_FEED_QUEUE,
            queue_bytes: DEFAULT_FEED_QUEUE_BYTES,
            update_bytes: DEFAULT_ROOM_UPDATE_BYTES,
            max_rooms: DEFAULT_MAX_ROOMS,
            max_room_size: DEFAULT_MAX_ROOM_SIZE,
            history: DEFAULT_ROOM_HISTORY,
            linger: DEFAULT_ROOM_LINGER,
            presence_ttl: DEFAULT_PRESENCE_TTL,
            lag: DEFAULT_ROOM_LAG,
            store_grace: DEFAULT_STORE_GRACE,
        }
    }
}

impl RoomLimits {
    /// Queued updates at which a participant is removed at once: senders on
    /// other replicas cannot be made to wait, so past its `queue` a queue may
    /// grow only this far while the lag bound runs.
    pub(crate) fn hard_queue(&self) -> usize {
        self.queue.max(1) * 2 + self.max_room_size
    }

    /// A participant's queue bounds, in events and in bytes (the hard bound
    /// leaves room for one more update of the largest size).
    pub(crate) fn queue_bounds(&self) -> super::mailbox::Bounds {
        super::mailbox::Bounds {
            queue: self.queue.max(1),
            queue_bytes: self.queue_bytes.max(1),
            hard: self.hard_queue(),
            hard_bytes: self.queue_bytes.max(1).saturating_mul(2) + self.update_bytes,
        }
    }
}
