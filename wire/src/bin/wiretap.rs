//! `wiretap`: a proxy in front of a gRPC server that forwards every byte
//! unchanged and shows every HTTP/2 frame, header and gRPC message that
//! passes (messenger-wire; no grpcio is linked).

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use messenger_wire::{proxy, Format, TapOptions};

#[derive(Parser)]
#[command(
    name = "wiretap",
    about = "Shows what gRPC puts on the wire: forwards a connection to a gRPC server unchanged and prints \
             every HTTP/2 frame, HPACK-decoded headers and each gRPC message decoded with the contract",
    after_help = "Point a client at --listen; the server is --upstream. Records go to stdout, one colour per \
                  stream on a terminal (NO_COLOR turns colours off); --json prints one object per line \
                  (docs/wiretap.md lists the fields)."
)]
struct Cli {
    /// Where clients connect, HOST:PORT (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:50052")]
    listen: String,
    /// The gRPC server, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:50051")]
    upstream: String,
    /// One JSON object per frame, message, notice and closed connection.
    #[arg(long)]
    json: bool,
    /// Also show each message's bytes, field by field: tag, field number, wire type, length, value.
    #[arg(long)]
    bytes: bool,
    /// Also serve a live page on http://HOST:PORT/ that draws each connection as a timeline, one lane per HTTP/2 stream (docs/wiretap-web.md).
    #[arg(long, value_name = "HOST:PORT")]
    web: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let options = TapOptions {
        upstream: cli.upstream,
        format: if cli.json { Format::Json } else { Format::Text },
        colour: stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        bytes: cli.bytes,
        web: cli.web,
    };
    match proxy::run(&cli.listen, options, Box::new(stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "wiretap: {e}");
            ExitCode::FAILURE
        }
    }
}
