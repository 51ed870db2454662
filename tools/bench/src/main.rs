//! `bench`: drives a LearningMessenger server and reports checked figures;
//! `bench compare` does so against our server and the Python reference.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use learning_messenger::client::connect::MAX_ATTEMPTS_LIMIT;
use learning_messenger::client::{Balancing, LbPolicy};
use messenger_bench::compare::{self, CompareOptions};
use messenger_bench::rooms::{self, RoomOptions};
use messenger_bench::workloads::{Load, Workload};
use messenger_bench::{codec, tap, BenchError};
use messenger_testkit::report::{self, parse_duration, Unit};

#[derive(Parser)]
#[command(
    about = "Benchmarks a LearningMessenger server: every answer is checked, figures after a warm-up"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Closed-loop GetLearningStatus: calls/s, p50/p99/p99.9 latency.
    Unary(TargetArgs),
    /// Closed-loop StreamLearnings (start the server with --delay-ms 0): calls/s, messages/s.
    ServerStream(TargetArgs),
    /// One SubmitResearchNotes call of --messages notes: notes/s.
    ClientStream(TargetArgs),
    /// One CollaborativeFeed of --messages updates, echoes read concurrently: echoes/s.
    Bidi(TargetArgs),
    /// Lock-step CollaborativeFeed round trips: p50/p99/p99.9 latency.
    PingPong(TargetArgs),
    /// Every workload above, in turn.
    All(TargetArgs),
    /// Wire size and encode/decode time per message: protobuf binary vs JSON.
    Codec {
        /// Encodes and decodes timed per message and encoding.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
    },
    /// Starts our server and the Python reference (both delay 0), runs every workload against each.
    Compare(CompareArgs),
    /// What the wire view costs: ping-pong and client-stream direct, then through `wiretap --json` (to /dev/null).
    Wiretap(WiretapArgs),
    /// Starts our server and runs a feed room of each --sizes, everyone talking at once:
    /// deliveries/s, send-to-delivery p50/p99, the server's peak memory.
    Rooms(RoomArgs),
}

#[derive(Args)]
struct WiretapArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The `wiretap` binary (default: the one next to this one).
    #[arg(long)]
    wiretap_bin: Option<PathBuf>,
}

#[derive(Args)]
struct RoomArgs {
    /// Participants of each room, measured one room after the other.
    #[arg(long, value_delimiter = ',', default_value = "2,10,100", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=256))]
    sizes: Vec<usize>,
    /// Unacknowledged updates per participant [default: 256 / size, at least 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    in_flight: Option<u64>,
    /// Measured time of each room (500ms, 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// HTTP/2 connections the participants are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    connections: u64,
    /// The bench client's completion-queue threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    client_threads: u64,
    /// Our server binary (default: `server` next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Where the servers' logs are written.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Also run the rooms over two replicas sharing this Redis (redis://HOST:PORT[/DB], or a cluster: redis+cluster://HOST:PORT,...), closed loop and then open loop at half the rate reached; repeat it to measure several stores in one run.
    #[arg(long, value_name = "URL", value_parser = redis_url)]
    rooms: Vec<String>,
}

/// A room store the server accepts, and only Redis (memory is the baseline).
fn redis_url(text: &str) -> Result<String, String> {
    match text.parse::<learning_messenger::server::RoomStoreAddr>()? {
        learning_messenger::server::RoomStoreAddr::Redis(_) => Ok(text.to_owned()),
        learning_messenger::server::RoomStoreAddr::Memory => {
            Err("the memory store is measured anyway: give a redis:// URL".to_owned())
        }
    }
}

#[derive(Args)]
struct LoadArgs {
    /// Calls in flight at once (unary, server-stream).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    connections: u64,
    /// The bench client's completion-queue threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    client_threads: u64,
    /// Measured time of unary, server-stream and ping-pong (500ms, 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Messages in the client-stream and bidi calls.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    messages: u64,
}

#[derive(Args)]
struct TargetArgs {
    /// The server, in gRPC's name syntax: HOST:PORT, dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT... (a fleet) or unix:PATH.
    #[arg(long, default_value = "127.0.0.1:50051")]
    target: String,
    /// How each connection's calls are spread over the target's addresses: pick_first or round_robin.
    #[arg(long, default_value_t = LbPolicy::PickFirst)]
    lb: LbPolicy,
    /// Attempts of each unary call on UNAVAILABLE (1 = no retries), as the client's --max-attempts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_ATTEMPTS_LIMIT as i64))]
    max_attempts: u32,
    /// A whole gRPC service config (JSON) instead of the one --lb and --max-attempts build.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["lb", "max_attempts"])]
    service_config: Option<String>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Messages per stream for the Python server, which is far slower (rates are compared).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    python_messages: u64,
    /// Where compare.json, compare.md and the servers' logs are written.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Our server binary (default: `server` next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Python interpreter with grpcio (default: the project's .venv).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Directory of the reference server.py (default: the project's python/).
    #[arg(long)]
    python_dir: Option<PathBuf>,
}

impl LoadArgs {
    fn load(&self) -> Load {
        Load {
            concurrency: self.concurrency as usize,
            duration: self.duration,
            warmup: self.warmup,
            messages: self.messages,
        }
    }
}

fn run(command: Command) -> Result<(), BenchError> {
    let (target, workloads) = match command {
        Command::Unary(t) => (t, vec![Workload::Unary]),
        Command::ServerStream(t) => (t, vec![Workload::ServerStream]),
        Command::ClientStream(t) => (t, vec![Workload::ClientStream]),
        Command::Bidi(t) => (t, vec![Workload::Bidi]),
        Command::PingPong(t) => (t, vec![Workload::PingPong]),
        Command::All(t) => (t, Workload::ALL.to_vec()),
        Command::Codec { iterations } => {
            print!(
                "{}",
                codec::table(&codec::measure_all(iterations)?).to_text()
            );
            return Ok(());
        }
        Command::Wiretap(args) => {
            let options = tap::TapBench {
                target: args.target.target.clone(),
                load: args.target.load.load(),
                client_threads: args.target.load.client_threads as usize,
                wiretap_bin: args
                    .wiretap_bin
                    .unwrap_or_else(|| compare::sibling_bin("wiretap")),
            };
            print!("{}", tap::run(&options)?.table().to_text());
            return Ok(());
        }
        Command::Rooms(args) => {
            let options = RoomOptions {
                sizes: args.sizes,
                in_flight: args.in_flight,
                warmup: args.warmup,
                duration: args.duration,
                connections: args.connections as usize,
                client_threads: args.client_threads as usize,
                server_bin: args.server_bin.unwrap_or_else(compare::sibling_server_bin),
                out_dir: args.out_dir,
                redis: args.rooms,
            };
            print!(
                "{}",
                report::figures_table(&rooms::run(&options)?).to_text()
            );
            return Ok(());
        }
        Command::Compare(args) => {
            let (python, python_dir) = compare::default_python();
            let options = CompareOptions {
                load: args.load.load(),
                python_messages: args.python_messages,
                connections: args.load.connections as usize,
                client_threads: args.load.client_threads as usize,
                workloads: Workload::ALL.to_vec(),
                server_bin: args.server_bin.unwrap_or_else(compare::sibling_server_bin),
                python: args.python.unwrap_or(python),
                python_dir: args.python_dir.unwrap_or(python_dir),
                out_dir: args.out_dir,
            };
            let comparison = compare::compare(&options)?;
            print!("{}", comparison.table().to_text());
            println!(
                "(written to {}/compare.json and compare.md)",
                options.out_dir.display()
            );
            return Ok(());
        }
    };
    let load = &target.load;
    let balancing = Balancing {
        lb: target.lb,
        max_attempts: target.max_attempts,
        service_config: target.service_config.clone(),
    };
    let figures = messenger_bench::run(
        &target.target,
        &balancing,
        load.connections as usize,
        load.client_threads as usize,
        &workloads,
        &load.load(),
    )?;
    print!("{}", report::figures_table(&figures).to_text());
    let closed_loop = workloads
        .iter()
        .any(|w| matches!(w, Workload::Unary | Workload::ServerStream));
    if closed_loop && !figures.iter().any(|f| matches!(f.unit, Unit::Count(_))) {
        println!("(no call failed)");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
