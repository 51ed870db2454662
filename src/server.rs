//! Running a LearningMessenger server: completion queues, message limits,
//! keepalive, TLS, the health service, and a graceful stop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use futures_timer::Delay;
use grpcio::{ChannelBuilder, EnvBuilder, ServerBuilder, ServerCredentials, ServerCredentialsBuilder};
use log::info;

use crate::health::HealthService;
use crate::rpc;
use crate::service::{CallCounter, MessengerService, DEFAULT_DELAY};

/// gRPC's own default receive limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long in-flight calls may run on after a stop is asked for.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often an idle connection is pinged, and how long a ping may go unanswered
/// before the peer counts as gone and its calls end.
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients may ping this often without sending data (our own client pings
/// every KEEPALIVE_TIME); more often counts as abuse and gets a GOAWAY.
const MIN_CLIENT_PING_INTERVAL: Duration = KEEPALIVE_TIMEOUT;

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
    pub max_message_bytes: usize,
    pub tls: Option<TlsIdentity>,
    /// Completion queues, each polled by one thread; 0 means [`default_completion_queues`].
    pub completion_queues: usize,
    /// HTTP/2 keepalive: ping a connection after this long without reads...
    pub keepalive_time: Duration,
    /// ...and close it, ending its calls, if the ping is not answered within this.
    pub keepalive_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "[::]:50051".to_owned(),
            delay: DEFAULT_DELAY,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tls: None,
            completion_queues: 0,
            keepalive_time: KEEPALIVE_TIME,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
        }
    }
}

/// A started server: LearningMessenger and Health on one port.
pub struct RunningServer {
    server: grpcio::Server,
    health: HealthService,
    in_flight: CallCounter,
    port: u16,
}

/// How a graceful stop went.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight call finished within the grace period.
    Drained,
    /// Calls still running when the grace period ran out were cancelled.
    CancelledRemaining,
}

/// One completion queue per core: C-core reads and parses on whichever queue
/// thread is polling while the others answer, so a light load generator on 2
/// cores gets 70.7k unary calls/s from 2 queues against 60.3k from 1 (medians
/// of 6 alternating runs), for a ping-pong p50 about 5% slower (handing the
/// poller role over costs context switches; README, tuning log). A client that
/// needs a core of its own does better against fewer: `bench compare` starts
/// its server with half.
pub fn default_completion_queues() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts serving per `config`, or says in one line why it cannot.
pub fn start(config: &ServerConfig) -> Result<RunningServer, String> {
    let credentials = match &config.tls {
        Some(identity) => tls_credentials(identity)?,
        None => ServerCredentials::insecure(),
    };
    let queues = if config.completion_queues == 0 { default_completion_queues() } else { config.completion_queues };
    let env = Arc::new(EnvBuilder::new().cq_count(queues).name_prefix("grpc-server").build());
    let args = ChannelBuilder::new(env.clone())
        // No limit in C-core, so its message-size filter stays out of every
        // call: the services check each request against the limit themselves.
        .max_receive_message_len(-1)
        .keepalive_time(config.keepalive_time)
        .keepalive_timeout(config.keepalive_timeout)
        // Our clients ping only while they have calls; allowing pings on idle
        // connections too made C-core cancel busy unary calls under load.
        .http2_min_recv_ping_interval_without_data(MIN_CLIENT_PING_INTERVAL)
        .build_args();

    let health = HealthService::serving(&["", rpc::messenger::SERVICE_NAME]);
    let messenger = MessengerService::new(config.delay);
    let in_flight = messenger.in_flight();
    let mut server = ServerBuilder::new(env)
        .channel_args(args)
        .register_service(rpc::messenger::create_learning_messenger(messenger, config.max_message_bytes))
        .register_service(rpc::health::create_health(health.clone(), config.max_message_bytes))
        .build()
        .map_err(|e| format!("cannot build the server: {e}"))?;
    let port = server.add_listening_port(config.addr.as_str(), credentials).map_err(|_| listen_error(config))?;
    server.start();
    Ok(RunningServer { server, health, in_flight, port })
}

/// Why the port could not be added. C-core only says that it failed, for a
/// bad address and a bad certificate alike: an insecure probe tells them apart.
fn listen_error(config: &ServerConfig) -> String {
    match &config.tls {
        Some(identity) if can_listen(&config.addr) => format!(
            "cannot serve TLS: {} and {} are not a valid certificate chain and its private key",
            identity.cert.display(),
            identity.key.display()
        ),
        _ => format!("cannot listen on {}: address invalid or in use", config.addr),
    }
}

/// Whether a plaintext listener can bind `addr` (the probe is dropped at once).
fn can_listen(addr: &str) -> bool {
    let env = Arc::new(EnvBuilder::new().cq_count(1).name_prefix("grpc-probe").build());
    ServerBuilder::new(env)
        .build()
        .is_ok_and(|mut probe| probe.add_listening_port(addr, ServerCredentials::insecure()).is_ok())
}

fn tls_credentials(identity: &TlsIdentity) -> Result<ServerCredentials, String> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|e| format!("cannot read TLS {what} {}: {e}", path.display()))
    };
    let (cert, key) = (read(&identity.cert, "certificate")?, read(&identity.key, "key")?);
    let pem_checks = [
        (&cert, "-----BEGIN CERTIFICATE-----", "certificate", &identity.cert),
        (&key, "PRIVATE KEY-----", "key", &identity.key),
    ];
    for (pem, marker, what, path) in pem_checks {
        if !String::from_utf8_lossy(pem).contains(marker) {
            return Err(format!("TLS {what} {} is not a PEM {what} (no {marker:?} line)", path.display()));
        }
    }
    Ok(ServerCredentialsBuilder::new().add_cert(cert, key).build())
}

impl RunningServer {
    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn health(&self) -> &HealthService {
        &self.health
    }

    /// LearningMessenger calls whose work is still running.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// Stops gracefully: health turns NOT_SERVING, no new calls are accepted,
    /// in-flight calls may finish within `grace`, then what remains is cancelled.
    pub fn shutdown(mut self, grace: Duration) -> Stopped {
        self.health.shutdown();
        let mut drained = self.server.shutdown();
        let outcome = futures::executor::block_on(future::select(&mut drained, Delay::new(grace)));
        match outcome {
            Either::Left(_) => Stopped::Drained,
            Either::Right(_) => {
                info!("grace period over: cancelling {} call(s) still running", self.in_flight.get());
                self.server.cancel_all_calls();
                let _ = futures::executor::block_on(drained);
                Stopped::CancelledRemaining
            }
        }
    }
}
