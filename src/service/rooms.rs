//! Rooms of the CollaborativeFeed: a call that opens the feed with a `room`
//! header takes part in that room instead of getting the lab's echo. Each
//! update is acknowledged to its sender and delivered to everyone else in the
//! room, all in one order; joins and leaves are announced as `System` updates.
//!
//! Every participant has a bounded queue of what it has yet to receive, and
//! a writer that drains it into the call with awaited writes (HTTP/2 flow
//! control). Sending only pushes into queues, never waits on a reader: a
//! participant whose queue is full has fallen too far behind, and is removed
//! with RESOURCE_EXHAUSTED while the others go on.
//!
//! Memory per room stays bounded: a queued update is shared by every queue
//! that holds it, and no queue holds anything more than `queue` places behind
//! the room's newest update (its holder would have been removed), so a room
//! keeps at most about `queue` updates and `queue` acknowledgements, plus one
//! pointer per queued place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either};
use futures::{SinkExt, StreamExt, TryStreamExt};
use grpcio::{Metadata, RpcStatus, RpcStatusCode, WriteFlags};
use log::{debug, info};
use messenger_lab::answers::{acknowledge, FEED_ECHO_USER};
use messenger_lab::room::{self, name_problem, ROOM_HEADER, USER_HEADER};

use super::outcome::{log_outcome, reject};
use crate::metrics::RoomMetrics;
use crate::proto::messenger::FeedUpdate;
use crate::rpc::{DuplexReply, Requests};

/// Updates a participant may have waiting before it is removed for lagging.
pub const DEFAULT_FEED_QUEUE: usize = 1024;
/// Rooms open at once.
pub const DEFAULT_MAX_ROOMS: usize = 1000;
/// Participants of one room. Each update costs one queue push per
/// participant under the room's lock, so the fan-out of one update stays
/// well under a millisecond.
pub const DEFAULT_MAX_ROOM_SIZE: usize = 256;

/// How large the rooms and their queues may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomLimits {
    /// Updates a participant may have waiting (at least 1).
    pub queue: usize,
    pub max_rooms: usize,
    pub max_room_size: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            queue: DEFAULT_FEED_QUEUE,
            max_rooms: DEFAULT_MAX_ROOMS,
            max_room_size: DEFAULT_MAX_ROOM_SIZE,
        }
    }
}

/// What a call asks for in its headers: a room, and perhaps its participant's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinRequest {
    room: String,
    user: Option<String>,
}

/// The room a call asks to join, if any; a bad name or a repeated header is
/// INVALID_ARGUMENT. Header keys arrive lowercase.
pub(crate) fn requested_room(headers: &Metadata) -> Result<Option<JoinRequest>, RpcStatus> {
    let header = |key: &str| -> Result<Option<String>, RpcStatus> {
        let mut values = headers.iter().filter(|(k, _)| *k == key).map(|(_, v)| v);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid(format!("more than one {key} header")));
        }
        match name_problem(key, value) {
            Some(problem) => Err(invalid(problem)),
            // Printable ASCII, as name_problem has checked.
            None => Ok(Some(String::from_utf8_lossy(value).into_owned())),
        }
    };
    let Some(room) = header(ROOM_HEADER)? else {
        return Ok(None);
    };
    let user = header(USER_HEADER)?;
    Ok(Some(JoinRequest { room, user }))
}

fn invalid(message: String) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::INVALID_ARGUMENT, message)
}

fn exhausted(message: String) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::RESOURCE_EXHAUSTED, message)
}

/// Locks `mutex`; nothing panics while holding one of these locks, and the
/// state stays consistent even if something did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The rooms of one server, shared by every call on every completion queue.
///
/// Two levels of locks, taken in this order: the registry's, held only to
/// look a room up, create it or remove it; then each room's own, held to
/// order and fan out one update. Updates to a busy room contend only for
/// that room's lock, so calls in other rooms (and echo calls, which take no
/// lock) go on in parallel on the other completion-queue threads; and the
/// fan-out under it only pushes into bounded queues, never waits on a write.
#[derive(Clone, Default)]
pub struct Rooms(Arc<Registry>);

#[derive(Default)]
struct Registry {
    limits: RoomLimits,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    next_id: AtomicU64,
    metrics: Option<RoomMetrics>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("limits", &self.0.limits)
            .finish_non_exhaustive()
    }
}

struct Room {
    name: String,
    members: Mutex<Vec<Member>>,
}

/// One participant, as its room holds it.
struct Member {
    id: u64,
    /// The name its join and leave are announced by; None until it is known
    /// (no `user` header and no update yet: nobody has been told it is here).
    name: Option<String>,
    queue: mpsc::Sender<Arc<FeedUpdate>>,
    /// Told why, if the room removes it.
    removed: Option<oneshot::Sender<RpcStatus>>,
}

/// An update on its way to a room's members.
enum Outgoing {
    /// To everyone but `skip`.
    Notice {
        skip: Option<u64>,
        update: Arc<FeedUpdate>,
    },
    /// `update` from `sender`, who gets `ack` in its place.
    Update {
        sender: u64,
        update: Arc<FeedUpdate>,
        ack: FeedUpdate,
    },
}

impl Rooms {
    pub fn new(limits: RoomLimits, metrics: Option<RoomMetrics>) -> Rooms {
        Rooms(Arc::new(Registry {
            limits,
            metrics,
            ..Registry::default()
        }))
    }

    /// Joins the requested room, creating it if it is new; a full server or
    /// room is RESOURCE_EXHAUSTED.
    pub(crate) fn join(&self, request: JoinRequest) -> Result<Joined, RpcStatus> {
        let registry = &*self.0;
        let limits = registry.limits;
        let mut rooms = lock(&registry.rooms);
        let room = match rooms.get(&request.room) {
            Some(room) => room.clone(),
            None if rooms.len() >= limits.max_rooms => {
                return Err(exhausted(format!(
                    "the server has its maximum of {} rooms open (--max-rooms)",
                    limits.max_rooms
                )))
            }
            None => {
                let room = Arc::new(Room {
                    name: request.room.clone(),
                    members: Mutex::new(Vec::new()),
                });
                rooms.insert(request.room.clone(), room.clone());
                if let Some(metrics) = &registry.metrics {
                    metrics.rooms.inc();
                }
                info!("room {} opened", room.name);
                room
            }
        };
        let mut members = lock(&room.members);
        // The room cannot be closed while we hold its lock: the registry's
        // is not needed for the fan-out of our join.
        drop(rooms);
        if members.len() >= limits.max_room_size.max(1) {
            return Err(exhausted(format!(
                "room '{}' is full: {} participants (--max-room-size)",
                room.name, limits.max_room_size
            )));
        }
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = &request.user {
            self.send(&room, &mut members, notice(None, room::joined(name)));
        }
        // With one sender, a channel of `buffer` holds `buffer + 1` messages.
        let (queue, deliveries) = mpsc::channel(limits.queue.max(1) - 1);
        let (removed_tx, removed) = oneshot::channel();
        members.push(Member {
            id,
            name: request.user,
            queue,
            removed: Some(removed_tx),
        });
        if let Some(metrics) = &registry.metrics {
            metrics.participants.inc();
        }
        debug!("room {}: participant {id} joined", room.name);
        drop(members);
        Ok(Joined {
            membership: Membership {
                rooms: self.clone(),
                room,
                id,
            },
            deliveries,
            removed,
        })
    }

    /// Delivers `first`, and the notices of any member it leaves behind, to
    /// `members`, in the order given. A member whose queue is full is
    /// removed and told why; its call ends.
    fn send(&self, room: &Room, members: &mut Vec<Member>, first: Outgoing) {
        let queue = self.0.limits.queue;
        let mut outgoing = std::collections::VecDeque::from([first]);
        while let Some(next) = outgoing.pop_front() {
            let (skip, update, mut ack, sender) = match next {
                Outgoing::Notice { skip, update } => (skip, update, None, None),
                Outgoing::Update {
                    sender,
                    update,
                    ack,
                } => (None, update, Some(ack), Some(sender)),
            };
            let mut behind = Vec::new();
            members.retain_mut(|member| {
                if Some(member.id) == skip {
                    return true;
                }
                let item = match ack.take_if(|_| Some(member.id) == sender) {
                    Some(ack) => Arc::new(ack),
                    None => update.clone(),
                };
                match member.queue.try_send(item) {
                    Ok(()) => true,
                    Err(e) if e.is_full() => {
                        behind.push((member.name.take(), member.removed.take(), member.id));
                        false
                    }
                    // Its call is over; it leaves the room itself.
                    Err(_) => true,
                }
            });
            for (name, removed, id) in behind {
                info!(
                    "room {}: participant {id} removed, {}",
                    room.name,
                    room::lag(queue)
                );
                if let Some(metrics) = &self.0.metrics {
                    metrics.participants.dec();
                    metrics.lagging.inc();
                }
                if let Some(removed) = removed {
                    let _ = removed.send(exhausted(format!(
                        "{}; removed from room '{}' (--feed-queue {queue})",
                        room::lag(queue),
                        room.name
                    )));
                }
                if let Some(name) = name {
                    outgoing.push_back(notice(None, room::removed(&name, queue)));
                }
            }
        }
    }

    /// Removes `room` from the registry if nobody is left in it.
    fn close_if_empty(&self, room: &Arc<Room>) {
        let mut rooms = lock(&self.0.rooms);
        let empty = lock(&room.members).is_empty();
        let registered = rooms
            .get(&room.name)
            .is_some_and(|known| Arc::ptr_eq(known, room));
        if empty && registered {
            rooms.remove(&room.name);
            if let Some(metrics) = &self.0.metrics {
                metrics.rooms.dec();
            }
            info!("room {} closed", room.name);
        }
    }

    /// Rooms open now.
    pub fn count(&self) -> usize {
        lock(&self.0.rooms).len()
    }
}

fn notice(skip: Option<u64>, update: FeedUpdate) -> Outgoing {
    Outgoing::Notice {
        skip,
        update: Arc::new(update),
    }
}

/// A participant, as its call holds it: it leaves the room when dropped,
/// however the call ends.
pub(crate) struct Membership {
    rooms: Rooms,
    room: Arc<Room>,
    id: u64,
}

/// A participant that has just joined: what its call needs.
pub(crate) struct Joined {
    membership: Membership,
    /// What it has yet to receive, in the room's order.
    deliveries: mpsc::Receiver<Arc<FeedUpdate>>,
    /// Resolves with the status to end the call with if the room removes it.
    removed: oneshot::Receiver<RpcStatus>,
}

impl Membership {
    /// Acknowledges `update` to its sender and delivers it to the others.
    /// The user `System` is the server's: refused, so notices cannot be forged.
    fn publish(&self, update: FeedUpdate) -> Result<(), RpcStatus> {
        if update.user == FEED_ECHO_USER {
            return Err(invalid(format!(
                "the user name {FEED_ECHO_USER} is the server's in a room"
            )));
        }
        debug!(
            " [Feed] {} from {}: {}",
            self.room.name, update.user, update.message
        );
        let mut members = lock(&self.room.members);
        let Some(me) = members.iter_mut().find(|member| member.id == self.id) else {
            // Removed for lagging: the call is ending.
            return Ok(());
        };
        if me.name.is_none() {
            me.name = Some(update.user.clone());
            let joined = notice(Some(self.id), room::joined(&update.user));
            self.rooms.send(&self.room, &mut members, joined);
        }
        let ack = acknowledge(&update);
        let outgoing = Outgoing::Update {
            sender: self.id,
            update: Arc::new(update),
            ack,
        };
        self.rooms.send(&self.room, &mut members, outgoing);
        Ok(())
    }

    /// Leaves the room (once: later calls do nothing), telling the others,
    /// and closes the room if it is now empty. Its queue's sender goes with
    /// it, so the writer ends once what is queued is written.
    fn leave(&self) {
        let mut members = lock(&self.room.members);
        if let Some(at) = members.iter().position(|member| member.id == self.id) {
            let me = members.remove(at);
            if let Some(metrics) = &self.rooms.0.metrics {
                metrics.participants.dec();
            }
            debug!("room {}: participant {} left", self.room.name, self.id);
            if let Some(name) = me.name {
                self.rooms
                    .send(&self.room, &mut members, notice(None, room::left(&name)));
            }
        }
        let empty = members.is_empty();
        drop(members);
        if empty {
            self.rooms.close_if_empty(&self.room);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.leave();
    }
}

/// How a participant's call came to an end.
enum Ended {
    /// Its requests ended (`read`) and what was queued for it was written (`written`).
    Finished {
        read: grpcio::Result<()>,
        written: grpcio::Result<()>,
    },
    /// The room removed it, with this status.
    Removed(RpcStatus),
}

/// A participant's call, from its join to its end: its updates go into the
/// room as they are read, while its queue is written out with awaited writes.
/// Leaving cleanly (the requests end), being cancelled and vanishing (they
/// fail) all leave the room at once; the remaining queue is then written and
/// the call closed. Removed for lagging, the call ends with the room's status.
pub(crate) async fn take_part(
    joined: Joined,
    mut updates: Requests<FeedUpdate>,
    mut sink: DuplexReply<FeedUpdate>,
) {
    const METHOD: &str = "CollaborativeFeed";
    let Joined {
        membership,
        deliveries,
        removed,
    } = joined;
    let mut deliveries = deliveries.map(|update| {
        // The last holder of an update (an ack, a notice) writes it without a copy.
        Ok((Arc::unwrap_or_clone(update), WriteFlags::default()))
    });
    let ended = {
        let reader = async {
            let read = loop {
                match updates.try_next().await {
                    Ok(Some(update)) => {
                        if let Err(status) = membership.publish(update) {
                            break Err(grpcio::Error::RpcFailure(status));
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            membership.leave();
            read
        };
        let writer = sink.send_all(&mut deliveries);
        let both = future::join(reader, writer);
        futures::pin_mut!(both);
        match future::select(both, removed).await {
            Either::Left(((read, written), _)) => Ended::Finished { read, written },
            Either::Right((Ok(status), _)) => Ended::Removed(status),
            // Our own leave dropped the signal: the queue is being written out.
            Either::Right((Err(oneshot::Canceled), both)) => {
                let (read, written) = both.await;
                Ended::Finished { read, written }
            }
        }
    };
    // Out of the room before waiting on the call's end, which a client that
    // never reads may hold up.
    drop(membership);
    match ended {
        Ended::Removed(status) => log_outcome(METHOD, sink.fail(status).await),
        Ended::Finished { read: Err(e), .. } => reject(METHOD, e, |status| sink.fail(status)).await,
        Ended::Finished {
            read: Ok(()),
            written: Err(e),
        } => log_outcome(METHOD, Err(e)),
        Ended::Finished {
            read: Ok(()),
            written: Ok(()),
        } => log_outcome(METHOD, sink.close().await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn request(room: &str, user: Option<&str>) -> JoinRequest {
        JoinRequest {
            room: room.to_owned(),
            user: user.map(str::to_owned),
        }
    }

    fn update(user: &str, message: &str) -> FeedUpdate {
        FeedUpdate {
            user: user.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// What `joined` has been sent so far, as `user: message` lines.
    fn received(joined: &mut Joined) -> Vec<String> {
        std::iter::from_fn(|| joined.deliveries.try_recv().ok())
            .map(|u| format!("{}: {}", u.user, u.message))
            .collect()
    }

    #[test]
    fn everyone_sees_one_order_with_acks_in_place() {
        let rooms = Rooms::new(RoomLimits::default(), None);
        let mut ann = rooms.join(request("lab", Some("ann"))).unwrap();
        let mut bob = rooms.join(request("lab", None)).unwrap();
        ann.membership.publish(update("ann", "one")).unwrap();
        bob.membership.publish(update("bob", "two")).unwrap();
        assert_eq!(
            received(&mut ann),
            [
                "System: Acknowledged ann's update: one",
                "System: bob joined the room",
                "bob: two"
            ]
        );
        assert_eq!(
            received(&mut bob),
            ["ann: one", "System: Acknowledged bob's update: two"]
        );
        drop(bob);
        assert_eq!(received(&mut ann), ["System: bob left the room"]);
    }

    #[test]
    fn a_full_queue_removes_its_participant_and_the_room_closes_when_empty() {
        let limits = RoomLimits {
            queue: 3,
            ..RoomLimits::default()
        };
        let rooms = Rooms::new(limits, None);
        let mut slow = rooms.join(request("lab", Some("slow"))).unwrap();
        let mut fast = rooms.join(request("lab", Some("fast"))).unwrap();
        assert_eq!(received(&mut slow), ["System: fast joined the room"]);
        for i in 0..3 {
            fast.membership
                .publish(update("fast", &i.to_string()))
                .unwrap();
            assert_eq!(received(&mut fast).len(), 1);
        }
        assert!(slow.removed.try_recv().unwrap().is_none(), "three fit");
        fast.membership.publish(update("fast", "3")).unwrap();
        let status = block_on(&mut slow.removed).unwrap();
        assert_eq!(status.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
        assert!(
            status.message().contains("fell 3 updates behind"),
            "{status:?}"
        );
        assert_eq!(
            received(&mut fast),
            [
                "System: Acknowledged fast's update: 3",
                "System: slow was removed from the room: fell 3 updates behind the room"
            ]
        );
        drop(slow);
        assert!(received(&mut fast).is_empty(), "no second leave notice");
        assert_eq!(rooms.count(), 1);
        drop(fast);
        assert_eq!(rooms.count(), 0);
    }

    #[test]
    fn limits_are_resource_exhausted() {
        let limits = RoomLimits {
            max_rooms: 1,
            max_room_size: 1,
            ..RoomLimits::default()
        };
        let rooms = Rooms::new(limits, None);
        let _first = rooms.join(request("a", None)).unwrap();
        let full = rooms.join(request("a", None)).err().unwrap();
        assert_eq!(full.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
        assert!(full.message().contains("full"), "{full:?}");
        let too_many = rooms.join(request("b", None)).err().unwrap();
        assert!(too_many.message().contains("maximum of 1 rooms"));
    }

    #[test]
    fn the_servers_name_cannot_be_borrowed() {
        let rooms = Rooms::new(RoomLimits::default(), None);
        let joined = rooms.join(request("lab", None)).unwrap();
        let refused = joined
            .membership
            .publish(update("System", "x"))
            .unwrap_err();
        assert_eq!(refused.code(), RpcStatusCode::INVALID_ARGUMENT);
    }
}
