//! `webgate`: gRPC-Web for browsers in front of a gRPC server (any replica,
//! or a fleet's balancer), as Envoy's grpc_web filter would be; it also
//! serves the lab's page. Runs until Ctrl-C or SIGTERM (messenger-web; no
//! grpcio is linked).

use std::process::ExitCode;

use clap::Parser;
use log::info;
use messenger_web::{Gateway, GatewayOptions, DEFAULT_MAX_MESSAGE_BYTES};

#[derive(Parser)]
#[command(
    name = "webgate",
    about = "gRPC-Web gateway: browsers' calls (application/grpc-web and application/grpc-web-text for unary and \
             server streaming; WebSockets with grpc-websockets for every pattern) become gRPC calls to --upstream over HTTP/2; serves the lab's page \
             at / (logs: RUST_LOG, default info)"
)]
struct Cli {
    /// Where browsers connect, HOST:PORT (port 0: any free port, logged).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The gRPC server, HOST:PORT (plaintext HTTP/2).
    #[arg(long, default_value = "127.0.0.1:50051")]
    upstream: String,
    /// An origin whose pages may call the gateway too (CORS), such as http://localhost:3000, or * for any; repeat for several. The gateway's own page needs none.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// The largest message a browser may send over a WebSocket, in bytes; larger ones get RESOURCE_EXHAUSTED (set it as the upstream's --max-message-bytes).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES, value_parser = clap::value_parser!(usize))]
    max_message_bytes: usize,
    /// A name the gateway answers to, such as lab.example, besides IP addresses and localhost (a request naming any other gets 403, against DNS rebinding); repeat for several.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, as every bad flag of the project's programs.
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            eprintln!(
                "webgate: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = GatewayOptions {
        upstream: cli.upstream,
        allowed_origins: cli.allow_origins,
        max_message_bytes: cli.max_message_bytes,
        allowed_hosts: cli.allow_hosts,
    };
    if let Err(e) = options.check() {
        eprintln!("webgate: {e}");
        return ExitCode::from(2);
    }
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        eprintln!("webgate: cannot install the signal handler: {e}");
        return ExitCode::FAILURE;
    }
    let gateway = match Gateway::start(&cli.listen, &options) {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("webgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!(
        "gRPC-Web gateway on port {} in front of {}; the page: {}",
        gateway.port(),
        options.upstream,
        gateway.page_url()
    );
    let _ = stop_rx.recv();
    gateway.stop();
    info!("stopped");
    ExitCode::SUCCESS
}
