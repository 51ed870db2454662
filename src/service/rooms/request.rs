//! What a call asks for in its headers: a room, perhaps a participant's
//! name, perhaps the event to resume after; and the one place a
//! participant's name is decided.

use grpcio::{Metadata, RpcStatus, RpcStatusCode};
use messenger_lab::room::{name_problem, EPOCH_HEADER, ROOM_HEADER, SINCE_HEADER, USER_HEADER};

use super::epoch;
use crate::auth::room_access::{self, Speaker};
use crate::auth::Caller;
use crate::proto::messenger::FeedUpdate;

/// A call's request to take part in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinRequest {
    pub(crate) room: String,
    /// Its name by header; None: named by its first update.
    pub(crate) user: Option<String>,
    /// `room-since`: deliver every event after this one first.
    pub(crate) since: Option<u64>,
    /// `room-epoch`: the history `since` counts in (None: not checked).
    pub(crate) epoch: Option<String>,
}

/// The room `caller` asks to join, if any, and whom its updates may speak
/// as; a bad name, a bad `room-since` or a repeated header is
/// INVALID_ARGUMENT, a room or a name authentication does not allow
/// PERMISSION_DENIED (`auth::room_access`). Header keys arrive lowercase.
pub(crate) fn requested_room(
    headers: &Metadata,
    caller: &Caller,
) -> Result<Option<(JoinRequest, Speaker)>, RpcStatus> {
    let Some(room) = header(headers, ROOM_HEADER)? else {
        return Ok(None);
    };
    check_name(ROOM_HEADER, room)?;
    let user = header(headers, USER_HEADER)?
        .map(|user| check_name(USER_HEADER, user))
        .transpose()?;
    let since = header(headers, SINCE_HEADER)?
        .map(|since| {
            // Digits only: u64's parser would take "+5" too.
            std::str::from_utf8(since)
                .ok()
                .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "{SINCE_HEADER} must be an event number (a decimal integer)"
                    ))
                })
        })
        .transpose()?;
    let epoch = match header(headers, EPOCH_HEADER)? {
        None => None,
        Some(_) if since.is_none() => {
            return Err(invalid(format!(
            "{EPOCH_HEADER} goes with {SINCE_HEADER}: it names the history that position counts in"
        )))
        }
        Some(value) if epoch::well_formed(value) => {
            Some(String::from_utf8_lossy(value).into_owned())
        }
        Some(_) => {
            return Err(invalid(format!(
                "{EPOCH_HEADER} must be what a {} answer sent: 1 to 64 letters and digits",
                messenger_lab::room::SEQ_HEADER
            )))
        }
    };
    let room = String::from_utf8_lossy(room).into_owned();
    let participant = room_access::admit(caller, &room, user.map(str::to_owned))?;
    let request = JoinRequest {
        room,
        user: participant_name(participant.name.as_deref(), None),
        since,
        epoch,
    };
    Ok(Some((request, participant.speaker)))
}

/// A participant's name: its `user` header if it sent one, else the user of
/// its first update. (The one place it is decided: an identity check goes here.)
pub(crate) fn participant_name(header: Option<&str>, first: Option<&FeedUpdate>) -> Option<String> {
    header
        .map(str::to_owned)
        .or_else(|| first.map(|update| update.user.clone()))
}

/// The value of header `key`, if sent once; sent twice is INVALID_ARGUMENT.
fn header<'a>(headers: &'a Metadata, key: &str) -> Result<Option<&'a [u8]>, RpcStatus> {
    let mut values = headers.iter().filter(|(k, _)| *k == key).map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid(format!("more than one {key} header")));
    }
    Ok(first)
}

/// `name` as text, if it is a name a room accepts.
fn check_name<'a>(key: &str, name: &'a [u8]) -> Result<&'a str, RpcStatus> {
    match name_problem(key, name) {
        Some(problem) => Err(invalid(problem)),
        // Printable ASCII, as name_problem has checked.
        None => Ok(std::str::from_utf8(name).unwrap_or_default()),
    }
}

pub(crate) fn invalid(message: String) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::INVALID_ARGUMENT, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use grpcio::MetadataBuilder;

    fn headers(pairs: &[(&str, &str)]) -> Metadata {
        let mut builder = MetadataBuilder::new();
        for (key, value) in pairs {
            builder.add_str(key, value).unwrap();
        }
        builder.build()
    }

    #[test]
    fn a_room_a_name_and_a_since_are_read() {
        let requested =
            |pairs: &[(&str, &str)]| requested_room(&headers(pairs), &Caller::Anonymous);
        assert_eq!(requested(&[]).unwrap(), None);
        let (request, speaker) = requested(&[("room", "lab"), ("room-since", "42")])
            .unwrap()
            .unwrap();
        assert_eq!(speaker, Speaker::Anyone);
        assert_eq!(
            request,
            JoinRequest {
                room: "lab".into(),
                user: None,
                since: Some(42),
                epoch: None,
            }
        );
        let (request, _) = requested(&[
            ("room", "lab"),
            ("room-since", "42"),
            ("room-epoch", "ab12"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(request.epoch.as_deref(), Some("ab12"));
        for (pairs, why) in [
            (&[("room", "lab"), ("room-since", "-1")][..], "event number"),
            (&[("room", "lab"), ("room-since", "x")][..], "event number"),
            (&[("room", "lab"), ("room-since", "+5")][..], "event number"),
            (&[("room", "lab"), ("room-since", "")][..], "event number"),
            (&[("room", "a"), ("room", "b")][..], "more than one room"),
            (&[("room", "")][..], "empty"),
            (
                &[("room", "a"), ("room-epoch", "ab")][..],
                "goes with room-since",
            ),
            (
                &[("room", "a"), ("room-since", "1"), ("room-epoch", "a-b")][..],
                "letters and digits",
            ),
        ] {
            let status = requested(pairs).unwrap_err();
            assert_eq!(status.code(), RpcStatusCode::INVALID_ARGUMENT);
            assert!(status.message().contains(why), "{pairs:?}: {status:?}");
        }
    }
}
