//! What the rooms are run with: where they are kept, and how large and how
//! long-lived they may grow.

use std::fmt;
use std::str::FromStr;
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

/// Where the rooms are kept.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RoomStoreAddr {
    /// In this process: rooms are this replica's alone.
    #[default]
    Memory,
    /// On the Redis at `redis://HOST:PORT[/DB]`: every replica that names it shares its rooms.
    Redis(String),
}

impl FromStr for RoomStoreAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "memory" {
            return Ok(RoomStoreAddr::Memory);
        }
        let bad = |why: &str| format!("--rooms {text}: {why} (memory or redis://HOST:PORT[/DB])");
        let rest = text
            .strip_prefix("redis://")
            .ok_or_else(|| bad("unknown store"))?;
        let (host_port, db) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = host_port.rsplit_once(':').ok_or_else(|| bad("no :PORT"))?;
        if host.is_empty() || host.contains('@') {
            return Err(bad("HOST:PORT without user or password"));
        }
        port.parse::<u16>()
            .map_err(|_| bad("the port is not a number"))?;
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(bad("the database is not a number"));
        }
        Ok(RoomStoreAddr::Redis(text.to_owned()))
    }
}

impl fmt::Display for RoomStoreAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomStoreAddr::Memory => write!(f, "memory"),
            RoomStoreAddr::Redis(url) => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_parse_and_bad_ones_say_why() {
        assert_eq!("memory".parse(), Ok(RoomStoreAddr::Memory));
        assert_eq!(
            "redis://127.0.0.1:6379/2".parse(),
            Ok(RoomStoreAddr::Redis("redis://127.0.0.1:6379/2".into()))
        );
        assert!("redis://[::1]:6379".parse::<RoomStoreAddr>().is_ok());
        for (text, why) in [
            ("mem", "unknown store"),
            ("redis://host", "no :PORT"),
            ("redis://host:x", "not a number"),
            ("redis://u:p@host:1", "without user"),
            ("redis://host:1/a", "database"),
        ] {
            let error = text.parse::<RoomStoreAddr>().unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
