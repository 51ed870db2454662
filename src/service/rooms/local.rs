//! The participants of one room on this replica, and the fan-out of the
//! room's numbered events into their queues. Both stores feed it: the
//! memory store as it numbers an event, a shared one as events arrive from
//! the store, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use grpcio::{RpcStatus, RpcStatusCode};
use messenger_lab::room;

use super::epoch::Position;
use super::event::{ParticipantId, SharedEvent};
use super::gate::Gate;
use super::mailbox::{mailbox, Deliveries, Mailbox, Pushed};
use super::RoomLimits;

/// One participant, as its room holds it.
struct Member {
    id: ParticipantId,
    /// The name its join and leave are announced by; None until it is known.
    name: Option<String>,
    /// The number of the last event it gets from its backlog: it gets the later ones.
    live_after: u64,
    mailbox: Mailbox,
    /// Told why, if the room ends its call.
    ended: Option<oneshot::Sender<RpcStatus>>,
}

/// A participant that was removed, to be announced.
#[derive(Debug)]
pub(crate) struct Removed {
    pub(crate) id: ParticipantId,
    pub(crate) name: Option<String>,
    /// Events it had waiting (for lagging).
    pub(crate) behind: usize,
}

/// What a call needs from its room: its events and why the room ended it.
pub(crate) struct Seat {
    pub(crate) id: ParticipantId,
    /// `room-seq`: the number of the last event before its first delivery.
    pub(crate) start: u64,
    /// `room-epoch`: the history `start` counts in.
    pub(crate) epoch: String,
    /// The largest update its room takes.
    pub(crate) update_bytes: usize,
    pub(crate) deliveries: Deliveries,
    pub(crate) ended: oneshot::Receiver<RpcStatus>,
}

pub(crate) struct LocalRoom {
    pub(crate) name: String,
    members: Vec<Member>,
    gate: Arc<Gate>,
    limits: RoomLimits,
}

impl LocalRoom {
    pub(crate) fn new(name: &str, limits: RoomLimits) -> Self {
        LocalRoom {
            name: name.to_owned(),
            members: Vec::new(),
            gate: Arc::default(),
            limits,
        }
    }

    pub(crate) fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn ids(&self) -> Vec<ParticipantId> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }

    /// Seats participant `id`, whose first deliveries are `backlog`, the
    /// events numbered after `start` (in `epoch`); then every later one as it comes.
    pub(crate) fn seat(
        &mut self,
        id: ParticipantId,
        name: Option<String>,
        start: Position,
        backlog: Vec<SharedEvent>,
    ) -> Seat {
        let Position { epoch, seq: start } = start;
        let backlog_len = backlog.len() as u64;
        let (mailbox, deliveries) = mailbox(self.gate.clone(), self.limits.queue_bounds(), backlog);
        let (ended_tx, ended) = oneshot::channel();
        self.members.push(Member {
            id: id.clone(),
            name,
            live_after: start + backlog_len,
            mailbox,
            ended: Some(ended_tx),
        });
        Seat {
            id,
            start,
            epoch,
            update_bytes: self.limits.update_bytes,
            deliveries,
            ended,
        }
    }

    /// Participant `id`'s name, if it is here.
    pub(crate) fn name_of(&self, id: &str) -> Option<Option<&str>> {
        self.member(id).map(|m| m.name.as_deref())
    }

    /// Names participant `id`, if it is here and has no name yet; says whether it did.
    pub(crate) fn name(&mut self, id: &str, name: &str) -> bool {
        match self.members.iter_mut().find(|m| &*m.id == id) {
            Some(member) if member.name.is_none() => {
                member.name = Some(name.to_owned());
                true
            }
            _ => false,
        }
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| &*m.id == id)
    }

    /// Takes participant `id` out (its call has ended): its writer writes
    /// what was queued. Its name, if it was here and named.
    pub(crate) fn leave(&mut self, id: &str) -> Option<Option<String>> {
        let at = self.members.iter().position(|m| &*m.id == id)?;
        let member = self.members.remove(at);
        member.mailbox.close(false);
        Some(member.name)
    }

    /// Queues `event` for everyone it comes after. Those whose queue is at
    /// its hard bound, or has been full for longer than the lag bound, are
    /// removed with RESOURCE_EXHAUSTED and returned, to be announced.
    pub(crate) fn deliver(&mut self, event: &SharedEvent) -> Vec<Removed> {
        let mut behind = Vec::new();
        for (at, member) in self.members.iter().enumerate() {
            if event.seq <= member.live_after {
                continue;
            }
            if let Pushed::Overflowing { behind: n } = member.mailbox.push(event.clone()) {
                behind.push((at, n));
            }
        }
        let mut removed = self.remove_behind(behind);
        removed.extend(self.laggards(Instant::now()));
        removed
    }

    /// Removes those whose queue has been full for longer than the lag bound.
    pub(crate) fn laggards(&mut self, now: Instant) -> Vec<Removed> {
        let lag = self.limits.lag;
        let behind = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.mailbox
                    .full_since()
                    .is_some_and(|since| now.saturating_duration_since(since) >= lag)
            })
            .map(|(at, m)| (at, m.mailbox.len()))
            .collect();
        self.remove_behind(behind)
    }

    /// When the first of the full queues reaches the lag bound, if any is full.
    pub(crate) fn next_lag_deadline(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|m| m.mailbox.full_since())
            .min()
            .map(|since| since + self.limits.lag)
    }

    fn remove_behind(&mut self, mut behind: Vec<(usize, usize)>) -> Vec<Removed> {
        // From the back, so that earlier places stay valid.
        behind.sort_unstable();
        let mut removed = Vec::new();
        for (at, n) in behind.into_iter().rev() {
            let mut member = self.members.remove(at);
            member.mailbox.close(true);
            let why = format!(
                "{} for {} ms; removed from room '{}' (--feed-queue {}, --room-lag-ms {}); \
                 rejoin with {} to catch up",
                room::lag(n),
                self.limits.lag.as_millis(),
                self.name,
                self.limits.queue,
                self.limits.lag.as_millis(),
                room::SINCE_HEADER,
            );
            if let Some(ended) = member.ended.take() {
                let _ = ended.send(RpcStatus::with_message(
                    RpcStatusCode::RESOURCE_EXHAUSTED,
                    why,
                ));
            }
            removed.push(Removed {
                id: member.id,
                name: member.name,
                behind: n,
            });
        }
        removed.reverse();
        removed
    }

    /// Ends every call in the room with `status` (the store failed them); returns those removed.
    pub(crate) fn end_all(&mut self, status: &RpcStatus) -> Vec<Removed> {
        self.members
            .drain(..)
            .map(|mut member| {
                member.mailbox.close(true);
                if let Some(ended) = member.ended.take() {
                    let _ = ended.send(status.clone());
                }
                Removed {
                    id: member.id,
                    name: member.name,
                    behind: 0,
                }
            })
            .collect()
    }

    /// Ends participant `id`'s call with `status`, if it is here.
    pub(crate) fn end(&mut self, id: &str, status: &RpcStatus) -> Option<Removed> {
        let at = self.members.iter().position(|m| &*m.id == id)?;
        let mut member = self.members.remove(at);
        member.mailbox.close(true);
        if let Some(ended) = member.ended.take() {
            let _ = ended.send(status.clone());
        }
        Some(Removed {
            id: member.id,
            name: member.name,
            behind: 0,
        })
    }
}

/// How long until `deadline`, from now (zero if it has passed).
pub(crate) fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
