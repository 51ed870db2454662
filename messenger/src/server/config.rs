//! What a server is started with, and its defaults.

use std::path::PathBuf;
use std::time::Duration;

use messenger_lab::answers::SEED_DELAY;

use crate::compression::Compression;
use crate::service::RoomLimits;
use crate::transport::{DEFAULT_MAX_MESSAGE_BYTES, KEEPALIVE_TIME, KEEPALIVE_TIMEOUT};

/// How long in-flight calls may run on after a stop is asked for.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Streams one connection may have open at once, as most gRPC servers allow.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on; port 0 picks a free one.
    pub addr: String,
    /// Pause before each StreamLearnings update.
    pub delay: Duration,
    /// The largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Streams one connection may have open at once; 0 for no limit.
    pub max_concurrent_streams: u32,
    pub tls: Option<TlsIdentity>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    pub tls_client_ca: Option<PathBuf>,
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
    /// The feed's rooms: each participant's queue, how many rooms, how many in each.
    pub rooms: RoomLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "[::]:50051".to_owned(),
            delay: SEED_DELAY,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            tls: None,
            tls_client_ca: None,
            completion_queues: 0,
            keepalive_time: KEEPALIVE_TIME,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            reflection: true,
            metrics_addr: None,
            compression: Compression::None,
            rooms: RoomLimits::default(),
        }
    }
}

/// One completion queue per core: C-core reads and parses on whichever queue
/// thread is polling while the others answer. A client that needs a core of
/// its own does better against fewer (`bench compare` starts its server with
/// half); the trade-off is measured in `docs/tuning-log.md`.
pub fn default_completion_queues() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
