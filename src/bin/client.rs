//! `client`: talks to a LearningMessenger server, one command per pattern;
//! without a command, the lab's four demos.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use learning_messenger::client::commands::{self, ClientOptions, Command};
use learning_messenger::client::connect::MAX_ATTEMPTS_LIMIT;
use learning_messenger::client::input::Input;
use learning_messenger::client::output::Format;
use learning_messenger::client::wire::ShowWire;
use learning_messenger::client::TlsIdentity;
use learning_messenger::client::{Balancing, BearerToken, ConnectOptions, LbPolicy};
use learning_messenger::compression::Compression;
use messenger_lab::{demo, room};

#[derive(Parser)]
#[command(
    name = "client",
    about = "The LearningMessenger gRPC client: one command per RPC pattern; without one, the lab's four demos",
    after_help = "Output: the lab's lines on stdout (colours and progress bars only on a terminal; NO_COLOR turns \
                  colours off), or JSON with --json. A failure is one line on stderr, `error: TARGET: CODE: message`; \
                  diagnostics, C-core's too, only with RUST_LOG (e.g. RUST_LOG=debug).\n\n\
                  Exit codes: 0 done (also when the output's reader goes away, as with `| head`), 1 a call failed \
                  (error status, unreachable server, deadline), 2 bad flag (a bad target or service config too), \
                  3 local problem (unreadable file or certificate), 4 not serving and 5 unknown service (health), \
                  130 interrupted (Ctrl-C cancels the calls in flight)."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<ClientCommand>,
}

#[derive(Args)]
struct GlobalArgs {
    /// The server, in gRPC's name syntax: HOST:PORT, dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT (several replicas), ipv6:[ADDR]:PORT or unix:PATH; checked before any call.
    #[arg(long, global = true, default_value = "localhost:50051")]
    target: String,
    /// How calls are spread over the target's addresses: pick_first (gRPC's default) or round_robin, which also watches each replica's health (grpc.health.v1) and sends no calls to one NOT_SERVING, e.g. draining.
    #[arg(long, global = true, default_value_t = LbPolicy::PickFirst)]
    lb: LbPolicy,
    /// Attempts of GetLearningStatus (idempotent) on UNAVAILABLE, 1 to 5 (1 = no retries; jittered backoff from 0.1 s doubling to 1 s), through the channel's service config.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_ATTEMPTS_LIMIT as i64))]
    max_attempts: u32,
    /// A whole gRPC service config (JSON, as in gRPC's doc/service_config.md) instead of the one --lb and --max-attempts build; one gRPC refuses is one line and exit 2 before any call.
    #[arg(long, global = true, value_name = "JSON", conflicts_with_all = ["lb", "max_attempts"])]
    service_config: Option<String>,
    /// Calls wait for the server to be reachable (until their deadline) instead of failing at once.
    #[arg(long, global = true)]
    wait_for_ready: bool,
    /// Print which replica answered each call (`Served by: NAME`, from its x-served-by header).
    #[arg(long, global = true)]
    show_replica: bool,
    /// Pause before each outgoing streamed message, in ms; 0 for none [default: 1000 for the demos, 0 for upload and chat].
    #[arg(long, global = true)]
    delay_ms: Option<u64>,
    /// A deadline on each call, in ms; a call still running then fails with DEADLINE_EXCEEDED.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Use TLS, trusting this CA certificate (PEM).
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: the name to expect in the server's certificate.
    #[arg(long, global = true, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Mutual TLS: present this certificate chain (PEM); needs --tls-key and --tls-ca.
    #[arg(long, global = true, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Send this file's bearer token (a JWT) as `authorization: Bearer <JWT>` on every call; only over TLS, or to a loopback address.
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Compress every request with gzip or deflate (every gRPC server accepts both); answers are decompressed whatever the server sends.
    #[arg(long, global = true, default_value_t = Compression::None)]
    compression: Compression,
    /// One JSON object per line instead of text: {"rpc": ..., "message": {...}} per received message (protobuf's JSON mapping, defaults included); `all --concurrent` ends with {"total_ms": ..., "pattern_ms": {...}}.
    #[arg(long, global = true)]
    json: bool,
    /// Run the calls through an in-process tap that prints every HTTP/2 frame and gRPC message on stderr, as text or (=json) one object per line, or (=web) draws them on a live page, kept up after the calls until Ctrl-C; stdout is unchanged.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "text",
          value_parser = ["text", "json", "web"])]
    show_wire: Option<String>,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// The lab's four demos in order (what `client` alone runs).
    All {
        /// Run the four patterns at the same time over one connection, then print the total time.
        #[arg(long)]
        concurrent: bool,
    },
    /// Unary: ask for the learning status, print the one answer.
    Status {
        /// Who is asking (the request's user_id).
        #[arg(long, default_value = demo::USER_ID)]
        user_id: String,
    },
    /// Server streaming: follow a topic's progress updates as they arrive (a progress bar on a terminal, plain lines otherwise).
    Learn {
        /// What to learn about.
        #[arg(long, default_value = demo::TOPIC)]
        topic: String,
    },
    /// Client streaming: upload one note per line, read as it is sent, then print the server's summary.
    Upload {
        /// The notes, one per line ('-' for standard input); without it, the lab's four notes.
        file: Option<PathBuf>,
    },
    /// Bidirectional streaming: send each line of standard input as a feed update, print each echo as it arrives.
    ///
    /// A line `NAME: text` speaks as NAME (one word); other lines as --user. Blank lines are skipped.
    /// End of input (Ctrl-D) closes the stream after the last echo.
    ///
    /// With --room, joins that room: everyone else in it gets each update, and what they send is
    /// printed as `[ROOM] user: text`, joins and leaves as `[ROOM] * ...` (--json: "kind" is
    /// ack, update, join or leave). End of input leaves the room.
    Chat {
        /// Who speaks [default: the login name, $USER or $LOGNAME; in a room with --token-file, the token's name]; in a room, the name others see.
        #[arg(long)]
        user: Option<String>,
        /// Join this feed room (1 to 64 printable ASCII characters) instead of the lab's echo.
        #[arg(long, value_parser = room_name)]
        room: Option<String>,
    },
    /// Health probe (grpc.health.v1.Health/Check), like grpc_health_probe: exit 0 only for SERVING.
    ///
    /// Exit codes: 0 SERVING, 4 NOT_SERVING, 5 unknown service, 1 unreachable server or failed call.
    Health {
        /// The service to check; empty for the whole server.
        #[arg(long, default_value = "")]
        service: String,
        /// Follow Watch instead: print each status change until the stream ends.
        #[arg(long)]
        watch: bool,
    },
}

/// A room name the server accepts.
fn room_name(name: &str) -> Result<String, String> {
    match room::name_problem("room", name.as_bytes()) {
        Some(problem) => Err(problem),
        None => Ok(name.to_owned()),
    }
}

fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    commands::init_logging();
    let command = match command.unwrap_or(ClientCommand::All { concurrent: false }) {
        ClientCommand::All { concurrent } => Command::All { concurrent },
        ClientCommand::Status { user_id } => Command::Status { user_id },
        ClientCommand::Learn { topic } => Command::Learn { topic },
        ClientCommand::Upload { file } => Command::Upload {
            input: file.as_deref().map(Input::from_arg),
        },
        ClientCommand::Chat { user, room } => Command::Chat { user, room },
        ClientCommand::Health { service, watch } => Command::Health { service, watch },
    };
    let token = match global
        .token_file
        .as_deref()
        .map(BearerToken::read)
        .transpose()
    {
        Ok(token) => token,
        Err(e) => return commands::report(&e, &global.target),
    };
    let options = ClientOptions {
        connect: ConnectOptions {
            target: global.target,
            balancing: Balancing {
                lb: global.lb,
                max_attempts: global.max_attempts,
                service_config: global.service_config,
            },
            wait_for_ready: global.wait_for_ready,
            timeout: global.timeout_ms.map(Duration::from_millis),
            tls_ca: global.tls_ca,
            tls_server_name: global.tls_server_name,
            tls_identity: global
                .tls_cert
                .zip(global.tls_key)
                .map(|(cert, key)| TlsIdentity { cert, key }),
            compression: global.compression,
            authority: None,
            token,
        },
        delay: global.delay_ms.map(Duration::from_millis),
        show_replica: global.show_replica,
        format: if global.json {
            Format::Json
        } else {
            Format::Text
        },
        show_wire: global.show_wire.map(|show| match show.as_str() {
            "json" => ShowWire::Print(messenger_wire::Format::Json),
            "web" => ShowWire::Web,
            _ => ShowWire::Print(messenger_wire::Format::Text),
        }),
    };
    commands::run(command, &options)
}
