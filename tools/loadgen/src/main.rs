//! `loadgen`: drives a LearningMessenger server at `--target` from one thread,
//! with gRPC framed over h2 rather than grpcio, and prints the server's figures.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use messenger_loadgen::{self as loadgen, Connection};
use messenger_testkit::report::{parse_duration, per_second, Latency, Unit};

#[derive(Parser)]
#[command(
    about = "Independent load generator for a LearningMessenger server (HTTP/2 by h2, not grpcio); every answer is checked"
)]
struct Args {
    /// The server, HOST:PORT.
    #[arg(long, global = true, default_value = "127.0.0.1:50051")]
    target: String,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Closed-loop GetLearningStatus: calls/s, p50/p99/p99.9 latency.
    Unary(Closed),
    /// Closed-loop StreamLearnings (server started with --delay-ms 0): calls/s, updates/s.
    ServerStream(Closed),
    /// One SubmitResearchNotes call of --messages notes: notes/s.
    ClientStream(Stream),
    /// One CollaborativeFeed of --messages updates, echoes read concurrently: echoes/s.
    Bidi(Stream),
    /// Lock-step CollaborativeFeed round trips: p50/p99/p99.9 latency.
    PingPong {
        /// Measured round trips (after 1,000 unmeasured ones).
        #[arg(long, default_value_t = 20_000)]
        round_trips: u64,
    },
}

#[derive(clap::Args)]
struct Closed {
    /// Calls in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: u64,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    connections: u64,
    /// Measured time, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time first.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
}

#[derive(clap::Args)]
struct Stream {
    /// Messages in the one call.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    messages: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("loadgen: {message}");
    ExitCode::FAILURE
}

async fn run(args: &Args) -> loadgen::Result<String> {
    let target = &args.target;
    Ok(match &args.workload {
        Workload::Unary(closed) => {
            let run = loadgen::unary(
                &connect(target, closed.connections).await?,
                closed.concurrency as usize,
                closed.warmup,
                closed.duration,
            )
            .await?;
            format!(
                "unary: {}, {}{}",
                rate(run.calls_per_second(), "calls/s"),
                latencies(run.latency.as_ref()),
                setting(closed)
            )
        }
        Workload::ServerStream(closed) => {
            let run = loadgen::server_stream(
                &connect(target, closed.connections).await?,
                closed.concurrency as usize,
                closed.warmup,
                closed.duration,
            )
            .await?;
            let updates = run.calls_per_second() * loadgen::updates_per_call() as f64;
            format!(
                "server-stream: {}, {}, {}{}",
                rate(run.calls_per_second(), "calls/s"),
                rate(updates, "updates/s"),
                latencies(run.latency.as_ref()),
                setting(closed)
            )
        }
        Workload::ClientStream(stream) => {
            let elapsed =
                loadgen::client_stream(&Connection::open(target).await?, stream.messages).await?;
            format!(
                "client-stream: {} ({} notes in {elapsed:.2?}, summary checked)",
                rate(per_second(stream.messages, elapsed), "notes/s"),
                stream.messages
            )
        }
        Workload::Bidi(stream) => {
            let elapsed = loadgen::bidi(&Connection::open(target).await?, stream.messages).await?;
            format!(
                "bidi: {} ({} echoes in {elapsed:.2?}, each checked)",
                rate(per_second(stream.messages, elapsed), "echoes/s"),
                stream.messages
            )
        }
        Workload::PingPong { round_trips } => {
            let latency =
                loadgen::ping_pong(&Connection::open(target).await?, 1_000, *round_trips).await?;
            format!(
                "ping-pong: {} ({round_trips} round trips)",
                latencies(Some(&latency))
            )
        }
    })
}

async fn connect(target: &str, count: u64) -> loadgen::Result<Vec<Connection>> {
    let mut connections = Vec::new();
    for _ in 0..count {
        connections.push(Connection::open(target).await?);
    }
    Ok(connections)
}

fn rate(value: f64, name: &'static str) -> String {
    Unit::Rate(name).format(value)
}

fn latencies(latency: Option<&Latency>) -> String {
    let Some(l) = latency else {
        return "no latencies".to_owned();
    };
    let at = |d: Duration| Unit::Latency.format(d.as_secs_f64());
    format!("p50 {}, p99 {}, p99.9 {}", at(l.p50), at(l.p99), at(l.p999))
}

fn setting(closed: &Closed) -> String {
    format!(
        " ({} in flight over {} connection(s), {:?} after {:?} warm-up)",
        closed.concurrency, closed.connections, closed.duration, closed.warmup
    )
}
