//! A room's keys and channel in Redis. Each is hash-tagged by the room
//! (`{room}`), so a Redis Cluster keeps a room's keys on one shard, where
//! its scripts can touch them together, and spreads rooms over shards.

/// The names under which one room is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Keys {
    /// In the order every script takes them: numbers, history, presence, leave notices, last updates.
    pub(super) all: [String; 5],
    /// Where its events are published.
    pub(super) channel: String,
}

impl Keys {
    pub(super) fn of(room: &str) -> Keys {
        let tag = hash_tag(room);
        let key = |what: &str| format!("room:{{{tag}}}:{what}");
        Keys {
            all: [key("seq"), key("log"), key("who"), key("bye"), key("sent")],
            channel: format!("room:{{{tag}}}"),
        }
    }
}

/// `room` as a hash tag: braces would end the tag early (or, first, empty it
/// and spread the room's keys over shards), so they are escaped.
fn hash_tag(room: &str) -> String {
    room.replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_room_has_the_same_tag() {
        let keys = Keys::of("lab");
        assert_eq!(keys.all[0], "room:{lab}:seq");
        assert_eq!(keys.channel, "room:{lab}");
        let odd = Keys::of("}a{%");
        assert_eq!(odd.all[1], "room:{%7Da%7B%25}:log");
        assert_ne!(Keys::of("a%7D").channel, Keys::of("a}").channel);
    }
}
