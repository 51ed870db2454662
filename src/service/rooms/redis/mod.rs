//! The Redis store (`--rooms redis://HOST:PORT[/DB]`, or a Redis Cluster:
//! `redis+cluster://HOST:PORT,...`): every replica that names the same
//! Redis shares its rooms, in one order per room.
//!
//! - An event is numbered, kept in the room's history stream and published
//!   on the room's channel by one script, atomically (`scripts`, `lua/`).
//!   A room's keys and channel share one hash slot (`keys`): on a cluster
//!   its scripts run on its shard and publish there only (`SPUBLISH`).
//! - Each replica subscribes only to the rooms with participants on it
//!   (`subscriber`; on a cluster `shards`, one connection per master, the
//!   rooms' channels on the masters that own them) and fans their events out
//!   locally into the bounded queues, in number order, filling any gap from
//!   history (`remote`).
//! - Presence is a heartbeat with a TTL (`heartbeat`); the size limit
//!   counts every replica's participants.
//! - The redis crate needs a tokio reactor: the store owns a small runtime,
//!   and results reach grpcio's futures through channels. No
//!   completion-queue thread ever blocks or runs a tokio future.
//! - A store that does not answer (`link`): new room calls get UNAVAILABLE
//!   at once, open ones after the grace; the rest of the server is untouched.
//!   Clients are told of "the room store", never its URL (it may hold a password).

mod codec;
mod heartbeat;
mod keys;
mod link;
mod publisher;
mod remote;
mod scripts;
mod shards;
mod subscriber;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::channel::{mpsc, oneshot};
use futures::future::{self, BoxFuture, FutureExt};
use grpcio::{RpcStatus, RpcStatusCode};
use log::debug;
use messenger_lab::room::{self, SINCE_HEADER};
use tokio::runtime::{Handle, Runtime};

use super::counters::Counters;
use super::epoch::Position;
use super::event::ParticipantId;
use super::gate::Gate;
use super::local::{LocalRoom, Removed};
use super::request::{participant_name, JoinRequest};
use super::store::{exhausted, unavailable, Joined, Place, RoomStore};
use super::RoomLimits;
use crate::proto::messenger::FeedUpdate;
use codec::encode;
use link::{Link, StoreError, PING_EVERY};
use remote::{Input, Job, RemoteRoom};
use scripts::{Publish, RoomTerms, Scripts};

use super::store_addr::RedisAddr;

/// A page of history read in one round trip holds at most this many events,
/// and past its first this many bytes: a long backlog never stalls the
/// connection that every room's calls share.
const PAGE_EVENTS: usize = 256;
const PAGE_BYTES: usize = 1 << 20;

pub(crate) struct RedisStore {
    shared: Arc<Shared>,
    runtime: Mutex<Option<Runtime>>,
}

/// What the store's tasks and the calls' places share.
pub(super) struct Shared {
    limits: RoomLimits,
    terms: RoomTerms,
    link: Arc<Link>,
    scripts: Scripts,
    registry: Mutex<HashMap<String, Entry>>,
    /// The furthest this replica has seen of each room's numbers (kept after
    /// the room closes here), so that a store found below it, within the
    /// same epoch, begins a new epoch instead of issuing those numbers again.
    seen: Mutex<HashMap<String, Position>>,
    subscriber: mpsc::UnboundedSender<subscriber::Command>,
    /// Unique among the replicas on one store: participants are `REPLICA.N`.
    replica: String,
    next_id: AtomicU64,
    counters: Counters,
    /// Leaves still to be announced.
    pending: AtomicUsize,
    runtime: Handle,
}

/// A room with participants here, or joins under way.
struct Entry {
    room: Arc<RemoteRoom>,
    joining: usize,
}

impl RedisStore {
    /// The store at `url`, connected to if it can be (it need not be: room
    /// calls get UNAVAILABLE until it is). Called from a plain thread: it
    /// blocks for up to a round trip's timeout.
    pub(crate) fn open(
        addr: &RedisAddr,
        limits: RoomLimits,
        counters: Counters,
    ) -> Result<Self, String> {
        let link = Arc::new(Link::new(addr, counters.clone())?);
        let publish = match addr.cluster {
            true => Publish::Sharded,
            false => Publish::Everywhere,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("room-store")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the room store's runtime: {e}"))?;
        let (subscriber, commands) = mpsc::unbounded();
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            limits,
            terms: RoomTerms {
                history: limits.history,
                linger: limits.linger,
                presence_ttl: limits.presence_ttl,
                page_events: PAGE_EVENTS,
                page_bytes: PAGE_BYTES,
            },
            link: link.clone(),
            scripts: Scripts::new(publish),
            registry: Mutex::default(),
            seen: Mutex::default(),
            subscriber,
            replica: format!("{:x}{:x}", started.as_micros(), std::process::id()),
            next_id: AtomicU64::new(1),
            counters: counters.clone(),
            pending: AtomicUsize::new(0),
            runtime: runtime.handle().clone(),
        });
        // The first connection before any call (bounded by the round-trip
        // timeout; a store that is down is logged, and rooms wait for it).
        runtime.block_on(link.check(&shared.scripts));
        match addr.cluster {
            true => runtime.spawn(shards::run(link, commands, counters)),
            false => runtime.spawn(subscriber::run(link, commands, counters)),
        };
        runtime.spawn(heartbeat::run(shared.clone()));
        runtime.spawn(watch(shared.clone()));
        Ok(RedisStore {
            shared,
            runtime: Mutex::new(Some(runtime)),
        })
    }
}

impl RoomStore for RedisStore {
    fn join(
        self: Arc<Self>,
        request: JoinRequest,
    ) -> BoxFuture<'static, Result<Joined, RpcStatus>> {
        let shared = self.shared.clone();
        if !shared.link.is_up() {
            return future::ready(Err(shared.unreachable(&StoreError::Down))).boxed();
        }
        let room = match shared.enter(&request.room) {
            Ok(room) => room,
            Err(refused) => return future::ready(Err(refused)).boxed(),
        };
        let id: ParticipantId = format!(
            "{}.{}",
            shared.replica,
            shared.next_id.fetch_add(1, Ordering::Relaxed)
        )
        .into();
        let (reply, seated) = oneshot::channel();
        room.send(Input::Join(Job {
            request,
            id: id.clone(),
            reply,
        }));
        async move {
            let seat = seated
                .await
                .unwrap_or_else(|_| Err(shared.unreachable(&StoreError::Down)))?;
            let gate = room.local.lock().gate();
            let publisher = publisher::start(&shared, &room, &id);
            let place = RedisPlace {
                shared,
                room,
                id,
                gate,
                updates: AtomicU64::new(0),
                publisher,
                left: AtomicBool::new(false),
            };
            Ok(Joined {
                seat,
                place: Box::new(place),
            })
        }
        .boxed()
    }

    fn open_rooms(&self) -> usize {
        self.shared.registry.lock().len()
    }

    fn announce(&self) {
        self.shared.link.announce();
    }

    fn close(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.shared.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    /// UNAVAILABLE: the store did not do what a room call needed.
    fn unreachable(&self, why: &dyn std::fmt::Display) -> RpcStatus {
        unavailable(format!("the room store failed: {why}"))
    }

    /// The room `name`, opened here if it is new, with one more join under way.
    fn enter(self: &Arc<Self>, name: &str) -> Result<Arc<RemoteRoom>, RpcStatus> {
        let mut registry = self.registry.lock();
        if let Some(entry) = registry.get_mut(name) {
            entry.joining += 1;
            return Ok(entry.room.clone());
        }
        if registry.len() >= self.limits.max_rooms {
            return Err(exhausted(room::too_many_rooms(self.limits.max_rooms)));
        }
        let (room, inputs) = RemoteRoom::new(name, LocalRoom::new(name, self.limits));
        self.runtime
            .spawn(remote::run(self.clone(), room.clone(), inputs));
        registry.insert(
            name.to_owned(),
            Entry {
                room: room.clone(),
                joining: 1,
            },
        );
        self.counters.room_opened(name);
        Ok(room)
    }

    /// Subscribes this replica to `room`'s channel; resolves once Redis confirms.
    async fn subscribe(&self, room: &Arc<RemoteRoom>) -> Result<(), RpcStatus> {
        let (done, confirmed) = oneshot::channel();
        let command = subscriber::Command::Subscribe {
            room: Arc::downgrade(room),
            done,
        };
        if self.subscriber.unbounded_send(command).is_err() {
            return Err(self.unreachable(&StoreError::Down));
        }
        match tokio::time::timeout(link::ROUND_TRIP_TIMEOUT * 3, confirmed).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(self.unreachable(&e)),
            Ok(Err(_)) | Err(_) => Err(self.unreachable(&StoreError::Timeout)),
        }
    }

    /// A join under way in `room` is done (seated or refused).
    fn join_done(self: &Arc<Self>, room: &Arc<RemoteRoom>) {
        if let Some(entry) = self.registry.lock().get_mut(&room.name) {
            if Arc::ptr_eq(&entry.room, room) {
                entry.joining -= 1;
            }
        }
        self.close_if_empty(room);
    }

    /// Closes `room` here if nobody is in it or joining it: its task ends
    /// and its channel is unsubscribed. The unsubscribe is queued under the
    /// registry's lock, so it reaches the subscriber before the subscribe of
    /// any room opened again under that name, and it names this room: it
    /// never leaves a newer one deaf.
    fn close_if_empty(self: &Arc<Self>, room: &Arc<RemoteRoom>) {
        let mut registry = self.registry.lock();
        let Some(entry) = registry.get(&room.name) else {
            return;
        };
        if !Arc::ptr_eq(&entry.room, room) || entry.joining > 0 || !room.local.lock().is_empty() {
            return;
        }
        registry.remove(&room.name);
        let _ = self
            .subscriber
            .unbounded_send(subscriber::Command::Unsubscribe {
                room: Arc::downgrade(room),
            });
        drop(registry);
        room.send(Input::Close);
        self.counters.room_closed(&room.name);
    }

    /// How far this replica has seen `room`'s numbers.
    fn seen(&self, room: &str) -> Option<Position> {
        self.seen.lock().get(room).cloned()
    }

    /// This replica has seen `at` in `room`.
    fn saw(&self, room: &str, at: &Position) {
        let mut seen = self.seen.lock();
        match seen.get_mut(room) {
            Some(known) if known.epoch == at.epoch => known.seq = known.seq.max(at.seq),
            Some(known) => *known = at.clone(),
            None => {
                // Bounded: past the bound, rooms no longer open here are forgotten.
                if seen.len() >= SEEN_ROOMS.max(self.limits.max_rooms * 2) {
                    let open = self.registry.lock();
                    seen.retain(|name, _| open.contains_key(name));
                }
                seen.insert(room.to_owned(), at.clone());
            }
        }
    }

    /// The rooms with participants here.
    fn rooms(&self) -> Vec<Arc<RemoteRoom>> {
        self.registry
            .lock()
            .values()
            .map(|entry| entry.room.clone())
            .collect()
    }

    /// Participant `id` of `room` has left here: announced in the store.
    fn left(self: &Arc<Self>, room: &Arc<RemoteRoom>, id: &str) {
        self.counters.left(&room.name, id);
        self.announce_leave(room, id, None);
        self.close_if_empty(room);
    }

    /// Participants whose calls the store ended (it failed them): they leave.
    fn ended(self: &Arc<Self>, room: &Arc<RemoteRoom>, ended: Vec<Removed>) {
        for removed in &ended {
            self.counters.left(&room.name, &removed.id);
            self.announce_leave(room, &removed.id, None);
        }
        self.close_if_empty(room);
    }

    /// Participants removed for lagging: they leave, announced as removed.
    fn removed_for_lag(self: &Arc<Self>, room: &Arc<RemoteRoom>, removed: Vec<Removed>) {
        for Removed { id, name, behind } in removed {
            self.counters.left(&room.name, &id);
            self.counters.removed_for_lag(&room.name, &id);
            let notice = name.map(|name| encode(&room::removed(&name, behind)));
            self.announce_leave(room, &id, notice);
        }
        self.close_if_empty(room);
    }

    /// Takes participant `id` out of the room in the store, announced by
    /// `notice` or its own leave notice. Tried until the store answers, for
    /// as long as its presence would last anyway (after that, whichever
    /// replica sweeps it announces it).
    fn announce_leave(self: &Arc<Self>, room: &Arc<RemoteRoom>, id: &str, notice: Option<Vec<u8>>) {
        let shared = self.clone();
        let (room, id) = (room.clone(), id.to_owned());
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.runtime.spawn(async move {
            let started = Instant::now();
            loop {
                let seen = shared.seen(&room.name);
                let call = shared.scripts.leave(
                    &room.keys,
                    shared.terms,
                    seen.as_ref(),
                    &id,
                    notice.clone(),
                );
                match shared.link.run(call).await {
                    Ok(_) => break,
                    Err(e) if started.elapsed() >= shared.limits.presence_ttl => {
                        debug!(
                            "room {}: the leave of {id} is left to its TTL: {e}",
                            room.name
                        );
                        break;
                    }
                    Err(_) => tokio::time::sleep(PING_EVERY).await,
                }
            }
            shared.pending.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Rooms whose numbers a replica remembers at least (see [`Shared::seen`]).
const SEEN_ROOMS: usize = 10_000;

/// Pings the store; once it has been down for the grace, ends every open
/// room call here with UNAVAILABLE (once per outage).
async fn watch(shared: Arc<Shared>) {
    let mut ended_this_outage = false;
    loop {
        if shared.link.check(&shared.scripts).await {
            ended_this_outage = false;
        } else if !ended_this_outage
            && shared
                .link
                .down_for()
                .is_some_and(|down| down >= shared.limits.store_grace)
        {
            ended_this_outage = true;
            let status = unavailable(format!(
                "the room store has not answered for {} ms; rejoin with {SINCE_HEADER} once it is back",
                shared.limits.store_grace.as_millis()
            ));
            for room in shared.rooms() {
                let ended = room.local.lock().end_all(&status);
                shared.ended(&room, ended);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PING_EVERY) => {}
            _ = shared.link.reconnect_wanted() => {}
        }
    }
}

/// A participant's place in a room of the Redis store.
struct RedisPlace {
    shared: Arc<Shared>,
    room: Arc<RemoteRoom>,
    id: ParticipantId,
    gate: Arc<Gate>,
    /// Updates sent so far: each numbered once, however often it is retried.
    updates: AtomicU64,
    /// Where its updates go, in order.
    publisher: mpsc::UnboundedSender<publisher::Update>,
    left: AtomicBool,
}

impl Place for RedisPlace {
    fn publish(&self, update: FeedUpdate) -> BoxFuture<'static, Result<(), RpcStatus>> {
        let named = {
            let mut local = self.room.local.lock();
            match local.name_of(&self.id) {
                // Removed: its call is ending.
                None => return future::ready(Ok(())).boxed(),
                Some(Some(_)) => None,
                Some(None) => {
                    let name = participant_name(None, Some(&update)).unwrap_or_default();
                    local.name(&self.id, &name);
                    Some((encode(&room::joined(&name)), encode(&room::left(&name))))
                }
            }
        };
        let counter = self.updates.fetch_add(1, Ordering::Relaxed) + 1;
        let (done, outcome) = oneshot::channel();
        let update = publisher::Update {
            counter,
            payload: encode(&update),
            named,
            done,
        };
        let queued = self.publisher.unbounded_send(update).is_ok();
        async move {
            match outcome.await {
                Ok(outcome) if queued => outcome,
                _ => Err(RpcStatus::with_message(
                    RpcStatusCode::UNAVAILABLE,
                    "the server is stopping".to_owned(),
                )),
            }
        }
        .boxed()
    }

    fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    fn remove_laggards(&self) -> Option<Instant> {
        let (removed, next) = {
            let mut local = self.room.local.lock();
            (local.laggards(Instant::now()), local.next_lag_deadline())
        };
        if !removed.is_empty() {
            self.shared.removed_for_lag(&self.room, removed);
        }
        next
    }

    fn leave(&self) {
        if self.left.swap(true, Ordering::SeqCst) {
            return;
        }
        let here = self.room.local.lock().leave(&self.id).is_some();
        if here {
            self.shared.left(&self.room, &self.id);
        }
    }
}

/// What `--check-config` can check of the store without reaching it: its
/// TLS files, and the client they make.
pub(crate) fn check(addr: &RedisAddr) -> Result<(), String> {
    Link::new(addr, Counters::new(None)).map(drop)
}
