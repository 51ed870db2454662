//! `server`: serves LearningMessenger (and gRPC health and reflection) until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use learning_messenger::auth::{self, AuthConfig};
use learning_messenger::compression::Compression;
use learning_messenger::server::{self, ServerConfig, TlsIdentity};
use learning_messenger::transport::{self, DEFAULT_MAX_MESSAGE_BYTES};
use log::info;
use messenger_lab::answers::LAB_DELAY;

#[derive(Parser)]
#[command(
    about = "The LearningMessenger gRPC server: the lab's four RPCs, with gRPC health and server reflection",
    after_help = "Logs go to stderr at RUST_LOG's level (default info; debug adds every note and feed update).\n\n\
                  Ctrl-C or SIGTERM: health turns NOT_SERVING, calls are still served for --drain-ms, then new \
                  calls are refused and those in flight get --shutdown-grace-ms before they are cancelled; exit 0.\n\n\
                  Exit codes: 0 stopped, 1 cannot start (one line says why), 2 bad flag."
)]
struct Args {
    /// Address to listen on, HOST:PORT ([::] for every interface; port 0 picks a free one, logged at start).
    #[arg(long, default_value = "[::]:50051")]
    addr: String,
    /// The lab's simulated work before each StreamLearnings update, in ms; 0 for none.
    #[arg(long, default_value_t = LAB_DELAY.as_millis() as u64)]
    delay_ms: u64,
    /// Largest request message accepted, in bytes, compressed or not (gRPC's default, 4 MiB); bigger ones get RESOURCE_EXHAUSTED as soon as their length prefix is read, or as decompression passes the limit.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES, value_parser = clap::value_parser!(usize))]
    max_message_bytes: usize,
    /// Request bytes the server may hold before handlers read them, all calls and connections together (declared by each message's length prefix); a message over 64 KiB that would pass it gets RESOURCE_EXHAUSTED at its prefix; 0 for no budget [default: 1/8 of the machine's memory (or cgroup limit), at least --max-message-bytes, at most 2 GiB - 1].
    #[arg(long, value_name = "BYTES")]
    max_request_bytes_in_flight: Option<usize>,
    /// On Ctrl-C or SIGTERM, how long health reports NOT_SERVING while calls are still served, in ms, before the server stops accepting them.
    #[arg(long, default_value_t = 0)]
    drain_ms: u64,
    /// On Ctrl-C or SIGTERM, after the drain, how long in-flight calls may finish before they are cancelled, in ms.
    #[arg(long, default_value_t = server::DEFAULT_SHUTDOWN_GRACE.as_millis() as u64)]
    shutdown_grace_ms: u64,
    /// Streams one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); 0 for no limit.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,
    /// Calls the server may have in its handlers at once, all connections together; more get RESOURCE_EXHAUSTED; 0 for no limit.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CALLS_IN_FLIGHT)]
    max_calls_in_flight: usize,
    /// Health Watch and reflection streams (open to anyone, without authentication) the server may have at once, a limit apart from --max-calls-in-flight; more get RESOURCE_EXHAUSTED; 0 for no limit.
    #[arg(long, default_value_t = server::DEFAULT_MAX_OPEN_STREAMS)]
    max_open_streams: usize,
    /// Streams a connection may reset before their calls start, or have refused, per second; past it the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed; 0 for no limit.
    #[arg(long, default_value_t = server::DEFAULT_MAX_ABORTED_STREAMS_PER_SECOND)]
    max_aborted_streams_per_second: u32,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates signed by this CA (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Require `authorization: Bearer <JWT>` on every LearningMessenger call, verified offline with the RS256 and ES256 keys of this JWKS file (health and reflection stay open).
    #[arg(long, value_name = "FILE")]
    auth_jwks: Option<PathBuf>,
    /// With --auth-jwks: the issuer (iss) every token must come from.
    #[arg(long, requires = "auth_jwks")]
    auth_issuer: Option<String>,
    /// With --auth-jwks: the audience (aud) every token must be for (this server's; needed unless --auth-any-audience).
    #[arg(long, requires = "auth_jwks")]
    auth_audience: Option<String>,
    /// With --auth-jwks, instead of --auth-audience: accept tokens for any audience, so a token the same issuer made for any other app calls this server too.
    #[arg(long, requires = "auth_jwks", conflicts_with = "auth_audience")]
    auth_any_audience: bool,
    /// With --auth-jwks: the claim that names the caller (its name in feed rooms).
    #[arg(long, default_value = auth::DEFAULT_NAME_CLAIM)]
    auth_name_claim: String,
    /// With --auth-jwks: the claim listing the feed rooms a caller may join (`*` matches any run of characters); a token without it joins none, unless --auth-open-rooms.
    #[arg(long, default_value = auth::DEFAULT_ROOMS_CLAIM)]
    auth_rooms_claim: String,
    /// Let an authenticated caller that nothing lists rooms for (a token without the rooms claim, a client certificate) join any feed room; without it such a caller joins none.
    #[arg(long)]
    auth_open_rooms: bool,
    /// Completion queues, each polled by a thread of its own that runs the handlers; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    completion_queues: usize,
    /// HTTP/2 keepalive: ping a connection after this many ms without reads, so a vanished client's calls end.
    #[arg(long, default_value_t = transport::KEEPALIVE_TIME.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    keepalive_time_ms: u64,
    /// Close a connection (ending its calls) whose ping is unanswered after this many ms.
    #[arg(long, default_value_t = transport::KEEPALIVE_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    keepalive_timeout_ms: u64,
    /// Compress answers with gzip or deflate when the client accepts it (grpc-accept-encoding); else another it accepts, or none. Requests are accepted either way.
    #[arg(long, default_value_t = Compression::None)]
    compression: Compression,
    /// Serve Prometheus metrics (go-grpc-prometheus names) on http://HOST:PORT/metrics; off by default.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// End each client connection gracefully after about this many ms (±10% jitter), so clients reconnect and new replicas get their share; off by default.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connection_age_ms: Option<u64>,
    /// With --max-connection-age-ms: how long calls may run on an aged connection before it is closed, in ms [default: no limit].
    #[arg(long, requires = "max_connection_age_ms")]
    max_connection_age_grace_ms: Option<u64>,
    /// This replica's name, sent to clients as the initial-metadata header x-served-by [default: HOST:PORT bound, the host name for a wildcard host].
    #[arg(long)]
    replica_name: Option<String>,
    /// Feed rooms: updates a participant may have waiting; while one's queue is full, the room's senders on this replica wait (HTTP/2 flow control), and one that stays full for --room-lag-ms is removed (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = server::DEFAULT_FEED_QUEUE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    feed_queue: usize,
    /// Feed rooms with participants on this replica; a join that would open one more gets RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = server::DEFAULT_MAX_ROOMS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_rooms: usize,
    /// Participants of one feed room, on every replica sharing --rooms; a join beyond gets RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = server::DEFAULT_MAX_ROOM_SIZE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_room_size: usize,
    /// Where feed rooms are kept: memory (this replica's own) or redis://HOST:PORT[/DB] (shared by every replica naming it).
    #[arg(long, default_value = "memory", value_name = "STORE")]
    rooms: server::RoomStoreAddr,
    /// Events each feed room keeps, so that a participant that reconnects with room-since misses nothing.
    #[arg(long, default_value_t = server::DEFAULT_ROOM_HISTORY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    room_history: usize,
    /// How long a feed room's history outlives its last participant, in ms.
    #[arg(long, default_value_t = server::DEFAULT_ROOM_LINGER.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    room_linger_ms: u64,
    /// With --rooms redis: a participant whose replica stops renewing it (killed, cut off) is announced as left within this many ms.
    #[arg(long, default_value_t = server::DEFAULT_PRESENCE_TTL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(300..=30_000))]
    room_presence_ttl_ms: u64,
    /// A participant whose queue stays full (--feed-queue) this many ms is removed from its room.
    #[arg(long, default_value_t = server::DEFAULT_ROOM_LAG.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    room_lag_ms: u64,
    /// With --rooms redis: how long open room calls ride out a store that does not answer before they end with UNAVAILABLE, in ms.
    #[arg(long, default_value_t = server::DEFAULT_STORE_GRACE.as_millis() as u64)]
    room_store_grace_ms: u64,
    /// Do not serve server reflection (grpc.reflection.v1 and v1alpha), which grpcurl uses.
    #[arg(long)]
    no_reflection: bool,
    /// Serve gRPC-Web for browsers, and the lab's page at http://HOST:PORT/, on this address too (a gateway in this process in front of --addr); off by default.
    #[arg(long, value_name = "HOST:PORT")]
    web_addr: Option<String>,
    /// With --web-addr: an origin whose pages may call it too (CORS), such as http://localhost:3000, or * for any; repeat for several.
    #[arg(
        long = "web-allow-origin",
        value_name = "ORIGIN",
        requires = "web_addr"
    )]
    web_allow_origins: Vec<String>,
    /// Check the flags and the TLS files, print the configuration as JSON and exit (0 if it can be served), without listening.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _log_flush = learning_messenger::logging::init("info,grpcio=warn");
    // gRPC C-core's own diagnostics go through the same logger and RUST_LOG;
    // a client's failed TLS handshake at debug (a handshake flood must not flood the log).
    learning_messenger::grpc_log::redirect();

    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        eprintln!("server: cannot install the signal handler: {e}");
        return ExitCode::FAILURE;
    }

    let config = ServerConfig {
        addr: args.addr,
        delay: Duration::from_millis(args.delay_ms),
        max_message_bytes: args.max_message_bytes,
        max_request_bytes_in_flight: args.max_request_bytes_in_flight,
        max_concurrent_streams: args.max_concurrent_streams,
        max_calls_in_flight: args.max_calls_in_flight,
        max_open_streams: args.max_open_streams,
        max_aborted_streams_per_second: args.max_aborted_streams_per_second,
        tls_client_ca: args.tls_client_ca,
        auth: AuthConfig {
            jwks: args.auth_jwks,
            issuer: args.auth_issuer,
            audience: args.auth_audience,
            any_audience: args.auth_any_audience,
            name_claim: args.auth_name_claim,
            rooms_claim: args.auth_rooms_claim,
            open_rooms: args.auth_open_rooms,
        },
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsIdentity { cert, key }),
        completion_queues: args.completion_queues,
        keepalive_time: Duration::from_millis(args.keepalive_time_ms),
        keepalive_timeout: Duration::from_millis(args.keepalive_timeout_ms),
        reflection: !args.no_reflection,
        metrics_addr: args.metrics_addr,
        compression: args.compression,
        max_connection_age: args.max_connection_age_ms.map(Duration::from_millis),
        max_connection_age_grace: args.max_connection_age_grace_ms.map(Duration::from_millis),
        replica_name: args.replica_name,
        rooms: server::RoomLimits {
            queue: args.feed_queue,
            max_rooms: args.max_rooms,
            max_room_size: args.max_room_size,
            history: args.room_history,
            linger: Duration::from_millis(args.room_linger_ms),
            presence_ttl: Duration::from_millis(args.room_presence_ttl_ms),
            lag: Duration::from_millis(args.room_lag_ms),
            store_grace: Duration::from_millis(args.room_store_grace_ms),
        },
        room_store: args.rooms,
        drain: Duration::from_millis(args.drain_ms),
        shutdown_grace: Duration::from_millis(args.shutdown_grace_ms),
        web_addr: args.web_addr,
        web_allow_origins: args.web_allow_origins,
    };
    if args.check_config {
        return match config.check() {
            Ok(()) => {
                println!("{}", config.describe());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let running = match server::start(&config) {
        Ok(running) => running,
        Err(e) => {
            eprintln!("server: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!("🚀 gRPC server logic running on port {}...", running.port());
    info!("replica {}", running.replica_name());
    if let Some(port) = running.metrics_port() {
        info!("metrics on port {port} (/metrics)");
    }
    if let (Some(port), Some(url)) = (running.web_port(), running.web_page_url()) {
        info!("gRPC-Web on port {port}; the page: {url}");
    }
    match (&config.auth.jwks, &config.tls_client_ca) {
        (Some(jwks), _) => info!(
            "LearningMessenger calls need a bearer token verified with {}",
            jwks.display()
        ),
        (None, Some(_)) => {
            info!("mutual TLS: each LearningMessenger caller is named by its client's SAN, else CN")
        }
        (None, None) => {}
    }

    let _ = stop_rx.recv();
    let stopped = running.stop(config.drain, config.shutdown_grace);
    info!("stopped ({stopped:?})");
    ExitCode::SUCCESS
}
