//! The replica's subscription connection: subscribed to the channels of the
//! rooms that have participants here (and no others), it hands each message
//! to its room's task. When the connection drops it reconnects, subscribes
//! again, and tells every room to fill what it may have missed from history.
//! A connection that goes quiet without closing (a NAT's or load balancer's
//! idle timeout, a partition that swallows the reset) is found by a ping
//! that gets no answer in time, and treated as dropped.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use log::{debug, info, warn};
use redis::aio::{PubSubSink, PubSubStream};

use super::super::counters::Counters;
use super::link::{Link, StoreError, PING_EVERY, ROUND_TRIP_TIMEOUT};
use super::remote::{Input, RemoteRoom};

/// What the subscription connection is asked to do.
pub(super) enum Command {
    /// Subscribe to the room's channel; answered once Redis confirms.
    Subscribe {
        room: Weak<RemoteRoom>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Unsubscribe the room's channel, unless a newer room took it over.
    Unsubscribe { room: Weak<RemoteRoom> },
}

/// The longest wait between two attempts to reconnect.
const MOST_BACKOFF: Duration = Duration::from_secs(1);

/// Why the subscription connection was lost, and what the store's own
/// lines (the link's) say of it: during an outage of the whole store they
/// tell its beginning and end, and the subscription's lines would repeat them.
struct Lost {
    why: String,
    /// The store was up as this connection was lost, and its outages then.
    store_up: bool,
    outages: u64,
    since: Instant,
    /// Whether a failure to connect again was logged.
    warned: bool,
}

impl Lost {
    fn new(why: String, link: &Link) -> Lost {
        Lost {
            why,
            store_up: link.is_up(),
            outages: link.outages(),
            since: Instant::now(),
            warned: false,
        }
    }

    /// Whether the store's lines tell of it: an outage of the whole store
    /// was under way, or began, since.
    fn told_by_the_store(&self, link: &Link) -> bool {
        !self.store_up || link.outages() != self.outages
    }

    /// Whether failing to connect again is the subscription's own trouble,
    /// to be logged: the store still answers its pings well after the loss
    /// (the watcher finds an outage within a ping period and a round trip).
    fn stuck_on_its_own(&self, link: &Link) -> bool {
        !self.warned
            && !self.told_by_the_store(link)
            && self.since.elapsed() >= PING_EVERY + ROUND_TRIP_TIMEOUT
    }
}

/// Runs until the store is dropped (its commands end).
pub(super) async fn run(
    link: Arc<Link>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    counters: Counters,
) {
    let mut rooms: HashMap<String, Weak<RemoteRoom>> = HashMap::new();
    let mut backoff = Duration::from_millis(50);
    let mut lost: Option<Lost> = None;
    loop {
        let connection = match connect(&link, &rooms).await {
            Ok(connection) => connection,
            Err(why) => {
                match &mut lost {
                    Some(lost) if lost.stuck_on_its_own(&link) => {
                        lost.warned = true;
                        warn!(
                            "room subscriptions: {}; cannot connect again ({why}): rooms here \
                             get no updates until it can",
                            lost.why
                        );
                    }
                    _ => debug!("room subscriptions: cannot connect: {why}"),
                }
                // Answered at once meanwhile: the joins waiting on them fail fast.
                while let Ok(command) = commands.try_recv() {
                    offline(command, &mut rooms);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if let Some(lost) = lost.take() {
            counters.subscription_reconnected();
            let count = rooms.len();
            // Its end is said where its trouble was.
            if lost.warned {
                info!("room subscriptions re-established ({count} room(s)): filling gaps from history");
            } else if lost.told_by_the_store(&link) {
                debug!("room subscriptions re-established ({count} room(s)): filling gaps from history");
            } else {
                warn!(
                    "room subscriptions: {}: connected again ({count} room(s)), filling gaps \
                     from history",
                    lost.why
                );
            }
            for room in rooms.values().filter_map(Weak::upgrade) {
                room.send(Input::Resync);
            }
        }
        let (mut sink, mut messages) = connection;
        let mut pings = tokio::time::interval(PING_EVERY);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                _ = pings.tick() => {
                    let answered = tokio::time::timeout(ROUND_TRIP_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break format!("no answer to a ping within {} ms", ROUND_TRIP_TIMEOUT.as_millis());
                    }
                },
                command = commands.next() => match command {
                    None => return,
                    Some(command) => {
                        if !online(command, &mut rooms, &mut sink).await {
                            break "a subscribe or unsubscribe failed".to_owned();
                        }
                    }
                },
                message = messages.next() => match message {
                    Some(message) => {
                        let room = rooms.get(message.get_channel_name()).and_then(Weak::upgrade);
                        if let Some(room) = room {
                            room.send(Input::Live(message.get_payload_bytes().to_vec()));
                        }
                    }
                    None => break "the connection dropped".to_owned(),
                },
            }
        };
        debug!("room subscriptions: {why}");
        lost = Some(Lost::new(why, &link));
    }
}

/// A subscription connection, subscribed to every room's channel.
async fn connect(
    link: &Link,
    rooms: &HashMap<String, Weak<RemoteRoom>>,
) -> Result<(PubSubSink, PubSubStream), String> {
    let client = link
        .client()
        .ok_or("a cluster's subscriptions are per shard")?;
    let pubsub = tokio::time::timeout(ROUND_TRIP_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| StoreError::Timeout.to_string())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    let channels: Vec<&String> = rooms.keys().collect();
    if !channels.is_empty() {
        tokio::time::timeout(ROUND_TRIP_TIMEOUT, sink.subscribe(channels))
            .await
            .map_err(|_| StoreError::Timeout.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok((sink, stream))
}

/// Carries out `command`; false if the connection failed.
async fn online(
    command: Command,
    rooms: &mut HashMap<String, Weak<RemoteRoom>>,
    sink: &mut PubSubSink,
) -> bool {
    let (result, done) = match command {
        Command::Subscribe { room, done } => {
            let Some(channel) = room.upgrade().map(|room| room.keys.channel.clone()) else {
                return true;
            };
            rooms.insert(channel.clone(), room);
            let subscribed =
                tokio::time::timeout(ROUND_TRIP_TIMEOUT, sink.subscribe(&channel)).await;
            (subscribed, Some(done))
        }
        Command::Unsubscribe { room } => {
            let Some(channel) = forget(rooms, &room) else {
                return true;
            };
            let unsubscribed =
                tokio::time::timeout(ROUND_TRIP_TIMEOUT, sink.unsubscribe(&channel)).await;
            (unsubscribed, None)
        }
    };
    let (outcome, ok) = match result {
        Ok(Ok(())) => (Ok(()), true),
        Ok(Err(e)) => (Err(StoreError::Failed(e.to_string())), false),
        Err(_) => (Err(StoreError::Timeout), false),
    };
    if let Some(done) = done {
        let _ = done.send(outcome);
    }
    ok
}

/// Carries out `command` while there is no connection: a subscription is
/// remembered (taken up on reconnecting) but refused now.
fn offline(command: Command, rooms: &mut HashMap<String, Weak<RemoteRoom>>) {
    match command {
        Command::Subscribe { room, done } => {
            if let Some(channel) = room.upgrade().map(|room| room.keys.channel.clone()) {
                rooms.insert(channel, room);
            }
            let _ = done.send(Err(StoreError::Down));
        }
        Command::Unsubscribe { room } => {
            forget(rooms, &room);
        }
    }
}

/// Takes `room` out of `rooms`, and returns its channel, if the channel is
/// still that room's (not a newer room's of the same name).
pub(super) fn forget(
    rooms: &mut HashMap<String, Weak<RemoteRoom>>,
    room: &Weak<RemoteRoom>,
) -> Option<String> {
    let channel = rooms
        .iter()
        .find(|(_, known)| Weak::ptr_eq(known, room))
        .map(|(channel, _)| channel.clone())?;
    rooms.remove(&channel);
    Some(channel)
}
