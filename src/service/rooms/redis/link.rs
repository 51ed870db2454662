//! The connection to the store, and whether it is up: every round trip is
//! bounded and timed; a watcher pings the store, reconnects when it can, and
//! logs each outage once, when it begins and when it ends.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{info, warn};
use redis::aio::MultiplexedConnection;
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, Value};

use super::super::counters::Counters;
use super::scripts::{Call, Scripts};

/// The longest a round trip to the store may take before it counts as failed.
pub(super) const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the watcher pings the store (and the subscriber its connection).
pub(super) const PING_EVERY: Duration = Duration::from_millis(500);
/// TCP keepalive on every connection to the store: a peer that vanished
/// without a reset is noticed by the kernel too, and a NAT or load balancer
/// in between sees traffic on an idle connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

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
    client: Client,
    /// `redis://HOST:PORT[/DB]`, for messages (it holds no password).
    pub(super) url: String,
    connection: Mutex<Option<MultiplexedConnection>>,
    state: Mutex<State>,
    counters: Counters,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Not pinged yet.
    Starting,
    Up,
    /// Not answering since then.
    Down(Instant),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    pub(super) fn new(url: &str, counters: Counters) -> Result<Link, String> {
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL);
        let client = url
            .into_connection_info()
            .map(|info| {
                info.set_tcp_settings(
                    TcpSettings::default()
                        .set_nodelay(true)
                        .set_keepalive(keepalive),
                )
            })
            .and_then(Client::open)
            .map_err(|e| format!("--rooms {url}: {e}"))?;
        Ok(Link {
            client,
            url: url.to_owned(),
            connection: Mutex::new(None),
            state: Mutex::new(State::Starting),
            counters,
        })
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the store is known to answer: calls are not tried while not.
    pub(super) fn is_up(&self) -> bool {
        matches!(*lock(&self.state), State::Up)
    }

    /// How long the store has been down, if it is.
    pub(super) fn down_for(&self) -> Option<Duration> {
        match *lock(&self.state) {
            State::Down(since) => Some(since.elapsed()),
            State::Starting | State::Up => None,
        }
    }

    /// Runs a script, bounded and timed.
    pub(super) async fn run(&self, call: Call<'_>) -> Result<Value, StoreError> {
        let Some(mut connection) = lock(&self.connection).clone() else {
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
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    // The watcher connects afresh (the store may have restarted).
                    *lock(&self.connection) = None;
                }
                Err(StoreError::Failed(e.to_string()))
            }
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// Pings the store (connecting first if need be, and loading `scripts`
    /// into it, so that a participant's overlapping calls are never sent
    /// again out of order for a script it lacks); says whether it answered.
    pub(super) async fn check(&self, scripts: &Scripts) -> bool {
        let current = lock(&self.connection).clone();
        let mut connection = match current {
            Some(connection) => connection,
            None => match self.connect(scripts).await {
                Ok(connection) => connection,
                Err(why) => return self.mark_down(&why),
            },
        };
        let started = Instant::now();
        let ping = tokio::time::timeout(
            ROUND_TRIP_TIMEOUT,
            redis::cmd("PING").query_async::<Value>(&mut connection),
        )
        .await;
        self.counters.round_trip(started.elapsed());
        match ping {
            Ok(Ok(_)) => {
                *lock(&self.connection) = Some(connection);
                self.mark_up();
                true
            }
            Ok(Err(e)) => self.mark_down(&e.to_string()),
            Err(_) => self.mark_down(&StoreError::Timeout.to_string()),
        }
    }

    async fn connect(&self, scripts: &Scripts) -> Result<MultiplexedConnection, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ROUND_TRIP_TIMEOUT))
            .set_response_timeout(Some(ROUND_TRIP_TIMEOUT));
        let connected = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
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

    /// Returns false; logs the outage if it has just begun.
    fn mark_down(&self, why: &str) -> bool {
        // A fresh connection next time: this one may be stuck.
        *lock(&self.connection) = None;
        let mut state = lock(&self.state);
        if !matches!(*state, State::Down(_)) {
            *state = State::Down(Instant::now());
            warn!(
                "room store {} is unreachable ({why}): room calls get UNAVAILABLE until it is back",
                self.url
            );
        }
        false
    }

    fn mark_up(&self) {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Up) {
            State::Starting => info!("rooms are kept in {}", self.url),
            State::Down(since) => info!(
                "room store {} is reachable again, after {} ms",
                self.url,
                since.elapsed().as_millis()
            ),
            State::Up => {}
        }
    }
}
