//! A Redis Cluster's subscriptions (sharded pub/sub, Redis 7): a room's
//! events are published with `SPUBLISH` on the shard that owns its slot, and
//! only that shard's nodes carry them. This replica keeps one RESP3
//! connection per master it needs, and subscribes (`SSUBSCRIBE`) each room's
//! channel on the master that owns the room's slot, as the cluster's slot
//! map says, following MOVED and ASK when the map is stale.
//!
//! When a shard's connection drops (its node restarted or failed over), does
//! not answer a ping, or the server unsubscribes a channel itself (its slot
//! moved), the shard's rooms are subscribed again wherever their slots now
//! are, and each is told to fill what it may have missed from history. The
//! redis crate's cluster client re-subscribes too, but all channels in one
//! command (refused across slots), and without saying when: hence this.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use log::{debug, info};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::time::Instant;

use super::super::counters::Counters;
use super::codec::{array, bytes, number};
use super::link::{Link, StoreError, PING_EVERY, ROUND_TRIP_TIMEOUT};
use super::remote::{Input, RemoteRoom};
use super::subscriber::{forget, Command};

/// The cluster's hash slots.
const SLOTS: u16 = 16384;

/// Runs until the store is dropped (its commands end).
pub(super) async fn run(
    link: Arc<Link>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    counters: Counters,
) {
    let (pushes, mut pushed) = mpsc::unbounded();
    let mut shards = Shards {
        link,
        counters,
        rooms: HashMap::new(),
        slots: BTreeMap::new(),
        connections: HashMap::new(),
        next_id: 0,
        pushes,
        orphans: HashSet::new(),
    };
    let mut backoff = FIRST_BACKOFF;
    // A deadline, not a pause made afresh on each turn: the pings (every
    // 0.5 s) would otherwise restart a longer pause forever, and orphans
    // whose first tries failed (a killed master not yet replaced) would
    // never be tried again.
    let mut adopt_at = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let had_orphans = !shards.orphans.is_empty();
        tokio::select! {
            command = commands.next() => match command {
                None => return,
                Some(Command::Subscribe { room, done }) => {
                    let _ = done.send(shards.subscribe_room(room).await);
                }
                Some(Command::Unsubscribe { room }) => {
                    // Only if the channel is still that room's, not a newer one's.
                    if let Some(channel) = forget(&mut shards.rooms, &room) {
                        shards.unsubscribe(&channel).await;
                    }
                }
            },
            Some((id, push)) = pushed.next() => shards.pushed(id, push),
            _ = tokio::time::sleep_until(adopt_at), if had_orphans => {
                backoff = match shards.adopt_orphans().await {
                    true => FIRST_BACKOFF,
                    false => (backoff * 2).min(MOST_BACKOFF),
                };
                adopt_at = Instant::now() + backoff;
                continue;
            }
            _ = ping.tick() => shards.ping().await,
        }
        if !had_orphans && !shards.orphans.is_empty() {
            // Newly orphaned: tried again soon.
            backoff = FIRST_BACKOFF;
            adopt_at = Instant::now() + backoff;
        }
    }
}

/// The pause before subscribing orphaned rooms again, doubled after each
/// failed try up to the most.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MOST_BACKOFF: Duration = Duration::from_secs(1);

struct Shards {
    link: Arc<Link>,
    counters: Counters,
    /// Every room's channel, subscribed or to be subscribed again.
    rooms: HashMap<String, Weak<RemoteRoom>>,
    /// The cluster's slot map, as last read: first slot -> (last slot, master).
    slots: BTreeMap<u16, (u16, String)>,
    /// One connection per master (`HOST:PORT`) with subscriptions on it.
    connections: HashMap<String, Shard>,
    next_id: u64,
    /// Where every connection's pushes go, tagged with the connection's id.
    pushes: mpsc::UnboundedSender<(u64, PushInfo)>,
    /// Rooms whose subscription was lost: subscribed again, then resynced.
    orphans: HashSet<String>,
}

struct Shard {
    /// Tells this connection's pushes from those of one it replaced.
    id: u64,
    connection: MultiplexedConnection,
    channels: HashSet<String>,
}

impl Shards {
    async fn subscribe_room(&mut self, room: Weak<RemoteRoom>) -> Result<(), StoreError> {
        let Some(channel) = room.upgrade().map(|room| room.keys.channel.clone()) else {
            return Ok(());
        };
        self.rooms.insert(channel.clone(), room);
        let subscribed = self.subscribe(&channel).await;
        if subscribed.is_err() && !self.orphans.contains(&channel) {
            // Refused now: the join fails, and the next one subscribes afresh.
            self.rooms.remove(&channel);
        }
        subscribed
    }

    /// `SSUBSCRIBE`s `channel` on the master of its slot: the slot map's, or
    /// the one a MOVED or ASK names.
    async fn subscribe(&mut self, channel: &str) -> Result<(), StoreError> {
        let slot = slot_of(channel.as_bytes());
        if self.master_of(slot).is_none() {
            self.read_slot_map().await;
        }
        let mut node = self
            .master_of(slot)
            .or_else(|| self.link.startup_nodes().first().cloned())
            .ok_or(StoreError::Down)?;
        let mut asking = false;
        for _ in 0..4 {
            let mut connection = match self.connection(&node).await {
                Ok(connection) => connection,
                Err(why) => {
                    // The map may name a master that is gone (killed, and
                    // replaced since): read afresh next time.
                    self.slots.clear();
                    return Err(why);
                }
            };
            let mut subscribe = redis::pipe();
            if asking {
                subscribe.cmd("ASKING").ignore();
            }
            subscribe.cmd("SSUBSCRIBE").arg(channel).ignore();
            let answer =
                tokio::time::timeout(ROUND_TRIP_TIMEOUT, subscribe.exec_async(&mut connection))
                    .await;
            let error = match answer {
                Ok(Ok(())) => {
                    if let Some(shard) = self.connections.get_mut(&node) {
                        shard.channels.insert(channel.to_owned());
                    }
                    self.orphans.remove(channel);
                    return Ok(());
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    self.lose_connection(&node);
                    return Err(StoreError::Timeout);
                }
            };
            match error.redirect_node() {
                Some((to, _)) => {
                    asking = error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
                    debug!("room subscriptions: {channel} is on {to}, not {node}");
                    if !asking {
                        // The map is stale: read it again, the MOVED's node meanwhile.
                        self.read_slot_map().await;
                    }
                    node = to.to_owned();
                }
                None => {
                    if error.is_unrecoverable_error() || error.is_io_error() {
                        self.lose_connection(&node);
                    }
                    return Err(StoreError::Failed(error.to_string()));
                }
            }
        }
        Err(StoreError::Failed(format!(
            "{channel}: redirected again and again (the cluster's slots are moving)"
        )))
    }

    async fn unsubscribe(&mut self, channel: &str) {
        self.rooms.remove(channel);
        self.orphans.remove(channel);
        let Some((node, shard)) = self
            .connections
            .iter_mut()
            .find(|(_, shard)| shard.channels.contains(channel))
        else {
            return;
        };
        shard.channels.remove(channel);
        let (node, mut connection) = (node.clone(), shard.connection.clone());
        let mut unsubscribe = redis::cmd("SUNSUBSCRIBE");
        unsubscribe.arg(channel);
        let answer =
            tokio::time::timeout(ROUND_TRIP_TIMEOUT, unsubscribe.exec_async(&mut connection)).await;
        if !matches!(answer, Ok(Ok(()))) {
            self.lose_connection(&node);
        }
    }

    /// The connection to `node`, made if there is none.
    async fn connection(&mut self, node: &str) -> Result<MultiplexedConnection, StoreError> {
        if let Some(shard) = self.connections.get(node) {
            return Ok(shard.connection.clone());
        }
        let id = self.next_id;
        self.next_id += 1;
        let pushes = self.pushes.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ROUND_TRIP_TIMEOUT))
            .set_response_timeout(Some(ROUND_TRIP_TIMEOUT))
            .set_push_sender(move |push: PushInfo| pushes.unbounded_send((id, push)));
        let connected = async {
            let client = resp3(self.link.node(node)?)?;
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        let connection = match tokio::time::timeout(ROUND_TRIP_TIMEOUT, connected).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(StoreError::Failed(format!("{node}: {e}"))),
            Err(_) => return Err(StoreError::Timeout),
        };
        debug!("room subscriptions: connected to {node}");
        self.connections.insert(
            node.to_owned(),
            Shard {
                id,
                connection: connection.clone(),
                channels: HashSet::new(),
            },
        );
        Ok(connection)
    }

    /// A message, or news of a connection: events go to their rooms; a lost
    /// connection, or a channel the server unsubscribed itself, orphans rooms.
    fn pushed(&mut self, id: u64, push: PushInfo) {
        let Some(node) = self
            .connections
            .iter()
            .find(|(_, shard)| shard.id == id)
            .map(|(node, _)| node.clone())
        else {
            return;
        };
        match push.kind {
            PushKind::SMessage => {
                let (Some(channel), Some(payload)) = (
                    push.data.first().and_then(bytes),
                    push.data.get(1).and_then(bytes),
                ) else {
                    return;
                };
                let room = std::str::from_utf8(channel)
                    .ok()
                    .and_then(|channel| self.rooms.get(channel))
                    .and_then(Weak::upgrade);
                if let Some(room) = room {
                    room.send(Input::Live(payload.to_vec()));
                }
            }
            PushKind::Disconnection => {
                debug!("room subscriptions: the connection to {node} dropped");
                self.lose_connection(&node);
            }
            PushKind::SUnsubscribe => {
                let channel = push.data.first().and_then(bytes).unwrap_or_default();
                let wanted = std::str::from_utf8(channel)
                    .is_ok_and(|channel| self.rooms.contains_key(channel));
                if wanted {
                    // Its slot moved. The connection may now pair this push
                    // with a later reply: it is replaced, not reused.
                    debug!("room subscriptions: {node} dropped a channel (its slot moved)");
                    self.slots.clear();
                    self.lose_connection(&node);
                }
            }
            _ => {}
        }
    }

    /// Drops the connection to `node`: its rooms are orphans until
    /// subscribed again.
    fn lose_connection(&mut self, node: &str) {
        if let Some(shard) = self.connections.remove(node) {
            let wanted = shard
                .channels
                .into_iter()
                .filter(|channel| self.rooms.contains_key(channel));
            self.orphans.extend(wanted);
            // Where its slots went is read afresh (a failover moves them).
            self.slots.clear();
        }
    }

    /// Subscribes the orphaned rooms again, and has each fill its gap from
    /// history; says whether all of them are subscribed.
    async fn adopt_orphans(&mut self) -> bool {
        let orphans: Vec<String> = self.orphans.iter().cloned().collect();
        let mut adopted = 0;
        for channel in orphans {
            let Some(room) = self.rooms.get(&channel).and_then(Weak::upgrade) else {
                self.orphans.remove(&channel);
                continue;
            };
            match self.subscribe(&channel).await {
                Ok(()) => {
                    room.send(Input::Resync);
                    adopted += 1;
                }
                Err(why) => {
                    debug!("room subscriptions: {channel} not subscribed again yet: {why}");
                    break;
                }
            }
        }
        if adopted > 0 {
            self.counters.subscription_reconnected();
            info!(
                "room subscriptions re-established ({adopted} room(s)): filling gaps from history"
            );
        }
        self.orphans.is_empty()
    }

    /// Pings every shard connection: one that does not answer (a half-open
    /// TCP connection, a stopped node) is dropped, and its rooms subscribed again.
    async fn ping(&mut self) {
        let nodes: Vec<(String, MultiplexedConnection)> = self
            .connections
            .iter()
            .map(|(node, shard)| (node.clone(), shard.connection.clone()))
            .collect();
        for (node, mut connection) in nodes {
            let answer = tokio::time::timeout(
                ROUND_TRIP_TIMEOUT,
                redis::cmd("PING").query_async::<Value>(&mut connection),
            )
            .await;
            if !matches!(answer, Ok(Ok(_))) {
                debug!("room subscriptions: {node} did not answer a ping");
                self.lose_connection(&node);
            }
        }
    }

    fn master_of(&self, slot: u16) -> Option<String> {
        master_of(&self.slots, slot)
    }

    /// Reads the slot map (`CLUSTER SLOTS`) through the cluster client, else
    /// from the first startup node that answers; kept as it was if none does.
    /// (The cluster client asks a node at random, which may be one that is
    /// gone: a killed master stays in its connections.)
    async fn read_slot_map(&mut self) {
        if let Some(mut connection) = self.link.connection() {
            match read_slots(&mut connection).await {
                Ok(slots) => return self.slots = slots,
                Err(why) => {
                    debug!("room subscriptions: no slot map from the cluster client: {why}")
                }
            }
        }
        for node in self.link.startup_nodes() {
            let read = async {
                let client = self.link.node(node).map_err(|e| e.to_string())?;
                let mut connection = tokio::time::timeout(
                    ROUND_TRIP_TIMEOUT,
                    client.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| StoreError::Timeout.to_string())?
                .map_err(|e| e.to_string())?;
                read_slots(&mut connection).await
            };
            match read.await {
                Ok(slots) => return self.slots = slots,
                Err(why) => debug!("room subscriptions: no slot map from {node}: {why}"),
            }
        }
    }
}

/// `CLUSTER SLOTS` on `connection`, bounded.
async fn read_slots(
    connection: &mut impl redis::aio::ConnectionLike,
) -> Result<BTreeMap<u16, (u16, String)>, String> {
    let read = tokio::time::timeout(
        ROUND_TRIP_TIMEOUT,
        redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Value>(connection),
    )
    .await;
    match read {
        Ok(Ok(value)) => slot_map(&value).ok_or_else(|| "a reply in an unknown form".to_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(StoreError::Timeout.to_string()),
    }
}

/// `client` speaking RESP3: its pushes carry the messages of a connection
/// that also answers commands.
fn resp3(client: Client) -> redis::RedisResult<Client> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings))
}

/// The master of `slot` in `slots`.
fn master_of(slots: &BTreeMap<u16, (u16, String)>, slot: u16) -> Option<String> {
    let (_, (last, node)) = slots.range(..=slot).next_back()?;
    (slot <= *last).then(|| node.clone())
}

/// `CLUSTER SLOTS`: [[first, last, [host, port, ...], replicas...], ...].
fn slot_map(value: &Value) -> Option<BTreeMap<u16, (u16, String)>> {
    let mut slots = BTreeMap::new();
    for range in array(value)? {
        let range = array(range)?;
        let first = u16::try_from(number(range.first()?)?).ok()?;
        let last = u16::try_from(number(range.get(1)?)?).ok()?;
        let master = array(range.get(2)?)?;
        let host = std::str::from_utf8(bytes(master.first()?)?).ok()?;
        let port = number(master.get(1)?)?;
        if host.is_empty() || host == "?" {
            continue;
        }
        let node = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        slots.insert(first, (last, node));
    }
    Some(slots)
}

/// The hash slot of `key`: CRC16 (XMODEM) of its hash tag (the part between
/// the first `{` and the next `}`, if not empty), else of the whole key.
fn slot_of(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_clusters() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        assert_eq!(slot_of(b"123456789"), 0x31C3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"room:{lab}"), slot_of(b"room:{lab}:seq"));
        // redis-cli cluster keyslot "room:{lab}"
        assert_eq!(slot_of(b"room:{lab}"), 6901);
    }

    #[test]
    fn the_slot_map_is_read_from_cluster_slots() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let range = |first: i64, last: i64, port: i64| {
            Value::Array(vec![
                Value::Int(first),
                Value::Int(last),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk("id")]),
            ])
        };
        let map = slot_map(&Value::Array(vec![
            range(0, 5460, 7000),
            range(5461, 10922, 7001),
            range(10923, 16383, 7002),
        ]))
        .unwrap();
        assert_eq!(master_of(&map, 0).as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(master_of(&map, 5461).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(master_of(&map, 16383).as_deref(), Some("127.0.0.1:7002"));
    }
}
