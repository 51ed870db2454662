//! Rooms of the CollaborativeFeed: what a client sends to join one, and the
//! `System` updates the server sends about them. The contract is fixed, so a
//! room travels in request metadata and its notices are `FeedUpdate`s whose
//! user is `System`; this module is the one place their words are written
//! and read back, for the server, the client and the benchmark alike.

use crate::answers::FEED_ECHO_USER;
use crate::proto::messenger::FeedUpdate;

/// The request header that joins a room. Without it the feed is the lab's echo.
pub const ROOM_HEADER: &str = "room";
/// The request header that names a participant in join and leave notices.
/// Without it, the participant is named by the user of its first update.
pub const USER_HEADER: &str = "user";
/// The request header that resumes a room: the number of the last event the
/// caller has; the call first delivers every later event the room still keeps.
pub const SINCE_HEADER: &str = "room-since";
/// The answer's initial-metadata header: the number of the last event before
/// the call's first delivery. The k-th message it delivers is event N+k.
pub const SEQ_HEADER: &str = "room-seq";
/// The history a `room-seq` counts in: a random id the room's history gets
/// when it begins. Sent beside `room-seq`, and taken beside `room-since`: a
/// position from another epoch cannot be resumed (its history was lost).
pub const EPOCH_HEADER: &str = "room-epoch";
/// The longest room or participant name, in bytes (names are printable ASCII,
/// as gRPC's text metadata is, so bytes and characters agree).
pub const MAX_NAME_BYTES: usize = 64;

/// Why a room or participant name is refused, as the status message says it.
pub fn name_problem(what: &str, name: &[u8]) -> Option<String> {
    if name.is_empty() {
        return Some(format!("the {what} name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "the {what} name is {} bytes long, more than {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if !name.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Some(format!(
            "the {what} name is not printable ASCII (letters, digits, punctuation, spaces)"
        ));
    }
    if name.starts_with(b" ") || name.ends_with(b" ") {
        return Some(format!("the {what} name starts or ends with a space"));
    }
    None
}

/// Why a call's `room-since` cannot be recovered (its OUT_OF_RANGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The room keeps no history: none yet, or it expired.
    NoHistory,
    /// The room's numbering began anew after `base`: its earlier history
    /// expired or was lost, so how much was missed is unknown.
    Reset { base: u64 },
    /// Older than the history kept, which holds `oldest` to `newest`.
    Older { oldest: u64, newest: u64 },
    /// Ahead of the room, whose newest event is `newest`: the store came
    /// back older than what the caller had seen, so what it had is lost.
    Ahead { newest: u64 },
    /// From another epoch than the room's history now: that one was lost.
    OtherEpoch,
}

const LOST: &str = " events were lost; ";

/// The OUT_OF_RANGE message for `room-since: since` in `room`.
pub fn out_of_range(room: &str, since: u64, why: Recovery) -> String {
    let rejoin = "join without room-since";
    match why {
        Recovery::NoHistory => format!(
            "room-since {since}: room '{room}' keeps no history (none yet, or it expired); {rejoin}"
        ),
        Recovery::Reset { base } => format!(
            "room-since {since}: room '{room}' began a new history after event {base} \
             (the older one expired or was lost); {rejoin}"
        ),
        Recovery::Older { oldest, newest } => format!(
            "room-since {since}: room '{room}' keeps events {oldest} to {newest}; \
             {}{LOST}{rejoin}",
            oldest - since - 1
        ),
        Recovery::Ahead { newest } => format!(
            "room-since {since} is ahead of room '{room}', whose newest event is {newest}: \
             the room's history was lost (its store came back older); {rejoin}"
        ),
        Recovery::OtherEpoch => format!(
            "room-since {since}: room '{room}' began a new history (another room-epoch): \
             the history after that position was lost; {rejoin}"
        ),
    }
}

/// How many events an OUT_OF_RANGE message says were lost, if it knows.
pub fn lost_events(message: &str) -> Option<u64> {
    let before = &message[..message.find(LOST)?];
    before.rsplit(' ').next()?.parse().ok()
}

/// RESOURCE_EXHAUSTED for a join of a full room.
pub fn full(room: &str, max_room_size: usize) -> String {
    format!("room '{room}' is full: {max_room_size} participants (--max-room-size)")
}

/// RESOURCE_EXHAUSTED for a join that would open one room too many here.
pub fn too_many_rooms(max_rooms: usize) -> String {
    format!("the server has its maximum of {max_rooms} rooms open (--max-rooms)")
}

/// What a received feed update is, to a participant of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The server's acknowledgement of one of our own updates.
    Ack,
    /// Another participant's update, as it was sent.
    Update,
    /// Someone joined the room.
    Join,
    /// Someone left the room: cleanly, by cancelling, by vanishing, or removed for lagging.
    Leave,
}

impl Kind {
    /// How `--json` marks it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ack => "ack",
            Kind::Update => "update",
            Kind::Join => "join",
            Kind::Leave => "leave",
        }
    }
}

const JOINED: &str = " joined the room";
const LEFT: &str = " left the room";
const REMOVED: &str = " was removed from the room: ";

fn system(message: String) -> FeedUpdate {
    FeedUpdate {
        user: FEED_ECHO_USER.to_owned(),
        message,
        ..Default::default()
    }
}

/// The notice that `name` joined.
pub fn joined(name: &str) -> FeedUpdate {
    system(format!("{name}{JOINED}"))
}

/// The notice that `name` left (its call ended: cleanly, cancelled or vanished).
pub fn left(name: &str) -> FeedUpdate {
    system(format!("{name}{LEFT}"))
}

/// How far behind a participant was when it was removed.
pub fn lag(behind: usize) -> String {
    format!("fell {behind} updates behind the room")
}

/// The notice that `name` was removed for falling `behind` updates behind.
pub fn removed(name: &str, behind: usize) -> FeedUpdate {
    system(format!("{name}{REMOVED}{}", lag(behind)))
}

/// What `update` is, as received in a room: the server's words for its
/// notices and acknowledgements, anything else another participant's update.
pub fn classify(update: &FeedUpdate) -> Kind {
    if update.user != FEED_ECHO_USER {
        return Kind::Update;
    }
    let message = update.message.as_str();
    if message.starts_with("Acknowledged ") && message.contains("'s update: ") {
        Kind::Ack
    } else if message.ends_with(JOINED) {
        Kind::Join
    } else if message.ends_with(LEFT) || message.contains(REMOVED) {
        Kind::Leave
    } else {
        Kind::Update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::acknowledge;

    fn update(user: &str, message: &str) -> FeedUpdate {
        FeedUpdate {
            user: user.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn notices_and_acks_are_told_apart() {
        assert_eq!(classify(&joined("ann")), Kind::Join);
        assert_eq!(classify(&left("ann")), Kind::Leave);
        assert_eq!(classify(&removed("ann", 1024)), Kind::Leave);
        assert_eq!(
            removed("ann", 1024).message,
            "ann was removed from the room: fell 1024 updates behind the room"
        );
        assert_eq!(classify(&acknowledge(&update("bob", "hi"))), Kind::Ack);
        assert_eq!(classify(&update("bob", "I joined the room")), Kind::Update);
    }

    #[test]
    fn out_of_range_says_how_much_was_lost_when_it_knows() {
        let older = out_of_range(
            "lab",
            10,
            Recovery::Older {
                oldest: 15,
                newest: 20,
            },
        );
        assert!(older.contains("keeps events 15 to 20"), "{older}");
        assert_eq!(lost_events(&older), Some(4));
        for why in [
            Recovery::NoHistory,
            Recovery::Reset { base: 99 },
            Recovery::Ahead { newest: 5 },
            Recovery::OtherEpoch,
        ] {
            assert_eq!(lost_events(&out_of_range("lab", 10, why)), None, "{why:?}");
        }
    }

    #[test]
    fn names_are_short_printable_and_trimmed() {
        assert_eq!(name_problem("room", b"lab 1"), None);
        assert!(name_problem("room", b"").unwrap().contains("empty"));
        assert!(name_problem("room", &[b'x'; 65]).unwrap().contains("65"));
        assert_eq!(name_problem("room", &[b'x'; 64]), None);
        assert!(name_problem("room", b"a\tb").unwrap().contains("printable"));
        assert!(name_problem("room", "é".as_bytes()).is_some());
        assert!(name_problem("user", b" ann").unwrap().contains("space"));
    }
}
