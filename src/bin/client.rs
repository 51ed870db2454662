//! `client`: runs the seed's four demos against a LearningMessenger server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use learning_messenger::client::{self, demo, ConnectOptions};

#[derive(Parser)]
#[command(about = "The LearningMessenger gRPC client")]
struct Args {
    /// Server address, HOST:PORT.
    #[arg(long, default_value = "localhost:50051")]
    target: String,
    /// Pause before each outgoing streamed message, in ms (0 for none).
    #[arg(long, default_value_t = 1000)]
    delay_ms: u64,
    /// Deadline for each call, in ms.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Use TLS, trusting this CA certificate (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: the name to expect in the server's certificate.
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ConnectOptions {
        target: args.target.clone(),
        timeout: args.timeout_ms.map(Duration::from_millis),
        tls_ca: args.tls_ca,
        tls_server_name: args.tls_server_name,
    };
    let result = client::connect(&options).and_then(|client| {
        futures::executor::block_on(demo::run_all(&client, Duration::from_millis(args.delay_ms), &mut std::io::stdout()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.report(&args.target));
            ExitCode::FAILURE
        }
    }
}
