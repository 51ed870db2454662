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
