//! Shared by the integration tests: real servers on free loopback ports.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use grpcio::{GrpcSlice, Marshaller, MessageReader, Method, MethodType, RpcStatus};
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::proto::messenger::{FeedUpdate, ResearchNote};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::server::{self, RunningServer, ServerConfig};

/// A server in this process on 127.0.0.1 at a free port, stopped on drop.
pub(crate) struct TestServer {
    running: Option<RunningServer>,
    pub(crate) target: String,
}

impl TestServer {
    /// No delays: tests should not wait for the lab's simulated latency.
    pub(crate) fn start() -> TestServer {
        TestServer::with_config(ServerConfig {
            delay: Duration::ZERO,
            ..test_config()
        })
    }

    pub(crate) fn with_config(config: ServerConfig) -> TestServer {
        let running = server::start(&config).expect("server starts");
        let target = format!("127.0.0.1:{}", running.port());
        TestServer {
            running: Some(running),
            target,
        }
    }

    pub(crate) fn client(&self) -> LearningMessengerClient {
        client::connect(&ConnectOptions::new(self.target.clone())).expect("client connects")
    }

    pub(crate) fn running(&self) -> &RunningServer {
        self.running.as_ref().unwrap()
    }

    pub(crate) fn stop(mut self, grace: Duration) -> server::Stopped {
        self.running.take().unwrap().shutdown(grace)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::ZERO);
        }
    }
}

pub(crate) fn test_config() -> ServerConfig {
    ServerConfig {
        addr: "127.0.0.1:0".to_owned(),
        completion_queues: 2,
        ..ServerConfig::default()
    }
}

#[allow(clippy::ptr_arg)] // grpcio's SerializeFn<Vec<u8>> takes &Vec<u8>
fn raw_ser(bytes: &Vec<u8>, buf: &mut GrpcSlice) -> grpcio::Result<()> {
    *buf = GrpcSlice::from(bytes.clone());
    Ok(())
}

fn raw_de(mut reader: MessageReader) -> grpcio::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| grpcio::Error::Codec(Box::new(e)))?;
    Ok(bytes)
}

/// A method that sends and receives raw bytes: for malformed messages and unknown names.
pub(crate) fn raw_method(name: &str, ty: MethodType) -> Method<Vec<u8>, Vec<u8>> {
    Method {
        ty,
        name: Box::leak(name.to_owned().into_boxed_str()),
        req_mar: Marshaller {
            ser: raw_ser,
            de: raw_de,
        },
        resp_mar: Marshaller {
            ser: raw_ser,
            de: raw_de,
        },
    }
}

pub(crate) use messenger_lab::clock::is_clock_time;
pub(crate) use messenger_testkit::transcript::mask_times;

/// What the lab's client.py prints, timestamps masked.
pub(crate) const LAB_TRANSCRIPT: &str = "\
--- Unary Request ---
Server Response: System ready for research. Status check OK. (Active: True)

--- Server Streaming (Real-time updates) ---
[--:--:--] Progress 25%: Searching for research papers on gRPC Protocols...
[--:--:--] Progress 50%: Analyzing core principles of gRPC Protocols...
[--:--:--] Progress 75%: Synthesizing key gRPC use cases...
[--:--:--] Progress 100%: Finalizing the consolidated report.

--- Client Streaming (Uploading research notes) ---
Server Summary: Processed 4 notes. Key takeaway: Note 4: Typed interface contracts (Total 4)

--- Bi-directional Streaming (Collaborative Feed) ---
 [Feed Update] System: Acknowledged Engineer's update: Initializing system...
 [Feed Update] System: Acknowledged Lead's update: Monitoring data flow...
 [Feed Update] System: Acknowledged QA's update: Verifying latency...
";

pub(crate) fn note(text: &str) -> ResearchNote {
    ResearchNote {
        text: text.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn feed(user: &str, message: &str) -> FeedUpdate {
    FeedUpdate {
        user: user.to_owned(),
        message: message.to_owned(),
        ..Default::default()
    }
}

/// The status of a call that should have failed.
pub(crate) fn failure<T: std::fmt::Debug>(result: grpcio::Result<T>) -> RpcStatus {
    match result {
        Err(grpcio::Error::RpcFailure(status)) => status,
        other => panic!("expected a failed call, got {other:?}"),
    }
}

/// How long a test waits for an event it expects (a status, a line, a
/// count): long enough for a loaded machine (docs/testing.md),
/// and spent in full only by a test that fails.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Polls `done` every 10 ms until it holds or `timeout` passes; says whether it held.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) use messenger_testkit::process::ProcessStatus;

/// The status of a process that must be running.
pub(crate) fn status_of(pid: u32) -> ProcessStatus {
    ProcessStatus::of(pid).unwrap_or_else(|| panic!("no /proc/{pid}/status"))
}

/// Samples a process's status every 50 ms in a thread: the peaks over a stretch of work.
pub(crate) struct PeakWatcher(messenger_testkit::process::PeakWatcher);

impl PeakWatcher {
    /// Watches `pid`, which must be running.
    pub(crate) fn start(pid: u32) -> PeakWatcher {
        status_of(pid);
        PeakWatcher(messenger_testkit::process::PeakWatcher::start(pid))
    }

    /// The highest RSS and thread count seen.
    pub(crate) fn stop(self) -> ProcessStatus {
        self.0.stop().expect("the watched process was running")
    }
}

/// The `server` binary under test.
pub(crate) const SERVER_BIN: &str = env!("CARGO_BIN_EXE_server");

/// `wiretap`, built beside `server` by messenger-wire.
pub(crate) fn wiretap_bin() -> std::path::PathBuf {
    built_beside_server("wiretap", "messenger-wire")
}

/// `webgate`, built beside `server` by messenger-web.
pub(crate) fn webgate_bin() -> std::path::PathBuf {
    built_beside_server("webgate", "messenger-web")
}

/// Another package's binary `name`, built beside `server` (cargo gives no
/// CARGO_BIN_EXE_ for it; scripts/test.sh builds every binary).
fn built_beside_server(name: &str, package: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(SERVER_BIN).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build -p {package} --bin {name}",
        path.display()
    );
    path
}

/// The `server` binary running as a child process on 127.0.0.1 at a free
/// port, its stderr log collected; killed on drop if still running.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) target: String,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `server --addr 127.0.0.1:0 ARGS` (default log level) and waits for
    /// the line that names its port.
    pub(crate) fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_at("127.0.0.1:0", args)
    }

    /// Starts `server --addr ADDR ARGS` (ADDR a loopback `HOST:PORT`, such as
    /// 127.0.0.2:PORT for one replica of a fleet) and waits for its port.
    pub(crate) fn start_at(addr: &str, args: &[&str]) -> ServerProcess {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .to_owned();
        let mut child = Command::new(SERVER_BIN)
            .args(["--addr", addr])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("DEBUG_SERVER_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log_sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("running on port ")
                    .nth(1)
                    .and_then(|rest| rest.split("...").next())
                {
                    let _ = port_tx.send(port.parse::<u16>().expect("port number"));
                }
                let mut log = log_sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not report its port; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        ServerProcess {
            child,
            target: format!("{host}:{port}"),
            log,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn client(&self) -> LearningMessengerClient {
        client::connect(&ConnectOptions::new(self.target.clone())).expect("client connects")
    }

    pub(crate) fn status(&self) -> ProcessStatus {
        status_of(self.pid())
    }

    /// Sends a signal by name (TERM, INT) with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// Everything the server logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the server logs `text`, waiting up to [`WAIT`] for it: its
    /// lines reach stderr in batches, a moment after what they tell of.
    pub(crate) fn logged(&self, text: &str) -> bool {
        wait_until(WAIT, || self.log().contains(text))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the `server` binary with `args` to completion (killed after `timeout`).
pub(crate) fn run_server_binary(args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(SERVER_BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server binary starts");
    let exited = wait_until(timeout, || child.try_wait().expect("try_wait").is_some());
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("server output");
    assert!(
        exited,
        "server {args:?} still running after {timeout:?}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A port on 127.0.0.1 for a child process to listen on, or where nobody
/// listens: no other test takes it meanwhile (messenger_testkit::port).
pub(crate) fn free_port() -> u16 {
    messenger_testkit::port::reserve().expect("a free port on 127.0.0.1")
}

/// Any program as a child process, its stdout and stderr together in a
/// temporary log file; killed on drop if still running.
pub(crate) struct ChildGuard {
    child: Child,
    name: String,
    log: tempfile::NamedTempFile,
}

impl ChildGuard {
    /// Spawns `command` (stdin closed, output to the log); `name` is for messages.
    pub(crate) fn spawn(name: &str, command: Command) -> ChildGuard {
        ChildGuard::start(name, command, Stdio::null())
    }

    /// The same, its stdin a pipe that [`ChildGuard::write_line`] writes to.
    pub(crate) fn spawn_with_input(name: &str, command: Command) -> ChildGuard {
        ChildGuard::start(name, command, Stdio::piped())
    }

    fn start(name: &str, mut command: Command, stdin: Stdio) -> ChildGuard {
        let log = tempfile::NamedTempFile::new().expect("temporary log file");
        let stdout = log.reopen().expect("log file for stdout");
        let stderr = log.reopen().expect("log file for stderr");
        let child = command
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Writes `line` to the child's input (spawned with [`ChildGuard::spawn_with_input`]).
    pub(crate) fn write_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("spawned with input");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{} stopped reading its input: {e}", self.name));
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_else(|e| format!("(unreadable log: {e})"))
    }

    /// Waits up to `timeout` until 127.0.0.1:`port` accepts TCP connections;
    /// panics with the child's log if it exits first or the time runs out.
    pub(crate) fn wait_for_port(&mut self, port: u16, timeout: Duration) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "{} (pid {}) exited ({status}) before listening on {addr}; its log:\n{}",
                    self.name,
                    self.pid(),
                    self.log()
                );
            }
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{} (pid {}) not accepting connections on {addr} after {timeout:?}; its log:\n{}",
                    self.name,
                    self.pid(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a program run by [`run_bounded`] did: `status` is None if it was killed
/// for running past its time.
pub(crate) struct BoundedOutput {
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Each line `pipe` gives, sent on as it comes by a thread of its own.
pub(crate) fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    lines
}

/// What `pipe` gives, line by line, gathered by a thread of its own.
pub(crate) fn gathered(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let gathering = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            gathering.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    text
}

impl BoundedOutput {
    /// Its stdout's lines, each a JSON report, once its exit status passes
    /// `ran` (else it panics with what `what` printed).
    pub(crate) fn json_lines(
        &self,
        what: &str,
        ran: impl FnOnce(ExitStatus) -> bool,
    ) -> Vec<serde_json::Value> {
        assert!(
            self.status.is_some_and(ran),
            "{what}: {:?}\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
            })
            .collect()
    }
}

/// Runs `command` (stdin closed) to completion, killing it after `timeout`;
/// its output is read while it runs, so a chatty program cannot block on a full pipe.
pub(crate) fn run_bounded(mut command: Command, timeout: Duration) -> BoundedOutput {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    BoundedOutput {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The project's root (the root package's folder), read when run.
pub(crate) fn project_root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo and nextest set CARGO_MANIFEST_DIR for tests")
        .into()
}

/// A program of the project's `.venv` (python3, grpcurl), which
/// `scripts/bootstrap.sh` installs; the test fails saying so if it is missing.
pub(crate) fn venv_program(name: &str) -> std::path::PathBuf {
    let path = project_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/bootstrap.sh`",
        path.display()
    );
    path
}

/// Generates the Python reference's stubs into `dir`/protos, for a test that
/// runs Python from `dir` (not python/protos, which another test's Python
/// may be reading at the same time).
pub(crate) fn python_stubs(dir: &std::path::Path) {
    let python = project_root().join("python");
    let mut command = Command::new(venv_program("python3"));
    command
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&python)
        .arg(format!("--python_out={}", dir.display()))
        .arg(format!("--grpc_python_out={}", dir.display()))
        .arg("protos/messenger.proto")
        .current_dir(&python);
    let output = run_bounded(command, Duration::from_secs(120));
    assert!(
        output.status.is_some_and(|s| s.success()),
        "python stubs: {}",
        output.stderr
    );
    std::fs::write(dir.join("protos/__init__.py"), "").unwrap();
}

/// The page at `http://127.0.0.1:PORT/metrics`: its status line, content type and body.
pub(crate) fn scrape(port: u16) -> (String, String, String) {
    let mut http =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics port answers");
    http.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}

/// python/client.py with `args`, run from `stubs` (see [`python_stubs`]),
/// where it finds `protos`: run_path leaves sys.path alone, so `protos` is
/// found in the working directory, not next to client.py.
pub(crate) fn python_client_command(stubs: &std::path::Path, args: &[&str]) -> Command {
    let script = "import runpy, sys; sys.argv = sys.argv[1:]; \
                  runpy.run_path(sys.argv[0], run_name='__main__')";
    let mut command = Command::new(venv_program("python3"));
    command
        .args(["-c", script])
        .arg(project_root().join("python/client.py"))
        .args(args)
        .current_dir(stubs);
    command
}

/// web/, where the Node scripts resolve their packages.
pub(crate) fn web_dir() -> std::path::PathBuf {
    let dir = project_root().join("web");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "{}/node_modules is missing: run `bash scripts/bootstrap.sh`",
        dir.display()
    );
    dir
}

/// A Node script of web/tests/ with `args`.
pub(crate) fn node(script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("node");
    command
        .current_dir(web_dir())
        .arg(std::path::Path::new("tests").join(script))
        .args(args);
    command
}

/// Debian's redis-server, which scripts/bootstrap.sh installs.
const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A real redis-server on a free loopback port, its files in a temporary
/// directory and nothing saved unless a test asks (`SAVE`: a restart then
/// comes back with that snapshot); stopped on drop.
pub(crate) struct RedisServer {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    /// Its flags beyond the port and its directory, and how redis-cli reaches it.
    flags: Vec<String>,
    cli: Vec<String>,
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        RedisServer::start_with(|port| (vec!["--port".into(), port.to_string()], vec![]))
    }

    /// A redis-server with the flags `setup` gives for its port, and the
    /// flags redis-cli needs to reach it (a password, TLS).
    pub(crate) fn start_with(setup: impl FnOnce(u16) -> (Vec<String>, Vec<String>)) -> RedisServer {
        assert!(
            std::path::Path::new(REDIS_SERVER).exists(),
            "{REDIS_SERVER} is missing: run `bash scripts/bootstrap.sh` (it installs redis-server)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let (flags, cli) = setup(port);
        let child = RedisServer::spawn(port, dir.path(), &flags, &cli);
        RedisServer {
            child,
            port,
            dir,
            flags,
            cli,
        }
    }

    fn spawn(port: u16, dir: &std::path::Path, flags: &[String], cli: &[String]) -> Child {
        let mut child = Command::new(REDIS_SERVER)
            .args(flags)
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let answers = wait_until(Duration::from_secs(30), || {
            let mut ping = Command::new("redis-cli");
            ping.args(["-p", &port.to_string()]).args(cli).arg("PING");
            ping.stdin(Stdio::null())
                .output()
                .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "PONG")
        });
        if !answers {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server on port {port} did not answer PING");
        }
        child
    }

    /// `redis://127.0.0.1:PORT`, for `server --rooms`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and starts it again on the same port, empty: its data is lost.
    pub(crate) fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        self.child = RedisServer::spawn(self.port, self.dir.path(), &self.flags, &self.cli);
    }

    /// Writes a snapshot of its data now (`SAVE`).
    pub(crate) fn save(&self) {
        let reply = redis_command(self.port, &["SAVE"]).expect("SAVE answered");
        assert_eq!(reply, "+OK", "SAVE");
    }

    /// Kills it (SIGKILL: nothing more is saved) and starts it again on the
    /// same port from its last snapshot: what came after it is lost.
    pub(crate) fn restart_from_snapshot(&mut self) {
        assert!(
            self.dir.path().join("dump.rdb").exists(),
            "no snapshot: call save() first"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = RedisServer::spawn(self.port, self.dir.path(), &self.flags, &self.cli);
    }

    /// SIGSTOP: it keeps its connections but answers nothing.
    pub(crate) fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub(crate) fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} redis-server failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Redis Cluster on loopback: `masters` redis-server processes with
/// `--cluster-enabled yes`, joined by `redis-cli --cluster create`, and any
/// replicas added later. Each node keeps its cluster config in its own
/// directory (a node restarted keeps its slots) but no data.
pub(crate) struct RedisCluster {
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    child: Child,
    port: u16,
    /// The cluster bus's port (else PORT + 10000, which nobody reserved).
    bus: u16,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    pub(crate) fn start(masters: usize) -> RedisCluster {
        let nodes: Vec<ClusterNode> = (0..masters).map(|_| ClusterNode::start()).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let created = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node says the cluster is ok (all slots served).
    pub(crate) fn wait_ok(&self) {
        for node in &self.nodes {
            let ok = wait_until(Duration::from_secs(60), || {
                redis_info(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
            assert!(ok, "node {} never saw the cluster ok", node.port);
        }
    }

    /// `redis+cluster://` with every master as a startup node.
    pub(crate) fn url(&self) -> String {
        let nodes_named: Vec<String> = self
            .masters()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", nodes_named.join(","))
    }

    /// The ports of the nodes that are masters now.
    pub(crate) fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|node| node.port)
            .filter(|port| redis_info(*port, &["ROLE"]).starts_with("master"))
            .collect()
    }

    /// The node (port) whose sharded channels include `channel`.
    pub(crate) fn node_with_channel(&self, channel: &str) -> Option<u16> {
        self.nodes.iter().map(|node| node.port).find(|port| {
            redis_info(*port, &["PUBSUB", "SHARDCHANNELS"])
                .lines()
                .any(|line| line == channel)
        })
    }

    /// Kills the node on `port` and starts it again, empty but with its
    /// cluster config (its slots); waits until the cluster is ok again.
    pub(crate) fn restart_empty(&mut self, port: u16) {
        let node = self.node(port);
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.child = ClusterNode::spawn(node.port, node.bus, node.dir.path());
        self.wait_ok();
    }

    /// Adds a replica of the master on `master`; returns its port.
    pub(crate) fn add_replica(&mut self, master: u16) -> u16 {
        let replica = ClusterNode::start();
        let port = replica.port;
        let id = redis_info(master, &["CLUSTER", "MYID"]);
        let added = Command::new("redis-cli")
            .args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("127.0.0.1:{master}"))
            .args(["--cluster-slave", "--cluster-master-id", id.trim()])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            added.status.success(),
            "redis-cli --cluster add-node failed: {}",
            String::from_utf8_lossy(&added.stdout)
        );
        self.nodes.push(replica);
        let synced = wait_until(Duration::from_secs(60), || {
            redis_info(port, &["INFO", "replication"]).contains("master_link_status:up")
        });
        assert!(synced, "the replica on {port} never synced with {master}");
        self.wait_ok();
        port
    }

    /// `CLUSTER FAILOVER [options]` on the replica on `replica`: it becomes
    /// the master of its shard (and the old master, if alive, its replica);
    /// waits until it is so and the cluster is ok.
    pub(crate) fn fail_over_to(&self, replica: u16, options: &[&str]) {
        let mut command = vec!["CLUSTER", "FAILOVER"];
        command.extend(options);
        let reply = redis_command(replica, &command).expect("the replica answers");
        assert_eq!(reply, "+OK");
        let promoted = wait_until(Duration::from_secs(60), || {
            redis_info(replica, &["ROLE"]).starts_with("master")
        });
        assert!(promoted, "the replica on {replica} was not promoted");
        self.wait_ok();
    }

    /// Waits until the replica on `replica` has all that its master on
    /// `master` has written (their replication offsets are equal).
    pub(crate) fn wait_replicated(&self, master: u16, replica: u16) {
        let offset = |port: u16| {
            redis_info(port, &["INFO", "replication"])
                .lines()
                .find_map(|line| {
                    line.trim()
                        .strip_prefix("master_repl_offset:")
                        .map(str::to_owned)
                })
        };
        let caught_up = wait_until(Duration::from_secs(60), || {
            offset(master).is_some() && offset(master) == offset(replica)
        });
        assert!(
            caught_up,
            "the replica on {replica} never caught up with {master}"
        );
    }

    /// Kills the node on `port` (SIGKILL: it says nothing to anyone); it is
    /// no longer one of the nodes this cluster waits for.
    pub(crate) fn kill(&mut self, port: u16) {
        let at = self
            .nodes
            .iter()
            .position(|node| node.port == port)
            .expect("a node of the cluster");
        let mut node = self.nodes.remove(at);
        let _ = node.child.kill();
        let _ = node.child.wait();
    }

    /// Moves the hash slot of `key` to the master on `to`, its keys with it
    /// (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), as
    /// `redis-cli --cluster reshard` does; returns the master it left.
    pub(crate) fn move_slot_of(&self, key: &str, to: u16) -> u16 {
        let slot = redis_info(to, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .to_owned();
        let from = self
            .masters()
            .into_iter()
            .find(|port| redis_info(*port, &["CLUSTER", "COUNTKEYSINSLOT", &slot]).trim() != "0")
            .expect("a master holds the slot's keys");
        assert_ne!(from, to, "the slot is on {to} already");
        let id = |port: u16| redis_info(port, &["CLUSTER", "MYID"]).trim().to_owned();
        let (from_id, to_id) = (id(from), id(to));
        let ok = |port: u16, args: &[&str]| {
            let reply = redis_info(port, args);
            assert_eq!(reply.trim(), "OK", "{args:?} on {port}");
        };
        ok(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        ok(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let keys = redis_info(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
        if !keys.is_empty() {
            let port = to.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys.iter());
            ok(from, &migrate);
        }
        for port in self.masters() {
            ok(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
        self.wait_ok();
        from
    }

    fn node(&mut self, port: u16) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of the cluster")
    }
}

impl ClusterNode {
    fn start() -> ClusterNode {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (port, bus) = (free_port(), free_port());
        let child = ClusterNode::spawn(port, bus, dir.path());
        ClusterNode {
            child,
            port,
            bus,
            dir,
        }
    }

    fn spawn(port: u16, bus: u16, dir: &std::path::Path) -> Child {
        let flags = [
            "--port",
            &port.to_string(),
            "--cluster-port",
            &bus.to_string(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ]
        .map(str::to_owned);
        RedisServer::spawn(port, dir, &flags, &[])
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// `redis-cli -p PORT ARGS...`: the whole reply, one item a line ('' if it fails).
pub(crate) fn redis_info(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// One Redis command over RESP; the first line of its reply.
pub(crate) fn redis_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// Fails if `text` (what view `what` showed) holds `secret` in any form a
/// view could print it: as it is, in hex (either case), as decimal bytes
/// (Rust's Debug), or in base64 (standard or URL-safe, any alignment). Each
/// is searched by pieces of 12 bytes, so a cut or partial copy is found too.
pub(crate) fn assert_not_shown(what: &str, text: &str, secret: &[u8]) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    for piece in secret.windows(12) {
        let hex: String = piece.iter().map(|b| format!("{b:02x}")).collect();
        let decimal = format!("{piece:?}");
        let mut forms = vec![
            String::from_utf8_lossy(piece).into_owned(),
            hex.to_uppercase(),
            hex,
            decimal[1..decimal.len() - 1].to_owned(),
        ];
        // Every offset is a piece: one in three lines up with the base64
        // around it, and the middle of its encoding is then found as it is.
        for encoded in [STANDARD.encode(piece), URL_SAFE_NO_PAD.encode(piece)] {
            forms.push(encoded[4..encoded.len() - 4].to_owned());
        }
        for form in forms {
            if let Some(line) = text.lines().find(|line| line.contains(&form)) {
                panic!("{what} shows {form:?}, a piece of a credential, in:\n{line}");
            }
        }
    }
}
