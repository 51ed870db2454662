//! What every room store does, memory and shared alike: a call joins a room
//! and gets its seat (its deliveries from `room-seq` on), and holds its place
//! there (to send, to wait at the gate, to leave) until its call ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use grpcio::{RpcStatus, RpcStatusCode};
use messenger_lab::room::{self, Recovery};

use super::gate::Gate;
use super::local::Seat;
use super::request::JoinRequest;
use crate::proto::messenger::FeedUpdate;

/// Where rooms are kept: in this process, or in a store that replicas share.
pub(crate) trait RoomStore: Send + Sync {
    /// Joins the requested room: RESOURCE_EXHAUSTED for a full room or
    /// replica, OUT_OF_RANGE for a `room-since` out of the history,
    /// UNAVAILABLE while a shared store cannot be reached.
    fn join(self: Arc<Self>, request: JoinRequest)
        -> BoxFuture<'static, Result<Joined, RpcStatus>>;

    /// Rooms with participants on this replica.
    fn open_rooms(&self) -> usize;

    /// Waits up to `within` for what the store still has to do (leaves being
    /// announced), then stops its own work.
    fn close(&self, within: Duration);

    /// Logs where rooms are kept, once the server has started (a start that
    /// fails says only its error); nothing to say for rooms in this process.
    fn announce(&self) {}
}

/// A participant's place in its room, as its call holds it.
pub(crate) trait Place: Send + Sync {
    /// Sends `update` into the room: resolves once it has its place in the
    /// room's order, or with the status that ends the call.
    fn publish(&self, update: FeedUpdate) -> BoxFuture<'static, Result<(), RpcStatus>>;

    /// The gate at which the room's senders on this replica wait.
    fn gate(&self) -> Arc<Gate>;

    /// Removes the room's local participants that have stayed behind for
    /// longer than the lag bound; when to look again, if one is still behind.
    fn remove_laggards(&self) -> Option<Instant>;

    /// Leaves the room, announced to the others (once: later calls do nothing).
    fn leave(&self);
}

/// A participant that has just joined: its seat, and its place to act from.
pub(crate) struct Joined {
    pub(crate) seat: Seat,
    pub(crate) place: Box<dyn Place>,
}

pub(crate) fn exhausted(message: String) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::RESOURCE_EXHAUSTED, message)
}

pub(crate) fn unavailable(message: String) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, message)
}

/// OUT_OF_RANGE for `request`'s `room-since`, and why.
pub(crate) fn out_of_range(request: &JoinRequest, why: Recovery) -> RpcStatus {
    let since = request.since.unwrap_or_default();
    RpcStatus::with_message(
        RpcStatusCode::OUT_OF_RANGE,
        room::out_of_range(&request.room, since, why),
    )
}

/// Whether `since` can be recovered from a history whose numbering began
/// after `base`, that keeps events `oldest..=newest` (none: `oldest` is
/// `newest + 1`), and if not, why.
pub(crate) fn recovery(since: u64, base: u64, oldest: u64, newest: u64) -> Result<(), Recovery> {
    if since < base {
        Err(Recovery::Reset { base })
    } else if since > newest {
        Err(Recovery::Ahead { newest })
    } else if since + 1 < oldest {
        Err(Recovery::Older { oldest, newest })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_must_fall_within_the_history() {
        assert_eq!(recovery(10, 5, 8, 20), Ok(()));
        assert_eq!(
            recovery(7, 5, 8, 20),
            Ok(()),
            "the event just before the oldest"
        );
        assert_eq!(
            recovery(20, 5, 8, 20),
            Ok(()),
            "the newest: nothing to recover"
        );
        assert_eq!(recovery(21, 5, 8, 20), Err(Recovery::Ahead { newest: 20 }));
        assert_eq!(
            recovery(6, 5, 8, 20),
            Err(Recovery::Older {
                oldest: 8,
                newest: 20
            })
        );
        assert_eq!(recovery(4, 5, 8, 20), Err(Recovery::Reset { base: 5 }));
        assert_eq!(
            recovery(5, 5, 6, 5),
            Ok(()),
            "an empty history, since its start"
        );
    }
}
