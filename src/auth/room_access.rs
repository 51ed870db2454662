//! Who a caller is in a feed room, and whether it may join: the one place
//! the rooms ask authentication. An anonymous caller names itself (its
//! `user` header, else its first update's user), as in the lab; an
//! authenticated one is its identity, in the rooms its grant allows only.

use std::sync::Arc;

use grpcio::RpcStatus;
use messenger_lab::answers::FEED_ECHO_USER;

use super::identity::{Caller, Identity, RoomGrant, Source};
use super::refusal::{Reason, Refusal};
use crate::proto::messenger::FeedUpdate;

/// A caller admitted to a room.
#[derive(Debug)]
pub(crate) struct Participant {
    /// The name its join and leave are announced by; None until its first
    /// update names it (an anonymous caller without a `user` header).
    pub(crate) name: Option<String>,
    pub(crate) speaker: Speaker,
}

/// Whom a participant's updates may speak as.
#[derive(Clone, Debug)]
pub(crate) enum Speaker {
    /// Anyone but the server (an anonymous caller).
    Anyone,
    /// This identity only.
    Only(Arc<Identity>),
}

/// Admits `caller` to `room`, its `user` header being `user`: PERMISSION_DENIED
/// for a room its grant does not allow, or for a header naming someone else.
pub(crate) fn admit(
    caller: &Caller,
    room: &str,
    user: Option<String>,
) -> Result<Participant, RpcStatus> {
    let identity = match caller {
        Caller::Anonymous => {
            return Ok(Participant {
                name: user,
                speaker: Speaker::Anyone,
            })
        }
        Caller::Authenticated(identity) => identity,
    };
    let name = &identity.name;
    let refuse =
        |reason, message: String| Err(identity.refusals.count(Refusal::new(reason, message)));
    if !identity.rooms.allows(room) {
        let why = match (&identity.rooms, identity.source) {
            (RoomGrant::Unlisted, Source::Token) => "its token has no rooms claim",
            (RoomGrant::Unlisted, Source::Certificate) => "a client certificate lists no rooms",
            _ => "the token's rooms do not include it",
        };
        let closed = if identity.rooms == RoomGrant::Unlisted {
            ", and this server opens no room to such callers (--auth-open-rooms would open every room)"
        } else {
            ""
        };
        return refuse(
            Reason::Room,
            format!("{name} may not join room '{room}': {why}{closed}"),
        );
    }
    if name == FEED_ECHO_USER {
        return refuse(
            Reason::Name,
            format!("the name {FEED_ECHO_USER} is the server's in a room"),
        );
    }
    if let Some(other) = user.filter(|user| user != name) {
        return refuse(
            Reason::Name,
            format!("the user header names {other:?}, but the caller is {name:?}"),
        );
    }
    Ok(Participant {
        name: Some(name.clone()),
        speaker: Speaker::Only(identity.clone()),
    })
}

/// The same speaker: anyone, or the one identity of one call.
impl PartialEq for Speaker {
    fn eq(&self, other: &Speaker) -> bool {
        match (self, other) {
            (Speaker::Anyone, Speaker::Anyone) => true,
            (Speaker::Only(one), Speaker::Only(other)) => Arc::ptr_eq(one, other),
            _ => false,
        }
    }
}

impl Eq for Speaker {}

impl Speaker {
    /// `update` as it goes into the room: an authenticated participant's
    /// update without a user speaks as it, one naming anyone else is
    /// PERMISSION_DENIED. The server's own name is checked by the room.
    pub(crate) fn speaks(&self, mut update: FeedUpdate) -> Result<FeedUpdate, RpcStatus> {
        let Speaker::Only(identity) = self else {
            return Ok(update);
        };
        if update.user.is_empty() {
            update.user = identity.name.clone();
        }
        if update.user != identity.name {
            return Err(identity.refusals.count(Refusal::new(
                Reason::Name,
                format!(
                    "an update speaks as {:?}, but the caller is {:?}",
                    update.user, identity.name
                ),
            )));
        }
        Ok(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grpcio::RpcStatusCode;

    fn alice(rooms: RoomGrant) -> Caller {
        let identity = Identity::new("alice", "a test", Source::Token, rooms).unwrap();
        Caller::Authenticated(Arc::new(identity))
    }

    fn update(user: &str) -> FeedUpdate {
        FeedUpdate {
            user: user.into(),
            message: "hi".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_anonymous_caller_names_itself_anywhere() {
        let admitted = admit(&Caller::Anonymous, "lab", Some("bob".into())).unwrap();
        assert_eq!(admitted.name.as_deref(), Some("bob"));
        assert_eq!(
            admitted.speaker.speaks(update("carol")).unwrap().user,
            "carol"
        );
        assert_eq!(admit(&Caller::Anonymous, "x", None).unwrap().name, None);
    }

    #[test]
    fn an_authenticated_caller_is_its_identity_in_its_rooms_only() {
        let caller = alice(RoomGrant::Matching(vec!["lab".into(), "team-*".into()]));
        for user in [None, Some("alice".to_owned())] {
            let admitted = admit(&caller, "team-a", user).unwrap();
            assert_eq!(admitted.name.as_deref(), Some("alice"));
            assert_eq!(admitted.speaker.speaks(update("")).unwrap().user, "alice");
            assert_eq!(
                admitted.speaker.speaks(update("alice")).unwrap().user,
                "alice"
            );
            let denied = admitted.speaker.speaks(update("bob")).unwrap_err();
            assert_eq!(denied.code(), RpcStatusCode::PERMISSION_DENIED);
            assert!(denied.message().contains("\"bob\""), "{denied:?}");
        }
        let header = admit(&caller, "lab", Some("bob".into())).unwrap_err();
        assert_eq!(header.code(), RpcStatusCode::PERMISSION_DENIED);
        let room = admit(&caller, "ops", None).unwrap_err();
        assert_eq!(room.code(), RpcStatusCode::PERMISSION_DENIED);
        assert!(room.message().contains("'ops'"), "{room:?}");
    }

    #[test]
    fn a_caller_nothing_lists_rooms_for_joins_none_unless_rooms_are_open() {
        let closed = admit(&alice(RoomGrant::Unlisted), "lab", None).unwrap_err();
        assert_eq!(closed.code(), RpcStatusCode::PERMISSION_DENIED);
        assert_eq!(
            closed.message(),
            "alice may not join room 'lab': its token has no rooms claim, and this server \
             opens no room to such callers (--auth-open-rooms would open every room)"
        );
        let open = admit(&alice(RoomGrant::Any), "lab", None).unwrap();
        assert_eq!(open.name.as_deref(), Some("alice"));
    }
}
