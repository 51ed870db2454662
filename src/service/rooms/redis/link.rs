//! The connection to the store, and whether it is up: every round trip is
//! bounded and timed; a watcher pings the store, reconnects when it can, and
//! logs each outage once, when it begins and when it ends. The store is one
//! Redis, or a Redis Cluster through the redis crate's cluster client (its
//! slot map, MOVED and ASK): the scripts run on the shard of their room's keys.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, ServerErrorKind, TlsCertificates, Value,
};
use tokio::sync::Notify;

use super::super::counters::Counters;
use super::super::store_addr::RedisAddr;
use super::scripts::{Call, Scripts};
use crate::tls;

/// The longest a round trip to the store may take before it counts as failed.
pub(super) const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the watcher pings the store.
pub(super) const PING_EVERY: Duration = Duration::from_millis(500);
/// The pause between two tries of a round trip that failed while the store
/// may be back within the grace (an update it did not take, a page of history).
pub(super) const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Why the store could not do something.
#[derive(Debug)]
pub(super) enum StoreError {
    /// Known to be unreachable: not tried.
    Down,
    /// No answer within [`ROUND_TRIP_TIMEOUT`].
    Timeout,
    /// The connection failed, or the store refused.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Down => write!(f, "unreachable"),
            StoreError::Timeout => {
                write!(f, "no answer within {} ms", ROUND_TRIP_TIMEOUT.as_millis())
            }
            StoreError::Failed(why) => write!(f, "{why}"),
        }
    }
}

pub(super) struct Link {
    target: Target,
    /// The store as `--rooms` named it, its password masked: for logs only
    /// (clients are told of "the room store").
    pub(super) shown: String,
    connection: Mutex<Option<Connection>>,
    /// Wakes the watcher to connect afresh at once (a cluster's slot map
    /// found stale), rather than at its next ping.
    reconnect: Notify,
    state: Mutex<State>,
    /// Outages begun so far (each logged once).
    outages: AtomicU64,
    /// Whether the store's state is logged yet: not while the server starts
    /// (a start that fails says one line, its error), then once by
    /// [`Link::announce`], then at each change.
    announced: AtomicBool,
    /// Why the store was unreachable before it was announced.
    unannounced_why: Mutex<String>,
    counters: Counters,
}

/// What the store's connections are made from (one per store: boxed, so
/// that the enum is as small as a client).
enum Target {
    Single(Box<Client>),
    Cluster(Box<Cluster>),
}

struct Cluster {
    client: ClusterClient,
    /// The startup nodes' address, credentials and TLS, for the subscriber's
    /// own connection to each shard.
    addr: RedisAddr,
    certificates: Option<TlsCertificates>,
}

/// A connection to the store: scripts run on it the same either way.
#[derive(Clone)]
pub(super) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Not pinged yet.
    Starting,
    Up,
    /// Not answering since then.
    Down(Instant),
}

impl Link {
    pub(super) fn new(addr: &RedisAddr, counters: Counters) -> Result<Link, String> {
        let failed = |e: redis::RedisError| format!("--rooms {addr}: {e}");
        let certificates = certificates(addr)?;
        let target = if addr.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(addr.urls())
                .connection_timeout(ROUND_TRIP_TIMEOUT)
                .response_timeout(ROUND_TRIP_TIMEOUT)
                // A call is bounded by the round trip anyway; MOVED and ASK
                // are followed within it, a dead node is the watcher's.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .tcp_settings(tcp_settings());
            if let Some(certificates) = certificates.clone() {
                builder = builder.certs(certificates);
            }
            Target::Cluster(Box::new(Cluster {
                client: builder.build().map_err(failed)?,
                addr: addr.clone(),
                certificates,
            }))
        } else {
            let client =
                node_client(addr, &addr.nodes[0], certificates.as_ref()).map_err(failed)?;
            Target::Single(Box::new(client))
        };
        Ok(Link {
            target,
            shown: addr.to_string(),
            connection: Mutex::new(None),
            reconnect: Notify::new(),
            state: Mutex::new(State::Starting),
            outages: AtomicU64::new(0),
            announced: AtomicBool::new(false),
            unannounced_why: Mutex::default(),
            counters,
        })
    }

    /// The client of the one Redis (None for a cluster: see [`Link::node`]).
    pub(super) fn client(&self) -> Option<&Client> {
        match &self.target {
            Target::Single(client) => Some(client),
            Target::Cluster(_) => None,
        }
    }

    /// A client for one node of the cluster (`HOST:PORT`), with the startup
    /// nodes' credentials and TLS.
    pub(super) fn node(&self, node: &str) -> redis::RedisResult<Client> {
        match &self.target {
            Target::Single(client) => Ok((**client).clone()),
            Target::Cluster(cluster) => {
                node_client(&cluster.addr, node, cluster.certificates.as_ref())
            }
        }
    }

    /// The cluster's startup nodes (`HOST:PORT`); none for one Redis.
    pub(super) fn startup_nodes(&self) -> &[String] {
        match &self.target {
            Target::Single(_) => &[],
            Target::Cluster(cluster) => &cluster.addr.nodes,
        }
    }

    /// The current connection, if there is one.
    pub(super) fn connection(&self) -> Option<Connection> {
        self.connection.lock().clone()
    }

    /// Whether the store is known to answer: calls are not tried while not.
    pub(super) fn is_up(&self) -> bool {
        matches!(*self.state.lock(), State::Up)
    }

    /// Outages of the store begun so far.
    pub(super) fn outages(&self) -> u64 {
        self.outages.load(Ordering::SeqCst)
    }

    /// How long the store has been down, if it is.
    pub(super) fn down_for(&self) -> Option<Duration> {
        match *self.state.lock() {
            State::Down(since) => Some(since.elapsed()),
            State::Starting | State::Up => None,
        }
    }

    /// Runs a script, bounded and timed.
    pub(super) async fn run(&self, call: Call<'_>) -> Result<Value, StoreError> {
        let Some(mut connection) = self.connection.lock().clone() else {
            return Err(StoreError::Down);
        };
        let started = Instant::now();
        let invocation = call.invocation();
        let answer = tokio::time::timeout(
            ROUND_TRIP_TIMEOUT,
            invocation.invoke_async::<Value>(&mut connection),
        )
        .await;
        self.counters.round_trip(started.elapsed());
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if self.stale_slot_map(&e) {
                    // A fresh connection reads the slot map anew, and loads
                    // the scripts into every node (the new master too).
                    if self.connection.lock().take().is_some() {
                        info!(
                            "room store {}: a script reached a replica (a failover?): \
                             connecting afresh for the cluster's new slot map",
                            self.shown
                        );
                    }
                    self.reconnect.notify_one();
                } else if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
                {
                    // The watcher connects afresh (the store may have restarted).
                    *self.connection.lock() = None;
                }
                Err(StoreError::Failed(e.to_string()))
            }
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// Whether `error` says the cluster client sent a script to a node that
    /// is no longer its slot's master: a failover made the old master a
    /// replica, and the client's connections are all READONLY (the redis
    /// crate sets it on every node, for reads from replicas), so the replica
    /// runs the script instead of answering MOVED, and refuses its first
    /// write. Nothing was written; the client's slot map stays stale until
    /// it is read again.
    fn stale_slot_map(&self, error: &RedisError) -> bool {
        matches!(self.target, Target::Cluster(_))
            && error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
    }

    /// Resolves when a call found the connection stale (see
    /// [`Link::stale_slot_map`]): the watcher then connects at once.
    pub(super) async fn reconnect_wanted(&self) {
        self.reconnect.notified().await;
    }

    /// Pings the store (connecting first if need be, and loading `scripts`
    /// into it, so that a participant's overlapping calls are never sent
    /// again out of order for a script it lacks); says whether it answered.
    pub(super) async fn check(&self, scripts: &Scripts) -> bool {
        let current = self.connection.lock().clone();
        let mut connection = match current {
            Some(connection) => connection,
            None => match self.connect(scripts).await {
                Ok(connection) => connection,
                Err(why) => return self.mark_down(&why),
            },
        };
        let started = Instant::now();
        let ping =
            tokio::time::timeout(ROUND_TRIP_TIMEOUT, Link::ping(&mut connection, scripts)).await;
        self.counters.round_trip(started.elapsed());
        match ping {
            Ok(Ok(_)) => {
                *self.connection.lock() = Some(connection);
                self.mark_up();
                true
            }
            Ok(Err(e)) => self.mark_down(&e.to_string()),
            Err(_) => self.mark_down(&StoreError::Timeout.to_string()),
        }
    }

    async fn connect(&self, scripts: &Scripts) -> Result<Connection, String> {
        let connected = async {
            let mut connection = match &self.target {
                Target::Single(client) => {
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(ROUND_TRIP_TIMEOUT))
                        .set_response_timeout(Some(ROUND_TRIP_TIMEOUT));
                    Connection::Single(
                        client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await?,
                    )
                }
                Target::Cluster(cluster) => {
                    Connection::Cluster(cluster.client.get_async_connection().await?)
                }
            };
            // Into every node (SCRIPT LOAD goes to each node of a cluster).
            for script in scripts.all() {
                script.prepare_invoke().load_async(&mut connection).await?;
            }
            Ok::<_, redis::RedisError>(connection)
        };
        match tokio::time::timeout(ROUND_TRIP_TIMEOUT, connected).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(StoreError::Timeout.to_string()),
        }
    }

    /// One Redis: PING. A cluster: whether every master has the scripts (a
    /// restarted or promoted node may lack them; they are loaded again), which
    /// every master must answer.
    async fn ping(connection: &mut Connection, scripts: &Scripts) -> redis::RedisResult<()> {
        match connection {
            Connection::Single(_) => redis::cmd("PING")
                .query_async::<Value>(connection)
                .await
                .map(drop),
            Connection::Cluster(_) => {
                let mut exists = redis::cmd("SCRIPT");
                exists.arg("EXISTS");
                for script in scripts.all() {
                    exists.arg(script.get_hash());
                }
                let present: Vec<bool> = exists.query_async(connection).await?;
                if present.contains(&false) {
                    for script in scripts.all() {
                        script.prepare_invoke().load_async(connection).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Returns false; logs the outage if it has just begun.
    fn mark_down(&self, why: &str) -> bool {
        // A fresh connection next time: this one may be stuck.
        *self.connection.lock() = None;
        let mut state = self.state.lock();
        if !matches!(*state, State::Down(_)) {
            *state = State::Down(Instant::now());
            self.outages.fetch_add(1, Ordering::SeqCst);
            if self.announced.load(Ordering::SeqCst) {
                self.log_unreachable(why);
            } else {
                *self.unannounced_why.lock() = why.to_owned();
            }
        }
        false
    }

    fn log_unreachable(&self, why: &str) {
        warn!(
            "room store {} is unreachable ({why}): room calls get UNAVAILABLE until it is back",
            self.shown
        );
    }

    /// Logs where rooms are kept, or that the store is unreachable (once,
    /// when the server has started); later changes are logged as they come.
    pub(super) fn announce(&self) {
        let state = self.state.lock();
        if self.announced.swap(true, Ordering::SeqCst) {
            return;
        }
        match *state {
            State::Down(_) => self.log_unreachable(&self.unannounced_why.lock()),
            State::Up => info!("rooms are kept in {}", self.shown),
            State::Starting => {}
        }
    }

    fn mark_up(&self) {
        let mut state = self.state.lock();
        let was = std::mem::replace(&mut *state, State::Up);
        if !self.announced.load(Ordering::SeqCst) {
            return;
        }
        match was {
            State::Starting => info!("rooms are kept in {}", self.shown),
            State::Down(since) => info!(
                "room store {} is reachable again, after {} ms",
                self.shown,
                since.elapsed().as_millis()
            ),
            State::Up => {}
        }
    }
}

/// A client of `node` (`HOST:PORT`) with `addr`'s credentials, TLS and database.
fn node_client(
    addr: &RedisAddr,
    node: &str,
    certificates: Option<&TlsCertificates>,
) -> redis::RedisResult<Client> {
    let info = addr
        .url_of(node)
        .into_connection_info()?
        .set_tcp_settings(tcp_settings());
    match certificates {
        Some(certificates) => Client::build_with_tls(info, certificates.clone()),
        None => Client::open(info),
    }
}

/// TCP keepalive on every connection to the store: a peer that vanished
/// without a reset is noticed by the kernel too, and a NAT or load balancer
/// in between sees traffic on an idle connection.
fn tcp_settings() -> TcpSettings {
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5));
    TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
}

/// The CA and client certificate `--rooms-ca-file` and `--rooms-client-cert`
/// name (None: the system's roots, and no client certificate).
pub(crate) fn certificates(addr: &RedisAddr) -> Result<Option<TlsCertificates>, String> {
    // A file without its PEM block is refused here (and by --check-config):
    // a CA without a certificate would trust nothing, and the store would
    // never be reached.
    let read = |flag: &str, path: &std::path::Path, marker: &str| {
        let pem = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        match tls::is_pem(&pem, marker) {
            true => Ok(pem),
            false => Err(format!(
                "{flag} {}: not a PEM file with a {marker:?} line",
                path.display()
            )),
        }
    };
    let root_cert = match &addr.files.ca {
        Some(ca) => Some(read("--rooms-ca-file", ca, tls::CERTIFICATE)?),
        None => None,
    };
    let client_tls = match &addr.files.client {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read("--rooms-client-cert", cert, tls::CERTIFICATE)?,
            client_key: read("--rooms-client-key", key, tls::PRIVATE_KEY)?,
        }),
        None => None,
    };
    Ok(match (&root_cert, &client_tls) {
        (None, None) => None,
        _ => Some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    })
}
