//! A room with participants on this replica, as the Redis store runs it: one
//! task per room takes, in order, the events its subscription brings, the
//! joins of local participants and the resyncs after a reconnect. Each
//! event is delivered once, in number order: a repeat is dropped, a number
//! skipped is filled from the room's history first, and if the history no
//! longer has it, the room's calls here end with UNAVAILABLE (a client then
//! recovers with `room-since`): never a silent gap.

use std::sync::{Arc, Mutex};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use grpcio::RpcStatus;
use log::{debug, warn};
use messenger_lab::room::{self, SINCE_HEADER};

use super::super::event::{Event, ParticipantId};
use super::super::local::{LocalRoom, Seat};
use super::super::request::JoinRequest;
use super::super::store::{exhausted, lock, out_of_range, unavailable};
use super::codec::{self, encode};
use super::keys::Keys;
use super::scripts::{history_reply, join_reply, JoinArgs, JoinReply};
use super::Shared;

pub(super) struct RemoteRoom {
    pub(super) name: String,
    pub(super) keys: Keys,
    pub(super) local: Mutex<LocalRoom>,
    inbox: mpsc::UnboundedSender<Input>,
}

/// What a room's task takes, in order.
pub(super) enum Input {
    /// A message from the room's channel.
    Live(Vec<u8>),
    Join(Job),
    /// The subscription was re-established: events may have been missed.
    Resync,
    /// The room has nobody left here.
    Close,
}

/// A local participant's join.
pub(super) struct Job {
    pub(super) request: JoinRequest,
    pub(super) id: ParticipantId,
    pub(super) reply: oneshot::Sender<Result<Seat, RpcStatus>>,
}

impl RemoteRoom {
    pub(super) fn new(
        name: &str,
        local: LocalRoom,
    ) -> (Arc<RemoteRoom>, mpsc::UnboundedReceiver<Input>) {
        let (inbox, inputs) = mpsc::unbounded();
        let room = Arc::new(RemoteRoom {
            name: name.to_owned(),
            keys: Keys::of(name),
            local: Mutex::new(local),
            inbox,
        });
        (room, inputs)
    }

    /// Hands `input` to the room's task (gone once the room closed: then nobody needs it).
    pub(super) fn send(&self, input: Input) {
        let _ = self.inbox.unbounded_send(input);
    }
}

/// The task of `room`, until it closes.
pub(super) async fn run(
    shared: Arc<Shared>,
    room: Arc<RemoteRoom>,
    mut inputs: mpsc::UnboundedReceiver<Input>,
) {
    let mut task = RoomTask {
        shared,
        room,
        subscribed: false,
        last: None,
    };
    while let Some(input) = inputs.next().await {
        match input {
            Input::Live(payload) => task.live(&payload).await,
            Input::Join(job) => task.join(job).await,
            Input::Resync => {
                if let Some(last) = task.last {
                    task.fill(last + 1, None).await;
                }
            }
            Input::Close => break,
        }
    }
    debug!("room {}: its task ends", task.room.name);
}

struct RoomTask {
    shared: Arc<Shared>,
    room: Arc<RemoteRoom>,
    subscribed: bool,
    /// The number of the last event delivered here; None before the first
    /// join (or after the room's calls were ended): events are then not needed.
    last: Option<u64>,
}

impl RoomTask {
    async fn live(&mut self, payload: &[u8]) {
        let Some(event) = codec::from_message(payload) else {
            warn!(
                "room {}: an event in an unknown form was skipped",
                self.room.name
            );
            return;
        };
        let Some(last) = self.last else {
            return;
        };
        if event.seq <= last {
            return;
        }
        if event.seq > last + 1 && !self.fill(last + 1, Some(event.seq)).await {
            return;
        }
        if self.last.is_some_and(|last| event.seq == last + 1) {
            self.deliver(event);
        }
    }

    /// Delivers the events from number `from` on out of the room's history
    /// (up to `upto`, which the caller has: it is delivered after); says
    /// whether the room's calls go on. The history must continue exactly
    /// where this replica left off, else the calls end.
    async fn fill(&mut self, from: u64, upto: Option<u64>) -> bool {
        let shared = self.shared.clone();
        let call = shared.scripts.history(&self.room.keys, shared.terms, from);
        let read = match shared.link.run(call).await {
            Ok(value) => history_reply(&value),
            Err(e) => Err(format!("the room store failed: {e}")),
        };
        let events = match read {
            Ok((Some(base), events))
                if base < from
                    && events
                        .first()
                        .map_or(upto.is_none(), |first| first.seq == from) =>
            {
                events
            }
            Ok(_) => return self.lose(&format!(
                "events from {from} on are no longer in the room store (it lost or trimmed them)"
            )),
            Err(why) => return self.lose(&why),
        };
        let filled = events.iter().any(|e| upto.is_none_or(|upto| e.seq < upto));
        for event in events {
            if upto.is_some_and(|upto| event.seq >= upto) {
                break;
            }
            self.deliver(event);
        }
        if filled {
            debug!(
                "room {}: a gap from event {from} was filled from the history",
                self.room.name
            );
            shared.counters.gap_filled();
        }
        true
    }

    /// Ends the room's calls here: events may be missing. Returns false.
    fn lose(&mut self, why: &str) -> bool {
        let status = unavailable(format!(
            "room '{}': {why}; rejoin with {SINCE_HEADER} to recover what the room still has",
            self.room.name
        ));
        let removed = lock(&self.room.local).end_all(&status);
        warn!(
            "room {}: {} call(s) ended: {why}",
            self.room.name,
            removed.len()
        );
        self.shared.counters.calls_ended_for_gap(removed.len());
        self.last = None;
        self.shared.ended(&self.room, removed);
        false
    }

    fn deliver(&mut self, event: Event) {
        self.last = Some(event.seq);
        let event = Arc::new(event);
        let removed = lock(&self.room.local).deliver(&event);
        if !removed.is_empty() {
            self.shared.removed_for_lag(&self.room, removed);
        }
    }

    async fn join(&mut self, job: Job) {
        let result = self.seat(&job.request, &job.id).await;
        if let Err(Ok(_seat)) = job.reply.send(result) {
            // Its call ended while it joined: it leaves at once.
            let left = lock(&self.room.local).leave(&job.id).is_some();
            if left {
                self.shared.left(&self.room, &job.id);
            }
        }
        self.shared.join_done(&self.room);
    }

    async fn seat(&mut self, request: &JoinRequest, id: &ParticipantId) -> Result<Seat, RpcStatus> {
        let shared = self.shared.clone();
        if !self.subscribed {
            shared.subscribe(&self.room).await?;
            self.subscribed = true;
        }
        let (joined, left) = match &request.user {
            Some(name) => (encode(&room::joined(name)), encode(&room::left(name))),
            None => Default::default(),
        };
        let args = JoinArgs {
            id,
            since: request.since,
            most: shared.limits.max_room_size.max(1),
            joined,
            left,
        };
        let call = shared.scripts.join(&self.room.keys, shared.terms, args);
        let value = shared
            .link
            .run(call)
            .await
            .map_err(|e| shared.unreachable(&e))?;
        let (reply, expired) =
            join_reply(&value, request.since).map_err(|why| shared.unreachable(&why))?;
        shared.counters.presence_expired(expired);
        let (start, backlog) = match reply {
            JoinReply::Joined { start, backlog } => (start, backlog),
            JoinReply::Full => {
                return Err(exhausted(room::full(
                    &request.room,
                    shared.limits.max_room_size,
                )))
            }
            JoinReply::OutOfRange(why) => return Err(out_of_range(request, why)),
        };
        match self.last {
            None => self.last = Some(start),
            // Numbers went back: the store lost the room and began it anew.
            Some(last) if last > start => {
                self.lose("the room store began the room anew (its events were lost)");
                self.last = Some(start);
            }
            Some(_) => {}
        }
        let backlog = backlog.into_iter().map(Arc::new).collect();
        let first = request.since.unwrap_or(start);
        let seat = lock(&self.room.local).seat(id.clone(), request.user.clone(), first, backlog);
        shared.counters.joined(&request.room, id);
        Ok(seat)
    }
}
