//! A room event: one numbered place in the room's single order.

use std::sync::Arc;

use messenger_lab::answers::acknowledge;
use protobuf::Message;

use crate::proto::messenger::FeedUpdate;

/// A participant, as events name their sender: unique on every replica
/// sharing a store, so that a replica knows its own participants' updates.
pub(crate) type ParticipantId = Arc<str>;

/// An update, a join, a leave or a removal, numbered by the room.
#[derive(Debug, PartialEq)]
pub(crate) struct Event {
    pub(crate) seq: u64,
    /// Who sent it; None for the server's notices.
    pub(crate) sender: Option<ParticipantId>,
    pub(crate) update: FeedUpdate,
    /// Its update's encoded size: what it costs a queue that holds it.
    pub(crate) bytes: usize,
}

impl Event {
    pub(crate) fn new(seq: u64, sender: Option<ParticipantId>, update: FeedUpdate) -> Event {
        let bytes = update.compute_size() as usize;
        Event {
            seq,
            sender,
            update,
            bytes,
        }
    }

    /// What participant `me` receives for it: its own update comes back as
    /// the acknowledgement, in the update's place.
    pub(crate) fn delivery(&self, me: &str) -> FeedUpdate {
        match &self.sender {
            Some(sender) if &**sender == me => acknowledge(&self.update),
            _ => self.update.clone(),
        }
    }
}

/// An event shared by every queue that holds it.
pub(crate) type SharedEvent = Arc<Event>;
