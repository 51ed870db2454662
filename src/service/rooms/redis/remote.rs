//! A room with participants on this replica, as the Redis store runs it: one
//! task per room takes, in order, the events its subscription brings, the
//! joins of local participants and the resyncs after a reconnect. Each
//! event is delivered once, in number order within the room's epoch: a
//! repeat is dropped, a number skipped is filled from the room's history
//! first. When the history no longer has it, or began a new epoch, or its
//! numbers went back below what was delivered here (the store came back
//! older), the room's calls here end with UNAVAILABLE saying so (a client
//! then resumes with `room-since`, or learns what was lost): never a silent gap.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use grpcio::RpcStatus;
use log::{debug, warn};
use messenger_lab::room::{self, SINCE_HEADER};

use super::super::epoch::Position;
use super::super::event::{Event, ParticipantId};
use super::super::local::{LocalRoom, Seat};
use super::super::request::JoinRequest;
use super::super::store::{exhausted, out_of_range, unavailable};
use super::codec::{self, encode};
use super::keys::Keys;
use super::link::RETRY_EVERY;
use super::scripts::{history_reply, join_reply, History, JoinArgs, JoinReply};
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
        at: None,
    };
    while let Some(input) = inputs.next().await {
        match input {
            Input::Live(payload) => task.live(&payload).await,
            Input::Join(job) => task.join(job).await,
            Input::Resync => {
                if let Some(at) = &task.at {
                    let from = at.seq + 1;
                    task.fill(from, None).await;
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
    /// The last event delivered here; None before the first join (or after
    /// the room's calls were ended): events are then not needed.
    at: Option<Position>,
}

/// Why a fill could not go on: the room's calls end, saying this.
type Lost = String;

impl RoomTask {
    async fn live(&mut self, payload: &[u8]) {
        let Some((epoch, event)) = codec::from_message(payload) else {
            warn!(
                "room {}: an event in an unknown form was skipped",
                self.room.name
            );
            return;
        };
        let Some(at) = self.at.clone() else {
            return;
        };
        if epoch != at.epoch {
            self.lose(&format!(
                "the room store began a new history for it (room-epoch {epoch}): \
                 what came after event {} of room-epoch {} was lost",
                at.seq, at.epoch
            ));
            return;
        }
        if event.seq <= at.seq {
            // A repeat: already filled from the history.
            return;
        }
        if event.seq > at.seq + 1 && !self.fill(at.seq + 1, Some(event.seq)).await {
            return;
        }
        match self.at.as_ref().map(|at| at.seq) {
            Some(seq) if event.seq == seq + 1 => self.deliver(&epoch, event),
            Some(seq) => {
                self.lose(&format!(
                    "event {} does not follow event {seq} and the history could not fill the gap",
                    event.seq
                ));
            }
            None => {}
        }
    }

    /// Delivers the events from number `from` on out of the room's history
    /// (up to `upto`, which the caller has: it is delivered after; without
    /// it, up to the newest), page by page; says whether the room's calls go
    /// on. The history must continue exactly where this replica left off, in
    /// the same epoch, else the calls end.
    async fn fill(&mut self, from: u64, upto: Option<u64>) -> bool {
        match self.fill_pages(from, upto).await {
            Ok(filled) => {
                if filled {
                    debug!(
                        "room {}: a gap from event {from} was filled from the history",
                        self.room.name
                    );
                    self.shared.counters.gap_filled();
                }
                true
            }
            Err(why) => self.lose(&why),
        }
    }

    async fn fill_pages(&mut self, mut from: u64, upto: Option<u64>) -> Result<bool, Lost> {
        let shared = self.shared.clone();
        // The last number to deliver: the one before `upto`, or the newest.
        let mut target = upto.map(|upto| upto - 1);
        let mut filled = false;
        loop {
            let Some(at) = self.at.clone() else {
                return Ok(filled);
            };
            let page = read_page(&shared, &self.room, &at, from).await?;
            let last = *target.get_or_insert(page.newest.seq);
            if from > last {
                return Ok(filled);
            }
            let Some(first) = page.events.first() else {
                return Err(trimmed(from));
            };
            if first.seq != from {
                return Err(trimmed(from));
            }
            for event in page.events {
                if event.seq > last {
                    return Ok(filled);
                }
                from = event.seq + 1;
                filled = true;
                self.deliver(&at.epoch, event);
            }
            if from > last {
                return Ok(filled);
            }
        }
    }

    /// Ends the room's calls here: events may be missing. Returns false.
    fn lose(&mut self, why: &str) -> bool {
        let status = unavailable(format!(
            "room '{}': {why}; rejoin with {SINCE_HEADER} to recover what the room still has",
            self.room.name
        ));
        let removed = self.room.local.lock().end_all(&status);
        warn!(
            "room {}: {} call(s) ended: {why}",
            self.room.name,
            removed.len()
        );
        self.shared.counters.calls_ended_for_gap(removed.len());
        self.at = None;
        self.shared.ended(&self.room, removed);
        false
    }

    fn deliver(&mut self, epoch: &str, event: Event) {
        let at = Position {
            epoch: epoch.to_owned(),
            seq: event.seq,
        };
        self.shared.saw(&self.room.name, &at);
        self.at = Some(at);
        let event = Arc::new(event);
        let removed = self.room.local.lock().deliver(&event);
        if !removed.is_empty() {
            self.shared.removed_for_lag(&self.room, removed);
        }
    }

    async fn join(&mut self, job: Job) {
        let result = self.seat(&job.request, &job.id).await;
        if let Err(Ok(_seat)) = job.reply.send(result) {
            // Its call ended while it joined: it leaves at once.
            let left = self.room.local.lock().leave(&job.id).is_some();
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
            since_epoch: request.epoch.as_deref(),
            most: shared.limits.max_room_size.max(1),
            joined,
            left,
        };
        let seen = shared.seen(&self.room.name);
        let call = shared
            .scripts
            .join(&self.room.keys, shared.terms, seen.as_ref(), args);
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
        shared.saw(&self.room.name, &start);
        match self.at.clone() {
            None => self.at = Some(start.clone()),
            // Numbers went back, or a new history began: the store lost events.
            Some(at) if at.epoch != start.epoch || at.seq > start.seq => {
                self.lose(&format!(
                    "the room store began the room anew (room-epoch {}): what came after \
                     event {} of room-epoch {} was lost",
                    start.epoch, at.seq, at.epoch
                ));
                self.at = Some(start.clone());
            }
            Some(_) => {}
        }
        let backlog = match request.since {
            Some(since) => self.backlog(since, &start, backlog).await,
            None => Ok(Vec::new()),
        };
        let backlog = match backlog {
            Ok(backlog) => backlog,
            Err(why) => {
                // It is in the room in the store: it leaves again.
                shared.announce_leave(&self.room, id, None);
                return Err(unavailable(format!(
                    "room '{}': {why}; rejoin with {SINCE_HEADER}",
                    request.room
                )));
            }
        };
        let backlog = backlog.into_iter().map(Arc::new).collect();
        let first = Position {
            seq: request.since.unwrap_or(start.seq),
            epoch: start.epoch,
        };
        let seat = self
            .room
            .local
            .lock()
            .seat(id.clone(), request.user.clone(), first, backlog);
        shared.counters.joined(&request.room, id);
        Ok(seat)
    }

    /// The events after `since` up to `start` (its join): the join script's
    /// first page, then the history's next pages.
    async fn backlog(
        &self,
        since: u64,
        start: &Position,
        mut backlog: Vec<Event>,
    ) -> Result<Vec<Event>, Lost> {
        let shared = &self.shared;
        backlog.retain(|event| event.seq <= start.seq);
        let mut from = since + 1;
        for event in &backlog {
            if event.seq != from {
                return Err(trimmed(from));
            }
            from += 1;
        }
        while from <= start.seq {
            let page = read_page(shared, &self.room, start, from).await?;
            let mut events = page.events.into_iter().take_while(|e| e.seq <= start.seq);
            let mut any = false;
            for event in &mut events {
                if event.seq != from {
                    return Err(trimmed(from));
                }
                from += 1;
                any = true;
                backlog.push(event);
            }
            if !any {
                return Err(trimmed(from));
            }
        }
        Ok(backlog)
    }
}

/// A page of `room`'s history from number `from` on, as seen from `at`,
/// tried until the store answers or the store grace runs out: refused (the
/// calls end) if the room began a new epoch, or its numbers went back below
/// `at` (the script has then begun a new epoch).
async fn read_page(
    shared: &Arc<Shared>,
    room: &RemoteRoom,
    at: &Position,
    from: u64,
) -> Result<History, Lost> {
    let started = Instant::now();
    let value = loop {
        let seen = shared.seen(&room.name);
        let call =
            shared
                .scripts
                .history(&room.keys, shared.terms, seen.as_ref().or(Some(at)), from);
        match shared.link.run(call).await {
            Ok(value) => break value,
            // A store that does not answer has not lost the history: the
            // room's calls ride it out for the grace, as a publish does (a
            // resubscription's fill often races the watcher's reconnect).
            Err(e) if started.elapsed() < shared.limits.store_grace => {
                debug!("room {}: a page of history, tried again: {e}", room.name);
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => return Err(format!("the room store failed: {e}")),
        }
    };
    let page = history_reply(&value)?;
    let Some(page) = page else {
        return Err(format!(
            "the room store no longer has its history (it lost or expired it): \
             what came after event {} was lost",
            at.seq
        ));
    };
    if page.newest.epoch != at.epoch {
        return Err(format!(
            "the room store began a new history for it (room-epoch {}): \
             what came after event {} of room-epoch {} was lost",
            page.newest.epoch, at.seq, at.epoch
        ));
    }
    if page.newest.seq < at.seq {
        return Err(format!(
            "the room store came back older (its newest event is {}, this replica had \
             event {}): what came after event {} was lost, and a new room-epoch begins",
            page.newest.seq, at.seq, page.newest.seq
        ));
    }
    Ok(page)
}

fn trimmed(from: u64) -> Lost {
    format!("events from {from} on are no longer in the room store (it lost or trimmed them)")
}
