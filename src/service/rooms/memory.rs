//! The memory store, the default: rooms numbered and kept in this process.
//! A replica's rooms are its own; on it, the same guarantees as a shared
//! store: one order, `room-seq`, recovery from a bounded history.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::{self, BoxFuture, FutureExt};
use grpcio::RpcStatus;
use log::debug;
use messenger_lab::room::{self, Recovery};

use super::counters::Counters;
use super::epoch::{self, Position};
use super::event::{Event, ParticipantId, SharedEvent};
use super::gate::Gate;
use super::local::{LocalRoom, Removed};
use super::request::{participant_name, JoinRequest};
use super::store::{exhausted, out_of_range, recovery, Joined, Place, RoomStore};
use super::RoomLimits;
use crate::proto::messenger::FeedUpdate;

pub(crate) struct MemoryStore {
    limits: RoomLimits,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    counters: Counters,
}

#[derive(Default)]
struct Registry {
    rooms: HashMap<String, Arc<Mutex<MemoryRoom>>>,
    /// Rooms with participants.
    open: usize,
}

struct MemoryRoom {
    /// Its history's epoch: a room forgotten and begun again gets a new one.
    epoch: String,
    /// Numbers start after this one.
    base: u64,
    /// The number of the room's newest event.
    last: u64,
    /// The newest events, oldest first, at most `limit`.
    history: VecDeque<SharedEvent>,
    limit: usize,
    local: LocalRoom,
    /// Counted among the open rooms (it has participants, or is being joined).
    open: bool,
    /// When its last participant left.
    emptied: Instant,
}

impl MemoryStore {
    pub(crate) fn new(limits: RoomLimits, counters: Counters) -> Self {
        MemoryStore {
            limits,
            registry: Mutex::default(),
            next_id: AtomicU64::new(1),
            counters,
        }
    }

    /// Forgets the histories that have outlived their linger, and the
    /// oldest beyond as many as rooms may be open, so memory stays bounded.
    fn forget_old(&self, registry: &mut Registry) {
        if registry.rooms.len() <= registry.open {
            return;
        }
        let now = Instant::now();
        let mut empty: Vec<(Instant, String)> = registry
            .rooms
            .iter()
            .filter_map(|(name, room)| {
                let room = room.lock();
                (!room.open).then(|| (room.emptied, name.clone()))
            })
            .collect();
        empty.sort();
        let excess = empty.len().saturating_sub(self.limits.max_rooms);
        for (at, (emptied, name)) in empty.into_iter().enumerate() {
            if at < excess || now.saturating_duration_since(emptied) >= self.limits.linger {
                registry.rooms.remove(&name);
                debug!("room {name}: history forgotten");
            }
        }
    }

    fn join_now(self: Arc<Self>, request: JoinRequest) -> Result<Joined, RpcStatus> {
        let mut registry = self.registry.lock();
        self.forget_old(&mut registry);
        let room = match registry.rooms.get(&request.room) {
            Some(room) => room.clone(),
            // Nothing to recover from.
            None if request.since.is_some() => {
                return Err(out_of_range(&request, Recovery::NoHistory))
            }
            None => {
                let base = first_number();
                let room = Arc::new(Mutex::new(MemoryRoom {
                    epoch: epoch::fresh(),
                    base,
                    last: base,
                    history: VecDeque::new(),
                    limit: self.limits.history.max(1),
                    local: LocalRoom::new(&request.room, self.limits),
                    open: false,
                    emptied: Instant::now(),
                }));
                registry.rooms.insert(request.room.clone(), room.clone());
                room
            }
        };
        let mut state = room.lock();
        let mut backlog = Vec::new();
        if let Some(since) = request.since {
            if request.epoch.as_ref().is_some_and(|e| *e != state.epoch) {
                return Err(out_of_range(&request, Recovery::OtherEpoch));
            }
            let oldest = state.history.front().map_or(state.last + 1, |e| e.seq);
            recovery(since, state.base, oldest, state.last)
                .map_err(|why| out_of_range(&request, why))?;
            backlog.extend(state.history.iter().filter(|e| e.seq > since).cloned());
        }
        if state.local.len() >= self.limits.max_room_size.max(1) {
            return Err(exhausted(room::full(
                &request.room,
                self.limits.max_room_size,
            )));
        }
        if !state.open {
            if registry.open >= self.limits.max_rooms {
                return Err(exhausted(room::too_many_rooms(self.limits.max_rooms)));
            }
            registry.open += 1;
            state.open = true;
            self.counters.room_opened(&request.room);
        }
        drop(registry);
        let id: ParticipantId = self
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .to_string()
            .into();
        if let Some(name) = &request.user {
            let joined = state.append(None, room::joined(name), &self.counters);
            if request.since.is_some() {
                backlog.push(joined);
            }
        }
        let start = Position {
            epoch: state.epoch.clone(),
            seq: request.since.unwrap_or(state.last),
        };
        let seat = state
            .local
            .seat(id.clone(), request.user.clone(), start, backlog);
        self.counters.joined(&request.room, &id);
        let gate = state.local.gate();
        drop(state);
        let place = MemoryPlace {
            store: self,
            room,
            id,
            gate,
        };
        Ok(Joined {
            seat,
            place: Box::new(place),
        })
    }
}

impl RoomStore for MemoryStore {
    fn join(
        self: Arc<Self>,
        request: JoinRequest,
    ) -> BoxFuture<'static, Result<Joined, RpcStatus>> {
        future::ready(self.join_now(request)).boxed()
    }

    fn open_rooms(&self) -> usize {
        self.registry.lock().open
    }

    fn close(&self, _within: Duration) {}
}

impl MemoryRoom {
    /// Numbers `update`, keeps it and delivers it; then, likewise, the
    /// notices of anyone that left behind. Returns the event.
    fn append(
        &mut self,
        sender: Option<ParticipantId>,
        update: FeedUpdate,
        counters: &Counters,
    ) -> SharedEvent {
        let event = self.number(sender, update);
        let removed = self.local.deliver(&event);
        self.settle(removed, counters);
        event
    }

    /// Announces participants removed for lagging, and any that the
    /// announcements leave behind in turn.
    fn settle(&mut self, mut removed: Vec<Removed>, counters: &Counters) {
        let mut notices = VecDeque::new();
        loop {
            for Removed { id, name, behind } in removed {
                counters.left(&self.local.name, &id);
                counters.removed_for_lag(&self.local.name, &id);
                if let Some(name) = name {
                    notices.push_back(self.number(None, room::removed(&name, behind)));
                }
            }
            let Some(notice) = notices.pop_front() else {
                return;
            };
            removed = self.local.deliver(&notice);
        }
    }

    fn number(&mut self, sender: Option<ParticipantId>, update: FeedUpdate) -> SharedEvent {
        self.last += 1;
        let event = Arc::new(Event::new(self.last, sender, update));
        if self.history.len() == self.limit {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        event
    }
}

/// Where a new history's numbers start: the clock, in microseconds, so that
/// a room begun anew (its history expired, the server restarted) never
/// reuses a number a client may still hold.
fn first_number() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

struct MemoryPlace {
    store: Arc<MemoryStore>,
    room: Arc<Mutex<MemoryRoom>>,
    id: ParticipantId,
    gate: Arc<Gate>,
}

impl MemoryPlace {
    fn publish_now(&self, update: FeedUpdate) -> Result<(), RpcStatus> {
        let counters = &self.store.counters;
        let mut room = self.room.lock();
        // Removed: its call is ending.
        let Some(name) = room.local.name_of(&self.id) else {
            return Ok(());
        };
        if name.is_none() {
            let name = participant_name(None, Some(&update)).unwrap_or_default();
            room.local.name(&self.id, &name);
            room.append(None, room::joined(&name), counters);
        }
        room.append(Some(self.id.clone()), update, counters);
        Ok(())
    }
}

impl Place for MemoryPlace {
    fn publish(&self, update: FeedUpdate) -> BoxFuture<'static, Result<(), RpcStatus>> {
        future::ready(self.publish_now(update)).boxed()
    }

    fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    fn remove_laggards(&self) -> Option<Instant> {
        let mut room = self.room.lock();
        let removed = room.local.laggards(Instant::now());
        room.settle(removed, &self.store.counters);
        room.local.next_lag_deadline()
    }

    fn leave(&self) {
        let counters = &self.store.counters;
        let mut room = self.room.lock();
        let Some(name) = room.local.leave(&self.id) else {
            return;
        };
        counters.left(&room.local.name, &self.id);
        if let Some(name) = name {
            room.append(None, room::left(&name), counters);
        }
        if !room.local.is_empty() {
            return;
        }
        // The registry's lock comes first: taken again in that order.
        drop(room);
        let mut registry = self.store.registry.lock();
        let mut room = self.room.lock();
        if room.open && room.local.is_empty() {
            room.open = false;
            room.emptied = Instant::now();
            registry.open -= 1;
            counters.room_closed(&room.local.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::{FutureExt, StreamExt};
    use grpcio::RpcStatusCode;

    fn store(limits: RoomLimits) -> Arc<MemoryStore> {
        Arc::new(MemoryStore::new(limits, Counters::default()))
    }

    fn join(
        store: &Arc<MemoryStore>,
        user: Option<&str>,
        since: Option<u64>,
    ) -> Result<Joined, RpcStatus> {
        block_on(store.clone().join(JoinRequest {
            room: "lab".into(),
            user: user.map(Into::into),
            since,
            epoch: None,
        }))
    }

    fn update(user: &str, message: &str) -> FeedUpdate {
        FeedUpdate {
            user: user.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// What `joined` has been sent so far, as `number user: message` lines
    /// (numbers relative to its `room-seq`).
    fn received(joined: &mut Joined) -> Vec<String> {
        let seat = &mut joined.seat;
        std::iter::from_fn(|| seat.deliveries.next().now_or_never().flatten())
            .map(|event| {
                let update = event.delivery(&seat.id);
                format!(
                    "+{} {}: {}",
                    event.seq - seat.start,
                    update.user,
                    update.message
                )
            })
            .collect()
    }

    fn say(joined: &Joined, user: &str, message: &str) {
        block_on(joined.place.publish(update(user, message))).unwrap();
    }

    #[test]
    fn everyone_sees_one_numbered_order_with_acks_in_place() {
        let store = store(RoomLimits::default());
        let mut ann = join(&store, Some("ann"), None).unwrap();
        let mut bob = join(&store, None, None).unwrap();
        assert_eq!(
            bob.seat.start, ann.seat.start,
            "an unnamed join is no event"
        );
        say(&ann, "ann", "one");
        say(&bob, "bob", "two");
        assert_eq!(
            received(&mut ann),
            [
                "+1 System: Acknowledged ann's update: one",
                "+2 System: bob joined the room",
                "+3 bob: two"
            ]
        );
        // Named by its first update, it is told of its own join too: no number is skipped.
        assert_eq!(
            received(&mut bob),
            [
                "+1 ann: one",
                "+2 System: bob joined the room",
                "+3 System: Acknowledged bob's update: two"
            ]
        );
        bob.place.leave();
        assert_eq!(received(&mut ann), ["+4 System: bob left the room"]);
    }

    #[test]
    fn room_since_recovers_what_was_missed_and_refuses_what_is_gone() {
        let limits = RoomLimits {
            history: 3,
            ..RoomLimits::default()
        };
        let store = store(limits);
        let ann = join(&store, None, None).unwrap();
        let start = ann.seat.start;
        for i in 1..=4 {
            say(&ann, "ann", &i.to_string());
        }
        // Events start+2 .. start+4 (ann's join notice came with its first update) are kept.
        let mut back = join(&store, Some("bob"), Some(start + 3)).unwrap();
        assert_eq!(back.seat.start, start + 3);
        assert_eq!(
            received(&mut back),
            ["+1 ann: 3", "+2 ann: 4", "+3 System: bob joined the room"]
        );
        for (since, code, says) in [
            (start + 1, RpcStatusCode::OUT_OF_RANGE, "keeps events"),
            (start + 99, RpcStatusCode::OUT_OF_RANGE, "ahead of room"),
            (
                start - 1,
                RpcStatusCode::OUT_OF_RANGE,
                "began a new history",
            ),
        ] {
            let status = join(&store, None, Some(since)).err().unwrap();
            assert_eq!(status.code(), code, "{since}: {status:?}");
            assert!(status.message().contains(says), "{since}: {status:?}");
        }
        // bob's join pushed one more out: start+4 .. start+6 are kept.
        let lost = join(&store, None, Some(start + 1)).err().unwrap();
        assert_eq!(room::lost_events(lost.message()), Some(2), "{lost:?}");
        let fresh = store.clone().join(JoinRequest {
            room: "new".into(),
            user: None,
            since: Some(1),
            epoch: None,
        });
        let status = block_on(fresh).err().unwrap();
        assert!(status.message().contains("keeps no history"), "{status:?}");
        // A position from another history is refused as lost, never read into this one.
        let other = store.clone().join(JoinRequest {
            room: "lab".into(),
            user: None,
            since: Some(start + 5),
            epoch: Some("0123abcd".into()),
        });
        let status = block_on(other).err().unwrap();
        assert_eq!(status.code(), RpcStatusCode::OUT_OF_RANGE);
        assert!(status.message().contains("was lost"), "{status:?}");
        let same = store.clone().join(JoinRequest {
            room: "lab".into(),
            user: None,
            since: Some(start + 5),
            epoch: Some(back.seat.epoch.clone()),
        });
        assert!(block_on(same).is_ok());
    }

    #[test]
    fn a_full_queue_holds_its_senders_and_one_that_stays_behind_is_removed() {
        let limits = RoomLimits {
            queue: 3,
            lag: Duration::from_millis(50),
            ..RoomLimits::default()
        };
        let store = store(limits);
        let mut slow = join(&store, Some("slow"), None).unwrap();
        let mut fast = join(&store, Some("fast"), None).unwrap();
        assert_eq!(received(&mut slow), ["+1 System: fast joined the room"]);
        let gate = fast.place.gate();
        for i in 0..3 {
            assert!(gate.is_open(), "the queues have room before update {i}");
            say(&fast, "fast", &i.to_string());
            assert_eq!(received(&mut fast).len(), 1);
        }
        assert!(!gate.is_open(), "slow's queue is full: senders wait");
        assert!(
            fast.place.remove_laggards().is_some(),
            "not yet behind for the lag bound"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(fast.place.remove_laggards().is_none());
        assert!(gate.is_open());
        let status = block_on(&mut slow.seat.ended).unwrap();
        assert_eq!(status.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
        assert!(
            status.message().contains("fell 3 updates behind the room"),
            "{status:?}"
        );
        assert_eq!(
            received(&mut fast),
            ["+4 System: slow was removed from the room: fell 3 updates behind the room"]
        );
        slow.place.leave();
        assert!(received(&mut fast).is_empty(), "no second leave notice");
        assert_eq!(store.open_rooms(), 1);
        fast.place.leave();
        assert_eq!(store.open_rooms(), 0);
    }

    #[test]
    fn limits_are_resource_exhausted() {
        let limits = RoomLimits {
            max_rooms: 1,
            max_room_size: 1,
            ..RoomLimits::default()
        };
        let store = store(limits);
        let _first = join(&store, None, None).unwrap();
        let full = join(&store, None, None).err().unwrap();
        assert_eq!(full.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
        assert!(full.message().contains("full"), "{full:?}");
        let other = store.clone().join(JoinRequest {
            room: "b".into(),
            user: None,
            since: None,
            epoch: None,
        });
        let too_many = block_on(other).err().unwrap();
        assert!(
            too_many.message().contains("maximum of 1 rooms"),
            "{too_many:?}"
        );
    }
}
