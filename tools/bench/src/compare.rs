//! `bench compare`: starts our release server and the Python reference server
//! (both without delays, on free loopback ports), runs the same workloads
//! against each, stops them, and reports both side by side with the ratio.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use learning_messenger::client::Balancing;
use serde_json::json;

use messenger_testkit::process::ProcessStatus;
use messenger_testkit::report::{advantage, format_ratio, Figure, Table, Unit};

use crate::workloads::{Load, Workload};
use crate::{BenchError, Connections};

/// Which server a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Rust,
    Python,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Rust => "rust",
            ServerKind::Python => "python",
        }
    }
}

/// How to run a comparison.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Load for our server.
    pub load: Load,
    /// Messages per stream for the Python server (much slower; rates are compared).
    pub python_messages: u64,
    pub connections: usize,
    pub client_threads: usize,
    pub workloads: Vec<Workload>,
    /// Our `server` binary.
    pub server_bin: PathBuf,
    /// The Python interpreter (with grpcio installed) and the directory of server.py.
    pub python: PathBuf,
    pub python_dir: PathBuf,
    /// Where compare.json, compare.md and the servers' logs go.
    pub out_dir: PathBuf,
}

/// The `server` binary next to the running executable (bench and server are built together).
pub fn sibling_server_bin() -> PathBuf {
    sibling_bin("server")
}

/// The binary `name` next to the running executable (the workspace's binaries are built together).
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The project's Python reference: `.venv/bin/python3` and `python/`, under the
/// checkout `cargo run` runs from (else the one this binary was built in).
/// This crate lives in `tools/bench`.
pub fn default_python() -> (PathBuf, PathBuf) {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = manifest_dir.join("../..");
    (root.join(".venv/bin/python3"), root.join("python"))
}

/// A server process, killed when dropped so a failed run leaves none behind.
pub struct ServerProcess {
    pub kind: ServerKind,
    pub target: String,
    child: Child,
    log: PathBuf,
}

/// A port on 127.0.0.1 for a server this process starts (messenger_testkit::port).
pub fn free_port() -> Result<u16, BenchError> {
    messenger_testkit::port::reserve()
        .map_err(|e| BenchError::Setup(format!("cannot find a free port: {e}")))
}

/// Completion queues for our server under `compare`: half the cores, at least one.
fn compare_server_queues() -> usize {
    (learning_messenger::server::default_completion_queues() / 2).max(1)
}

impl ServerProcess {
    /// Starts a server of `kind` with no delays on a free port and waits until it takes connections.
    pub fn start(kind: ServerKind, options: &CompareOptions) -> Result<ServerProcess, BenchError> {
        ServerProcess::spawn(kind, options, &[])
    }

    /// Starts our `server_bin` as [`ServerProcess::start`] does, with `extra_args`;
    /// its log goes into `out_dir`.
    pub fn start_rust(
        server_bin: &Path,
        out_dir: &Path,
        extra_args: &[&str],
    ) -> Result<ServerProcess, BenchError> {
        let options = CompareOptions {
            server_bin: server_bin.to_owned(),
            out_dir: out_dir.to_owned(),
            ..CompareOptions::default()
        };
        ServerProcess::spawn(ServerKind::Rust, &options, extra_args)
    }

    fn spawn(
        kind: ServerKind,
        options: &CompareOptions,
        extra_args: &[&str],
    ) -> Result<ServerProcess, BenchError> {
        let port = free_port()?;
        let log = options.out_dir.join(format!("{}-server.log", kind.name()));
        let log_file = File::create(&log)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", log.display())))?;
        let stderr = log_file
            .try_clone()
            .map_err(|e| BenchError::Setup(format!("{}: {e}", log.display())))?;
        let mut command = match kind {
            ServerKind::Rust => {
                let mut command = Command::new(&options.server_bin);
                command.args(["--addr", &format!("127.0.0.1:{port}"), "--delay-ms", "0"]);
                // bench is a grpcio client needing cores of its own: the server gets half of them.
                command.args(["--completion-queues", &compare_server_queues().to_string()]);
                command.args(extra_args);
                // Per-call info logs would measure the terminal, not the server.
                command.env("RUST_LOG", "warn").stdout(log_file);
                command
            }
            ServerKind::Python => {
                let mut command = Command::new(&options.python);
                command
                    .args(["server.py", "--port", &port.to_string()])
                    .current_dir(&options.python_dir);
                // The lab's server prints every message: that is part of the reference as it is,
                // but its output goes nowhere so the pipe never fills.
                command
                    .env("MESSENGER_DELAY_SCALE", "0")
                    .stdout(Stdio::null());
                command
            }
        };
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                let hint = match kind {
                    ServerKind::Rust => {
                        "build it with `cargo build --release --bins`, or pass --server-bin"
                    }
                    ServerKind::Python => {
                        "run scripts/bootstrap.sh, or pass --python and --python-dir"
                    }
                };
                BenchError::Setup(format!(
                    "cannot start the {} server ({program}): {e}; {hint}",
                    kind.name()
                ))
            })?;
        let mut server = ServerProcess {
            kind,
            target: format!("127.0.0.1:{port}"),
            child,
            log,
        };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    /// Polls until a connection succeeds; fails if the process exits or time runs out.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Setup(format!(
                    "the {} server exited ({status}) before serving: {}",
                    self.kind.name(),
                    last_line(&self.log)
                )));
            }
            if Connections::open(
                &self.target,
                &Balancing::new(),
                1,
                1,
                Duration::from_secs(1),
            )
            .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Setup(format!(
                    "the {} server did not serve within {timeout:?}",
                    self.kind.name()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `count` connections to it, driven by `threads` completion-queue threads.
    pub fn connect(&self, count: usize, threads: usize) -> Result<Connections, BenchError> {
        Connections::open(
            &self.target,
            &Balancing::new(),
            count,
            threads,
            Duration::from_secs(5),
        )
    }

    /// Its memory now, as the figure of a server that has just started.
    pub fn memory_at_start(&self) -> Option<Figure> {
        self.resident_bytes()
            .map(|rss| Figure::new("server memory", "RSS at start", Unit::Memory, rss))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in bytes (Linux), if it can be read.
    pub fn resident_bytes(&self) -> Option<f64> {
        ProcessStatus::of(self.child.id()).map(|status| status.rss_bytes())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no output")
        .to_owned()
}

/// Runs every workload against one started server; the server's memory after each goes with the figures.
fn measure_server(
    server: &ServerProcess,
    options: &CompareOptions,
    load: &Load,
) -> Result<Vec<Figure>, BenchError> {
    let connections = server.connect(options.connections, options.client_threads)?;
    let mut figures: Vec<Figure> = server.memory_at_start().into_iter().collect();
    for workload in &options.workloads {
        eprintln!("  {} ...", workload.name());
        figures.extend(workload.run(&connections, load)?);
        if let Some(rss) = server.resident_bytes() {
            figures.push(Figure::new(
                "server memory",
                memory_metric(*workload),
                Unit::Memory,
                rss,
            ));
        }
    }
    Ok(figures)
}

fn memory_metric(workload: Workload) -> &'static str {
    match workload {
        Workload::Unary => "RSS after unary",
        Workload::ServerStream => "RSS after server-stream",
        Workload::ClientStream => "RSS after client-stream",
        Workload::Bidi => "RSS after bidi",
        Workload::PingPong => "RSS after ping-pong",
    }
}

/// Both servers' figures, matched up.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub rust: Vec<Figure>,
    pub python: Vec<Figure>,
}

impl Comparison {
    /// One row per figure: workload, metric, ours, Python's, and how many times better ours is.
    pub fn table(&self) -> Table {
        let mut table = Table::new(["workload", "metric", "rust", "python", "rust advantage"]);
        for ours in &self.rust {
            let theirs = self
                .python
                .iter()
                .find(|f| f.workload == ours.workload && f.metric == ours.metric);
            let (python, ratio) = match theirs {
                Some(theirs) => (
                    ours.unit.format(theirs.value),
                    advantage(ours.unit, ours.value, theirs.value),
                ),
                None => ("n/a".to_owned(), None),
            };
            table.push([
                ours.workload.to_owned(),
                ours.metric.to_owned(),
                ours.unit.format(ours.value),
                python,
                format_ratio(ratio),
            ]);
        }
        table
    }

    pub fn to_json(&self, machine: &str, options: &CompareOptions) -> serde_json::Value {
        let figures = |list: &[Figure]| list.iter().map(Figure::to_json).collect::<Vec<_>>();
        json!({
            "machine": machine,
            "settings": {
                "concurrency": options.load.concurrency,
                "connections": options.connections,
                "client_threads": options.client_threads,
                "duration_s": options.load.duration.as_secs_f64(),
                "warmup_s": options.load.warmup.as_secs_f64(),
                "messages": options.load.messages,
                "python_messages": options.python_messages,
                "rust_server_completion_queues": compare_server_queues(),
            },
            "rust": figures(&self.rust),
            "python": figures(&self.python),
        })
    }

    pub fn to_markdown(&self, machine: &str, options: &CompareOptions) -> String {
        format!(
            "Machine: {machine}. Load generator and servers share it.\n\n\
             Settings: {} calls in flight over {} connection(s), {} client thread(s), {:?} measured after {:?} warm-up; \
             streams of {} messages (Python: {}); our server on {} completion queue(s). \"rust advantage\" is how many times better ours is \
             (higher rate or lower latency).\n\n{}",
            options.load.concurrency,
            options.connections,
            options.client_threads,
            options.load.duration,
            options.load.warmup,
            options.load.messages,
            options.python_messages,
            compare_server_queues(),
            self.table().to_markdown()
        )
    }
}

/// What this machine is, in one line: CPU model, cores, kernel.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}

/// The whole comparison: both servers in turn, then the table on stdout and the files in `out_dir`.
pub fn compare(options: &CompareOptions) -> Result<Comparison, BenchError> {
    std::fs::create_dir_all(&options.out_dir).map_err(|e| {
        BenchError::Setup(format!("cannot create {}: {e}", options.out_dir.display()))
    })?;
    let python_load = Load {
        messages: options.python_messages,
        ..options.load.clone()
    };
    let mut results = Vec::new();
    for (kind, load) in [
        (ServerKind::Rust, &options.load),
        (ServerKind::Python, &python_load),
    ] {
        let server = ServerProcess::start(kind, options)?;
        eprintln!("{} server on {}:", kind.name(), server.target);
        results.push(measure_server(&server, options, load)?);
    }
    let python = results.pop().unwrap_or_default();
    let rust = results.pop().unwrap_or_default();
    let comparison = Comparison { rust, python };

    let machine = machine_description();
    let write = |name: &str, text: String| {
        let path = options.out_dir.join(name);
        File::create(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| BenchError::Setup(format!("cannot write {}: {e}", path.display())))
    };
    let json =
        serde_json::to_string_pretty(&comparison.to_json(&machine, options)).unwrap_or_default();
    write("compare.json", json + "\n")?;
    write("compare.md", comparison.to_markdown(&machine, options))?;
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_pairs_figures_and_states_the_advantage() {
        let comparison = Comparison {
            rust: vec![
                Figure::new("unary", "throughput", Unit::Rate("calls/s"), 50_000.0),
                Figure::new("unary", "p99", Unit::Latency, 0.0002),
                Figure::new("bidi", "echoes", Unit::Rate("echoes/s"), 1.0),
            ],
            python: vec![
                Figure::new("unary", "p99", Unit::Latency, 0.004),
                Figure::new("unary", "throughput", Unit::Rate("calls/s"), 2_000.0),
            ],
        };
        let table = comparison.table();
        assert_eq!(
            table.rows[0],
            [
                "unary",
                "throughput",
                "50.0k calls/s",
                "2000 calls/s",
                "25.0x"
            ]
        );
        assert_eq!(
            table.rows[1],
            ["unary", "p99", "200.0 µs", "4.00 ms", "20.0x"]
        );
        assert_eq!(
            table.rows[2],
            ["bidi", "echoes", "1 echoes/s", "n/a", "n/a"]
        );
    }

    #[test]
    fn free_ports_are_real_ports() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn the_machine_is_described() {
        assert!(machine_description().contains("cores"));
    }
}
