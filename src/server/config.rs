//! What a server is started with, and its defaults.

use std::path::PathBuf;
use std::time::Duration;

use messenger_lab::answers::LAB_DELAY;

use grpcio::ServerCredentials;

use super::budget::{default_max_request_bytes_in_flight, MAX_REQUEST_BYTES_IN_FLIGHT};
use crate::auth::AuthConfig;
use crate::compression::Compression;
use crate::service::{RoomLimits, RoomStoreAddr};
use crate::tls::{self, TlsIdentity};
use crate::transport::{DEFAULT_MAX_MESSAGE_BYTES, KEEPALIVE_TIME, KEEPALIVE_TIMEOUT};

/// How long in-flight calls may run on after a stop is asked for.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Streams one connection may have open at once. gRPC's own servers set no
/// limit; this one is high enough for thousands of multiplexed calls on one
/// connection, and bounds what a connection's calls that have not reached a
/// handler yet (a unary call waiting for its request) can hold.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 16_384;

/// Calls the whole server may have in its handlers at once; more get
/// RESOURCE_EXHAUSTED (docs/http2-floods.md: what one costs).
pub const DEFAULT_MAX_CALLS_IN_FLIGHT: usize = 20_000;

/// Health Watch and reflection streams (open to anyone: no authentication)
/// the server may have at once, a limit of their own: an anonymous caller
/// that fills it takes no place from the authenticated calls. Each is a
/// long-lived stream that a balancer or a tool keeps open, a few per client.
pub const DEFAULT_MAX_OPEN_STREAMS: usize = 100;

/// Streams a connection may waste per second (reset before their calls
/// start, or refused) before it gets GOAWAY ENHANCE_YOUR_CALM. On a loaded
/// server a call starts late, so a legitimate client's quick cancels count
/// too: 100 sent a soak's client away (docs/http2-floods.md); a reset flood
/// is tens of thousands a second.
pub const DEFAULT_MAX_ABORTED_STREAMS_PER_SECOND: u32 = 1000;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on; port 0 picks a free one.
    pub addr: String,
    /// Pause before each StreamLearnings update.
    pub delay: Duration,
    /// The largest request message accepted; larger ones get RESOURCE_EXHAUSTED,
    /// as soon as their length prefix is read (C-core patch 0006).
    pub max_message_bytes: usize,
    /// Request bytes the server may hold on the wire's side, all calls and
    /// connections together: let in by their length prefixes, not yet handed
    /// to a handler. A message over 64 KiB that would pass it gets
    /// RESOURCE_EXHAUSTED at its prefix. None: sized for the machine
    /// ([`ServerConfig::request_budget`]); `Some(0)`: no budget.
    pub max_request_bytes_in_flight: Option<usize>,
    /// Streams one connection may have open at once; 0 for no limit.
    pub max_concurrent_streams: u32,
    /// Calls the server may have in its handlers at once, all connections
    /// together; 0 for no limit.
    pub max_calls_in_flight: usize,
    /// Health Watch and reflection streams the server may have at once, apart
    /// from `max_calls_in_flight`; 0 for no limit.
    pub max_open_streams: usize,
    /// Streams a connection may reset before their calls start, or have
    /// refused, per second, before it is sent away (GOAWAY
    /// ENHANCE_YOUR_CALM); 0 for no limit.
    pub max_aborted_streams_per_second: u32,
    pub tls: Option<TlsIdentity>,
    /// Require client certificates signed by this CA (PEM): mutual TLS. A
    /// certificate then names its caller, unless `auth` asks for tokens.
    pub tls_client_ca: Option<PathBuf>,
    /// Bearer tokens on every LearningMessenger call (off without a JWKS file).
    pub auth: AuthConfig,
    /// Completion queues, each polled by one thread; 0 means [`default_completion_queues`].
    pub completion_queues: usize,
    /// HTTP/2 keepalive: ping a connection after this long without reads...
    pub keepalive_time: Duration,
    /// ...and close it, ending its calls, if the ping is not answered within this.
    pub keepalive_timeout: Duration,
    /// Serve server reflection (`grpc.reflection.v1` and `v1alpha`), which
    /// lets grpcurl and other generic clients call without the `.proto` files.
    pub reflection: bool,
    /// What the server's answers are compressed with, among what each client accepts.
    pub compression: Compression,
    /// Serve Prometheus metrics on `http://HOST:PORT/metrics`; off when None.
    pub metrics_addr: Option<String>,
    /// End each client connection gracefully (GOAWAY) after about this long
    /// (C-core adds ±10% jitter), so clients reconnect and new replicas get
    /// their share; None: connections live on.
    pub max_connection_age: Option<Duration>,
    /// How long calls may run on a connection whose age is up before it is
    /// closed; None: as long as they take (C-core's default).
    pub max_connection_age_grace: Option<Duration>,
    /// The name sent as `x-served-by` on every answer; None: [`default_replica_name`].
    pub replica_name: Option<String>,
    /// The feed's rooms: each participant's queue, how many rooms, how many in
    /// each, their history, presence and lag bounds.
    pub rooms: RoomLimits,
    /// Where the rooms are kept: this process, or a Redis the replicas share.
    pub room_store: RoomStoreAddr,
    /// On a stop, how long health reports NOT_SERVING while calls are still served.
    pub drain: Duration,
    /// On a stop, after the drain, how long in-flight calls may finish.
    pub shutdown_grace: Duration,
    /// Serve gRPC-Web for browsers, and the lab's page, on `HOST:PORT` too:
    /// a gateway in this process calling this server's own port; off when None.
    pub web_addr: Option<String>,
    /// Other origins whose pages may call the gRPC-Web address (CORS).
    pub web_allow_origins: Vec<String>,
    /// Names the gRPC-Web address answers to besides addresses and `localhost`.
    pub web_allow_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "[::]:50051".to_owned(),
            delay: LAB_DELAY,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_request_bytes_in_flight: None,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_calls_in_flight: DEFAULT_MAX_CALLS_IN_FLIGHT,
            max_open_streams: DEFAULT_MAX_OPEN_STREAMS,
            max_aborted_streams_per_second: DEFAULT_MAX_ABORTED_STREAMS_PER_SECOND,
            tls: None,
            tls_client_ca: None,
            auth: AuthConfig::default(),
            completion_queues: 0,
            keepalive_time: KEEPALIVE_TIME,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            reflection: true,
            metrics_addr: None,
            compression: Compression::None,
            max_connection_age: None,
            max_connection_age_grace: None,
            replica_name: None,
            rooms: RoomLimits::default(),
            room_store: RoomStoreAddr::Memory,
            drain: Duration::ZERO,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            web_addr: None,
            web_allow_origins: Vec::new(),
            web_allow_hosts: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// What can be checked without listening: the addresses' form, the TLS
    /// files. `server --check-config` runs it, so a manifest's flags can be
    /// tried before a pod starts with them.
    pub fn check(&self) -> Result<(), String> {
        check_addr("--addr", &self.addr, true)?;
        self.check_request_budget()?;
        if let Some(addr) = &self.metrics_addr {
            check_addr("--metrics-addr", addr, false)?;
        }
        if let Some(name) = &self.replica_name {
            crate::rpc::ServedBy::headers(name)?;
        }
        self.check_web()?;
        self.auth.check(self.tls_client_ca.is_some())?;
        crate::service::Rooms::check(&self.room_store)?;
        self.credentials().map(drop)
    }

    /// The request budget C-core is given: the flag's, or one sized for the
    /// machine; None for no budget.
    pub fn request_budget(&self) -> Option<usize> {
        match self.max_request_bytes_in_flight {
            Some(0) => None,
            Some(bytes) => Some(bytes),
            None => Some(default_max_request_bytes_in_flight(self.max_message_bytes)),
        }
    }

    /// A budget must hold one message of the largest size, and fit C-core's
    /// integer channel argument.
    fn check_request_budget(&self) -> Result<(), String> {
        let Some(budget) = self.max_request_bytes_in_flight.filter(|&b| b > 0) else {
            return Ok(());
        };
        if budget > MAX_REQUEST_BYTES_IN_FLIGHT {
            return Err(format!(
                "--max-request-bytes-in-flight {budget}: at most {MAX_REQUEST_BYTES_IN_FLIGHT} (0 for no budget)"
            ));
        }
        if budget < self.max_message_bytes {
            return Err(format!(
                "--max-request-bytes-in-flight {budget} is below --max-message-bytes {}: no message of the largest size could be let in",
                self.max_message_bytes
            ));
        }
        Ok(())
    }

    /// The gateway calls this server over plaintext TCP, on its own port.
    fn check_web(&self) -> Result<(), String> {
        let Some(addr) = &self.web_addr else {
            return Ok(());
        };
        check_addr("--web-addr", addr, false)?;
        if self.addr.starts_with("unix") {
            return Err(
                "--web-addr needs --addr HOST:PORT: its gateway calls the server over TCP"
                    .to_owned(),
            );
        }
        if self.tls.is_some() {
            return Err("--web-addr serves in front of a plaintext port, not --tls-cert: run webgate in front of a plaintext replica".to_owned());
        }
        messenger_web::cors::check_origins(&self.web_allow_origins)
            .map_err(|e| format!("--web-allow-origin {e}"))?;
        messenger_web::hosts::AllowedHosts::new(&self.web_allow_hosts)
            .map(drop)
            .map_err(|e| format!("--web-allow-host {e}"))
    }

    /// What the gateway of `--web-addr` calls: this server's host (loopback
    /// for a wildcard) and `port`, the one bound.
    pub fn web_upstream(&self, port: u16) -> String {
        let host = self.addr.rsplit_once(':').map_or("", |(host, _)| host);
        let host = match host {
            "" | "[::]" | "0.0.0.0" | "[::0]" | "*" => "127.0.0.1",
            host => host,
        };
        format!("{host}:{port}")
    }

    /// The configuration as it would be served, named as the flags are:
    /// `server --check-config` prints it, and deploy/'s manifests are checked
    /// against it.
    pub fn describe(&self) -> serde_json::Value {
        let ms = |duration: Duration| duration.as_millis() as u64;
        serde_json::json!({
            "addr": self.addr,
            "metrics_addr": self.metrics_addr,
            "replica_name": self.replica_name,
            "tls": self.tls.is_some(),
            "mutual_tls": self.tls_client_ca.is_some(),
            "auth_jwks": self.auth.jwks,
            "auth_issuer": self.auth.issuer,
            "auth_audience": self.auth.audience,
            "auth_any_audience": self.auth.any_audience,
            "auth_name_claim": self.auth.name_claim,
            "auth_rooms_claim": self.auth.rooms_claim,
            "auth_open_rooms": self.auth.open_rooms,
            "delay_ms": ms(self.delay),
            "max_message_bytes": self.max_message_bytes,
            "max_request_bytes_in_flight": self.request_budget().unwrap_or(0),
            "max_concurrent_streams": self.max_concurrent_streams,
            "max_calls_in_flight": self.max_calls_in_flight,
            "max_open_streams": self.max_open_streams,
            "max_aborted_streams_per_second": self.max_aborted_streams_per_second,
            "completion_queues": self.completion_queues,
            "keepalive_time_ms": ms(self.keepalive_time),
            "keepalive_timeout_ms": ms(self.keepalive_timeout),
            "max_connection_age_ms": self.max_connection_age.map(ms),
            "max_connection_age_grace_ms": self.max_connection_age_grace.map(ms),
            "compression": self.compression.to_string(),
            "reflection": self.reflection,
            "feed_queue": self.rooms.queue,
            "feed_queue_bytes": self.rooms.queue_bytes,
            "room_update_bytes": self.rooms.update_bytes,
            "max_rooms": self.rooms.max_rooms,
            "max_room_size": self.rooms.max_room_size,
            "rooms": self.room_store.to_string(),
            "room_history": self.rooms.history,
            "room_linger_ms": ms(self.rooms.linger),
            "room_presence_ttl_ms": ms(self.rooms.presence_ttl),
            "room_lag_ms": ms(self.rooms.lag),
            "room_store_grace_ms": ms(self.rooms.store_grace),
            "drain_ms": ms(self.drain),
            "shutdown_grace_ms": ms(self.shutdown_grace),
            "web_addr": self.web_addr,
            "web_allow_origins": self.web_allow_origins,
            "web_allow_hosts": self.web_allow_hosts,
        })
    }

    /// The credentials the port is served with: TLS (mutual with a client
    /// CA) or none, or why the TLS files cannot be served.
    pub(crate) fn credentials(&self) -> Result<ServerCredentials, String> {
        match &self.tls {
            Some(identity) => tls::server_credentials(identity, self.tls_client_ca.as_deref()),
            None if self.tls_client_ca.is_some() => Err(
                "a client CA (mutual TLS) needs the server's own certificate and key".to_owned(),
            ),
            None => Ok(ServerCredentials::insecure()),
        }
    }
}

/// `HOST:PORT` with a numeric port (or, where C-core allows it, `unix:PATH`).
fn check_addr(flag: &str, addr: &str, unix_allowed: bool) -> Result<(), String> {
    if unix_allowed && (addr.starts_with("unix:") || addr.starts_with("unix-abstract:")) {
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("{flag} {addr}: not HOST:PORT")),
    }
}

/// One completion queue per core: C-core reads and parses on whichever queue
/// thread is polling while the others answer. A client that needs a core of
/// its own does better against fewer (`bench compare` starts its server with
/// half); the trade-off is measured in `docs/tuning-log.md`.
pub fn default_completion_queues() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A replica's name when none is given: `HOST:PORT` of the address it is bound
/// to, with the machine's host name (a pod's name on Kubernetes) for a
/// wildcard host such as `[::]` or `0.0.0.0`, which would not tell replicas
/// apart; a Unix socket's address as it is.
pub fn default_replica_name(addr: &str, port: u16) -> String {
    if addr.starts_with("unix:") || addr.starts_with("unix-abstract:") {
        return addr.to_owned();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let wildcard = matches!(host, "" | "[::]" | "0.0.0.0" | "[::0]" | "*");
    let host = match wildcard.then(host_name).flatten() {
        Some(name) => name,
        None => host.to_owned(),
    };
    format!("{host}:{port}")
}

/// The machine's host name, if it can be read.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_calls_the_server_s_own_port_on_loopback_for_a_wildcard() {
        let at = |addr: &str| ServerConfig {
            addr: addr.to_owned(),
            ..ServerConfig::default()
        };
        assert_eq!(at("[::]:0").web_upstream(5), "127.0.0.1:5");
        assert_eq!(at("0.0.0.0:50051").web_upstream(50051), "127.0.0.1:50051");
        assert_eq!(at("127.0.0.2:0").web_upstream(7), "127.0.0.2:7");
        assert_eq!(at("[::1]:0").web_upstream(7), "[::1]:7");
    }

    #[test]
    fn web_addr_needs_a_plaintext_tcp_port() {
        let web = |addr: &str| ServerConfig {
            addr: addr.to_owned(),
            web_addr: Some("127.0.0.1:0".to_owned()),
            ..ServerConfig::default()
        };
        assert!(web("127.0.0.1:0").check().is_ok());
        let err = web("unix:/tmp/x.sock").check().unwrap_err();
        assert!(err.contains("needs --addr HOST:PORT"), "{err}");
        let bad_origin = ServerConfig {
            web_allow_origins: vec!["nope".to_owned()],
            ..web("127.0.0.1:0")
        };
        let err = bad_origin.check().unwrap_err();
        assert!(err.starts_with("--web-allow-origin 'nope'"), "{err}");
    }

    #[test]
    fn a_request_budget_holds_one_largest_message_and_fits_c_core() {
        let budget = |bytes| ServerConfig {
            max_request_bytes_in_flight: Some(bytes),
            ..ServerConfig::default()
        };
        assert_eq!(budget(0).request_budget(), None);
        assert!(budget(0).check().is_ok());
        assert_eq!(budget(8 << 20).request_budget(), Some(8 << 20));
        let err = budget(1 << 20).check().unwrap_err();
        assert!(err.contains("below --max-message-bytes 4194304"), "{err}");
        let err = budget(4 << 30).check().unwrap_err();
        assert!(err.contains("at most 2147483647"), "{err}");
        let sized = ServerConfig::default().request_budget().unwrap();
        assert!(sized >= DEFAULT_MAX_MESSAGE_BYTES, "{sized}");
    }

    #[test]
    fn the_default_replica_name_is_the_bound_address() {
        assert_eq!(
            default_replica_name("127.0.0.2:0", 50051),
            "127.0.0.2:50051"
        );
        assert_eq!(default_replica_name("[::1]:50051", 50051), "[::1]:50051");
        assert_eq!(
            default_replica_name("unix:/tmp/m.sock", 1),
            "unix:/tmp/m.sock"
        );
        let wildcard = default_replica_name("[::]:50051", 50051);
        match host_name() {
            Some(name) => assert_eq!(wildcard, format!("{name}:50051")),
            None => assert_eq!(wildcard, "[::]:50051"),
        }
    }
}
