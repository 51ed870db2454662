//! Running a LearningMessenger server: completion queues, message limits,
//! keepalive, TLS, the health and reflection services, and a graceful stop.

mod budget;
mod config;

pub use crate::service::rooms::{
    RedisTlsFiles, RoomLimits, RoomStoreAddr, DEFAULT_FEED_QUEUE, DEFAULT_FEED_QUEUE_BYTES,
    DEFAULT_MAX_ROOMS, DEFAULT_MAX_ROOM_SIZE, DEFAULT_PRESENCE_TTL, DEFAULT_ROOM_HISTORY,
    DEFAULT_ROOM_LAG, DEFAULT_ROOM_LINGER, DEFAULT_ROOM_UPDATE_BYTES, DEFAULT_STORE_GRACE,
};
pub use crate::tls::TlsIdentity;
pub use budget::{default_max_request_bytes_in_flight, MAX_REQUEST_BYTES_IN_FLIGHT};
pub use config::{
    default_completion_queues, default_replica_name, ServerConfig,
    DEFAULT_MAX_ABORTED_STREAMS_PER_SECOND, DEFAULT_MAX_CALLS_IN_FLIGHT,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_OPEN_STREAMS, DEFAULT_SHUTDOWN_GRACE,
};

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use futures_timer::Delay;
use grpcio::{ChannelBuilder, EnvBuilder, ResourceQuota, ServerBuilder, ServerCredentials};
use log::info;
use messenger_web::{Gateway, GatewayOptions};

use crate::auth::Authentication;
use crate::metrics::{Metrics, MetricsEndpoint};
use crate::rpc::{self, ServiceOptions};
use crate::service::{CallCounter, HealthService, MessengerService, ReflectionService, Rooms};

/// Clients may ping this often without sending data (our own client pings
/// every KEEPALIVE_TIME); more often counts as abuse and gets a GOAWAY.
const MIN_CLIENT_PING_INTERVAL: Duration = crate::transport::KEEPALIVE_TIMEOUT;

/// How long a stop waits for the room store to announce the last leaves.
const ROOMS_CLOSE: Duration = Duration::from_secs(2);

/// A started server: LearningMessenger and Health on one port.
pub struct RunningServer {
    server: grpcio::Server,
    health: HealthService,
    in_flight: CallCounter,
    port: u16,
    replica_name: String,
    metrics: Option<MetricsEndpoint>,
    /// The gRPC-Web gateway of `--web-addr`, on a tokio runtime of its own.
    web: Option<Gateway>,
    rooms: Rooms,
}

/// How a graceful stop went.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight call finished within the grace period.
    Drained,
    /// Calls still running when the grace period ran out were cancelled.
    CancelledRemaining,
}

/// Starts serving per `config`, or says in one line why it cannot. C-core's
/// own log lines about a failed start are muted: the one line says it. Once
/// started, the room store says where rooms are kept, or that it is
/// unreachable (it is reached as the server starts; said once).
pub fn start(config: &ServerConfig) -> Result<RunningServer, String> {
    let running = crate::grpc_log::muted(|| start_muted(config))?;
    running.rooms.announce();
    Ok(running)
}

fn start_muted(config: &ServerConfig) -> Result<RunningServer, String> {
    let credentials = config.credentials()?;
    let queues = match config.completion_queues {
        0 => default_completion_queues(),
        n => n,
    };
    let env = Arc::new(
        EnvBuilder::new()
            .cq_count(queues)
            .name_prefix("grpc-server")
            .build(),
    );
    let health = HealthService::serving(&["", rpc::messenger::SERVICE_NAME]);
    let metrics = match &config.metrics_addr {
        Some(addr) => Some(MetricsEndpoint::serve(addr, Metrics::new())?),
        None => None,
    };
    let rooms = Rooms::open(
        &config.room_store,
        config.rooms,
        metrics.as_ref().map(|endpoint| endpoint.metrics().rooms()),
    )?;
    let messenger = MessengerService::new(config.delay).with_rooms(rooms.clone());
    let in_flight = messenger.in_flight();
    let mut options = ServiceOptions::new(config.max_message_bytes)
        .with_max_calls_in_flight(config.max_calls_in_flight);
    let served_by = options.served_by.clone();
    if let Some(endpoint) = &metrics {
        options = options.with_metrics(endpoint.metrics());
    }
    let mut builder = ServerBuilder::new(env.clone());
    if let Some(metrics) = &options.metrics {
        builder = builder.add_checker(metrics.unimplemented_checker());
    }
    // Health and reflection stay open: probes and `grpcurl list` need no token.
    let authentication = Authentication::new(
        &config.auth,
        config.tls_client_ca.is_some(),
        options.metrics.as_ref().map(|metrics| metrics.auth()),
    )?;
    let messenger_options = options.clone().with_authentication(authentication);
    // Their long-lived streams hold places of a small limit of their own, so
    // anonymous callers cannot take the authenticated calls'; Check, a
    // probe's quick unary call, keeps to the server's.
    let open_streams = options.clone().with_in_flight(rpc::InFlightLimit::of(
        "open streams (health Watch, reflection)",
        config.max_open_streams,
    ));
    builder = builder
        .channel_args(channel_args(config, env).build_args())
        .register_service(rpc::messenger::create_learning_messenger(
            messenger,
            &messenger_options,
        ))
        .register_service(rpc::health::create_health(
            health.clone(),
            &options,
            &open_streams,
        ));
    if config.reflection {
        let reflection = ReflectionService::new();
        builder = builder
            .register_service(rpc::reflection::create_server_reflection_v1(
                reflection.clone(),
                &open_streams,
            ))
            .register_service(rpc::reflection::create_server_reflection_v1alpha(
                reflection,
                &open_streams,
            ));
    }
    let mut server = builder
        .build()
        .map_err(|e| format!("cannot build the server: {e}"))?;
    let port = server
        .add_listening_port(config.addr.as_str(), credentials)
        .map_err(|_| listen_error(config))?;
    let replica_name = config
        .replica_name
        .clone()
        .unwrap_or_else(|| default_replica_name(&config.addr, port));
    served_by.set(&replica_name)?;
    let web = match &config.web_addr {
        Some(addr) => Some(start_web(config, addr, port)?),
        None => None,
    };
    server.start();
    Ok(RunningServer {
        server,
        health,
        in_flight,
        port,
        replica_name,
        metrics,
        web,
        rooms,
    })
}

/// The gRPC-Web gateway in front of this server's own `port`, which it
/// connects to only when a browser calls.
fn start_web(config: &ServerConfig, addr: &str, port: u16) -> Result<Gateway, String> {
    let options = GatewayOptions {
        upstream: config.web_upstream(port),
        allowed_origins: config.web_allow_origins.clone(),
        max_message_bytes: config.max_message_bytes,
        allowed_hosts: config.web_allow_hosts.clone(),
    };
    Gateway::start(addr, &options).map_err(|e| format!("gRPC-Web: {e}"))
}

/// Every C-core channel argument of the server, in one place:
/// `ServerBuilder::channel_args` replaces what was set before.
fn channel_args(config: &ServerConfig, env: Arc<grpcio::Environment>) -> ChannelBuilder {
    let mut args = ChannelBuilder::new(env)
        // No limit in C-core, so its message-size filter stays out of every
        // call: the services check each request against the limit themselves.
        .max_receive_message_len(-1)
        .keepalive_time(config.keepalive_time)
        .keepalive_timeout(config.keepalive_timeout)
        // Our clients ping only while they have calls; allowing pings on idle
        // connections too made C-core cancel busy unary calls under load.
        .http2_min_recv_ping_interval_without_data(MIN_CLIENT_PING_INTERVAL)
        // Decompression stops at the message limit: without it a 64 KiB gzip
        // bomb would make C-core allocate its whole 64 MiB (patch 0002).
        .raw_cfg_int(
            CString::from(c"grpc.max_decompressed_message_length"),
            i32::try_from(config.max_message_bytes).unwrap_or(i32::MAX),
        )
        // A message declaring more in its length prefix is refused there,
        // before C-core holds its body or opens a window for it (patch 0006).
        .raw_cfg_int(
            CString::from(c"grpc.max_declared_message_length"),
            i32::try_from(config.max_message_bytes).unwrap_or(i32::MAX),
        );
    if let Some(budget) = config.request_budget() {
        // The budget is counted in the resource quota that all of this
        // server's connections share: a quota of its own, so that it is
        // this server's (the quota's memory is left unlimited, as C-core's
        // default quota's is).
        args = args
            .set_resource_quota(ResourceQuota::new(Some("learning-messenger server")))
            .raw_cfg_int(
                CString::from(c"grpc.max_request_bytes_in_flight"),
                i32::try_from(budget).unwrap_or(i32::MAX),
            );
    }
    let mut args = config.compression.for_answers(args);
    if let Some(age) = config.max_connection_age {
        args = args.raw_cfg_int(
            CString::from(c"grpc.max_connection_age_ms"),
            millis_arg(age),
        );
    }
    if let Some(grace) = config.max_connection_age_grace {
        args = args.raw_cfg_int(
            CString::from(c"grpc.max_connection_age_grace_ms"),
            millis_arg(grace),
        );
    }
    if config.max_concurrent_streams > 0 {
        let limit = i32::try_from(config.max_concurrent_streams).unwrap_or(i32::MAX);
        args = args.max_concurrent_stream(limit);
    }
    // The patched C-core (patch 0004, docs/http2-floods.md) sends away a
    // connection that wastes streams faster than this.
    args.raw_cfg_int(
        CString::from(c"grpc.http2.max_aborted_streams_per_second"),
        i32::try_from(config.max_aborted_streams_per_second).unwrap_or(i32::MAX),
    )
}

/// A duration as C-core's integer milliseconds (at most about 24 days).
fn millis_arg(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
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
        _ => format!(
            "cannot listen on {}: address invalid or in use",
            config.addr
        ),
    }
}

/// Whether a plaintext listener can bind `addr` (the probe is dropped at once).
fn can_listen(addr: &str) -> bool {
    let env = Arc::new(
        EnvBuilder::new()
            .cq_count(1)
            .name_prefix("grpc-probe")
            .build(),
    );
    ServerBuilder::new(env).build().is_ok_and(|mut probe| {
        probe
            .add_listening_port(addr, ServerCredentials::insecure())
            .is_ok()
    })
}

impl RunningServer {
    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn health(&self) -> &HealthService {
        &self.health
    }

    /// The name every answer carries as `x-served-by`.
    pub fn replica_name(&self) -> &str {
        &self.replica_name
    }

    /// The port the metrics endpoint was bound to, if it is on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(MetricsEndpoint::port)
    }

    /// The port of the gRPC-Web gateway (`--web-addr`), if it is on.
    pub fn web_port(&self) -> Option<u16> {
        self.web.as_ref().map(Gateway::port)
    }

    /// Where a browser opens the lab's page, if the gateway is on.
    pub fn web_page_url(&self) -> Option<String> {
        self.web.as_ref().map(Gateway::page_url)
    }

    /// LearningMessenger calls whose work is still running.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// Stops gracefully at once: [`RunningServer::stop`] without a drain.
    pub fn shutdown(self, grace: Duration) -> Stopped {
        self.stop(Duration::ZERO, grace)
    }

    /// Stops gracefully, each phase logged: health turns NOT_SERVING (Check
    /// and Watch) and calls are still served for `drain`, so that probes and
    /// balancers move traffic away; then no new calls are accepted, in-flight
    /// calls may finish within `grace`, and what remains is cancelled. The
    /// gRPC-Web gateway goes last: browsers' calls in flight end as the
    /// others do, and new ones meanwhile get UNAVAILABLE from the server.
    /// Blocks the calling thread (not a completion-queue thread) throughout.
    pub fn stop(mut self, drain: Duration, grace: Duration) -> Stopped {
        let stopped = self.stop_grpc(drain, grace);
        if let Some(web) = self.web.take() {
            web.stop();
        }
        stopped
    }

    fn stop_grpc(&mut self, drain: Duration, grace: Duration) -> Stopped {
        self.health.shutdown();
        if !drain.is_zero() {
            info!(
                "draining: health NOT_SERVING, calls still served for {} ms",
                drain.as_millis()
            );
            std::thread::sleep(drain);
        }
        info!(
            "stopping: health NOT_SERVING, no new calls, {} call(s) in flight may finish within {} ms",
            self.in_flight.get(),
            grace.as_millis()
        );
        let mut drained = self.server.shutdown();
        let outcome = futures::executor::block_on(future::select(&mut drained, Delay::new(grace)));
        let stopped = match outcome {
            Either::Left(_) => Stopped::Drained,
            Either::Right(_) => {
                info!(
                    "grace period over: cancelling {} call(s) still running",
                    self.in_flight.get()
                );
                self.server.cancel_all_calls();
                let _ = futures::executor::block_on(drained);
                Stopped::CancelledRemaining
            }
        };
        // The rooms' last leaves reach a shared store before the process ends.
        self.rooms.close(ROOMS_CLOSE);
        stopped
    }
}
