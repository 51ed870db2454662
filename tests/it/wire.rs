//! The wire view: `client --show-wire` and the `wiretap` process in front of
//! real servers, with our client and the Python reference client; a million
//! notes through the tap, byte for byte, in flat memory; malformed
//! traffic, one clear line each while the tap goes on serving; and the web
//! view's events (`wiretap --web`, `client --show-wire=web`) as a program
//! reads them, a page that never reads included.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use learning_messenger::server::ServerConfig;
use serde_json::{json, Value};

use crate::support::{
    free_port, is_clock_time, mask_times, node, project_root, python_stubs, run_bounded, status_of,
    test_config, venv_program, wait_until, wiretap_bin, BoundedOutput, PeakWatcher, ServerProcess,
    TestServer, LAB_TRANSCRIPT, SERVER_BIN,
};

const CLIENT: &str = env!("CARGO_BIN_EXE_client");
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: u64 = 1024;

/// The `wiretap` binary on a free port of 127.0.0.1, its `--json` records
/// read as they come (or its output kept as it is); killed on drop.
pub(crate) struct TapProcess {
    child: Child,
    pub(crate) addr: String,
    /// With `--web`: the page's `HOST:PORT`.
    pub(crate) web: Option<String>,
    records: Arc<Mutex<Vec<Value>>>,
    /// What it printed on stdout, as it is ([`TapProcess::start_printing`]).
    output: Arc<Mutex<String>>,
    messages: Arc<Mutex<u64>>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl TapProcess {
    /// `keep_messages`: keep message records too (a big upload counts them only).
    fn start(upstream: &str, keep_messages: bool) -> TapProcess {
        TapProcess::start_with(upstream, keep_messages, &[])
    }

    /// With the web view on a free port too.
    fn start_web(upstream: &str, keep_messages: bool) -> TapProcess {
        TapProcess::start_with(upstream, keep_messages, &["--web", "127.0.0.1:0"])
    }

    fn start_with(upstream: &str, keep_messages: bool, args: &[&str]) -> TapProcess {
        let args = [&["--json"], args].concat();
        TapProcess::spawn(upstream, Some(keep_messages), &args)
    }

    /// With `args` (a format, `--bytes`, `--web`...), its stdout kept as it is.
    pub(crate) fn start_printing(upstream: &str, args: &[&str]) -> TapProcess {
        TapProcess::spawn(upstream, None, args)
    }

    /// `keep_messages`: None to keep stdout as text, not records.
    fn spawn(upstream: &str, keep_messages: Option<bool>, args: &[&str]) -> TapProcess {
        let mut child = Command::new(wiretap_bin())
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wiretap starts");
        let records = Arc::new(Mutex::new(Vec::new()));
        let messages = Arc::new(Mutex::new(0));
        let output = Arc::new(Mutex::new(String::new()));
        let (sink, count, text) = (records.clone(), messages.clone(), output.clone());
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let reader = std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let Some(keep_messages) = keep_messages else {
                    text.lock().unwrap().push_str(&(line + "\n"));
                    continue;
                };
                let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("wiretap printed a line that is not JSON ({e}): {line}")
                });
                if record["event"] == "message" {
                    *count.lock().unwrap() += 1;
                    if !keep_messages {
                        continue;
                    }
                }
                sink.lock().unwrap().push(record);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let log = stderr.clone();
        let errors = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in errors.lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("wiretap: listening on ") {
                    let _ = addr_tx.send(rest.split(',').next().unwrap_or_default().to_owned());
                }
                if let Some(rest) = line.strip_prefix("wiretap: the web view is at http://") {
                    let _ = addr_tx.send(rest.trim_end_matches('/').to_owned());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut said = || {
            addr_rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!(
                        "wiretap did not say where it listens: {}",
                        stderr.lock().unwrap()
                    )
                })
        };
        let addr = said();
        let web = args.contains(&"--web").then(&mut said);
        TapProcess {
            child,
            addr,
            web,
            records,
            output,
            messages,
            stderr,
            reader: Some(reader),
        }
    }

    fn records(&self) -> Vec<Value> {
        self.records.lock().unwrap().clone()
    }

    /// What it printed on stdout so far ([`TapProcess::start_printing`]).
    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// What it printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until connection `conn`'s summary is printed; returns it.
    fn wait_closed(&self, conn: u64) -> Value {
        let mut summary = None;
        let closed = wait_until(Duration::from_secs(30), || {
            summary = self
                .records()
                .into_iter()
                .find(|r| r["event"] == "close" && r["conn"] == conn);
            summary.is_some()
        });
        assert!(
            closed,
            "no summary of connection {conn}; records: {:#?}",
            self.records()
        );
        summary.unwrap()
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "wiretap exited; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
        assert!(!self.stderr.lock().unwrap().contains("panicked"));
    }
}

impl Drop for TapProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Records of one connection's one stream, found by its request's `:path`.
fn stream_of<'a>(records: &'a [Value], path: &str) -> Vec<&'a Value> {
    let start = records
        .iter()
        .find(|r| r["role"] == "request" && header(r, ":path") == Some(path))
        .unwrap_or_else(|| panic!("no request for {path} in {records:#?}"));
    records
        .iter()
        .filter(|r| r["conn"] == start["conn"] && r["stream"] == start["stream"])
        .collect()
}

fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

/// The records of a stream in the order a call makes them: request headers
/// first, each message after a DATA frame, response headers before the
/// answers, and trailers last, with `grpc-status` OK. Returns the messages
/// sent each way, as protobuf JSON.
fn check_call(
    records: &[Value],
    path: &str,
    request_type: &str,
    response_type: &str,
) -> (Vec<Value>, Vec<Value>) {
    let stream = stream_of(records, path);
    let context = || format!("{path}: {stream:#?}");
    let c2s: Vec<&Value> = stream
        .iter()
        .copied()
        .filter(|r| r["dir"] == "client_to_server")
        .collect();
    let s2c: Vec<&Value> = stream
        .iter()
        .copied()
        .filter(|r| r["dir"] == "server_to_client")
        .collect();
    assert_eq!(c2s[0]["type"], "HEADERS", "{}", context());
    assert_eq!(
        header(c2s[0], "content-type"),
        Some("application/grpc"),
        "{}",
        context()
    );
    assert_eq!(header(c2s[0], "te"), Some("trailers"), "{}", context());
    assert_eq!(header(c2s[0], ":method"), Some("POST"), "{}", context());
    let response = s2c
        .iter()
        .position(|r| r["role"] == "response")
        .unwrap_or_else(|| panic!("no response headers: {}", context()));
    let trailers = s2c
        .iter()
        .position(|r| r["role"] == "trailers")
        .unwrap_or_else(|| panic!("no trailers: {}", context()));
    assert_eq!(
        trailers,
        s2c.len() - 1,
        "trailers are not last: {}",
        context()
    );
    assert_eq!(s2c[trailers]["grpc_status_name"], "OK", "{}", context());
    assert!(
        s2c[trailers]["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("END_STREAM")),
        "{}",
        context()
    );
    let first_answer = s2c.iter().position(|r| r["event"] == "message");
    assert!(first_answer.is_some_and(|i| i > response), "{}", context());
    let mut messages = Vec::new();
    for (side, expected_type) in [(&c2s, request_type), (&s2c, response_type)] {
        let mut sent = Vec::new();
        for (i, record) in side.iter().enumerate() {
            if record["event"] != "message" {
                continue;
            }
            // Right after a DATA frame, or after another message of that frame.
            let before = side[..i]
                .iter()
                .rev()
                .find(|r| r["event"] != "message")
                .unwrap_or_else(|| panic!("a message before any frame: {}", context()));
            assert_eq!(before["type"], "DATA", "{}", context());
            assert_eq!(record["type"], expected_type, "{}", context());
            assert_eq!(record["compressed"], false);
            assert!(record["json_length"].as_u64().unwrap() > record["length"].as_u64().unwrap());
            sent.push(record["message"].clone());
        }
        messages.push(sent);
    }
    let responses = messages.pop().unwrap();
    (messages.pop().unwrap(), responses)
}

/// The lab's four demos, each on its stream, with the lab's messages.
fn check_lab_demos(records: &[Value]) {
    let (requests, responses) = check_call(
        records,
        "/messenger.LearningMessenger/GetLearningStatus",
        "messenger.StatusRequest",
        "messenger.StatusResponse",
    );
    assert_eq!(requests, [json!({"userId": "researcher-01"})]);
    assert_eq!(
        responses,
        [json!({"message": "System ready for research. Status check OK.", "active": true})]
    );

    let (requests, responses) = check_call(
        records,
        "/messenger.LearningMessenger/StreamLearnings",
        "messenger.TopicRequest",
        "messenger.LearningUpdate",
    );
    assert_eq!(requests, [json!({"topic": "gRPC Protocols"})]);
    let progress: Vec<_> = responses.iter().map(|r| r["progress"].clone()).collect();
    assert_eq!(progress, [25, 50, 75, 100]);
    assert_eq!(
        responses[3]["content"],
        "Finalizing the consolidated report."
    );
    assert!(responses
        .iter()
        .all(|r| is_clock_time(r["timestamp"].as_str().unwrap())));

    let (requests, responses) = check_call(
        records,
        "/messenger.LearningMessenger/SubmitResearchNotes",
        "messenger.ResearchNote",
        "messenger.SummaryResponse",
    );
    let notes: Vec<_> = requests
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        notes,
        [
            "Note 1: gRPC uses HTTP/2 Multiplexing",
            "Note 2: Built on Protocol Buffers",
            "Note 3: Binary TLV serialization",
            "Note 4: Typed interface contracts"
        ]
    );
    assert_eq!(
        responses,
        [
            json!({"count": 4, "finalSummary": "Processed 4 notes. Key takeaway: Note 4: Typed interface contracts"})
        ]
    );

    let (requests, responses) = check_call(
        records,
        "/messenger.LearningMessenger/CollaborativeFeed",
        "messenger.FeedUpdate",
        "messenger.FeedUpdate",
    );
    assert_eq!(
        requests,
        [
            json!({"user": "Engineer", "message": "Initializing system..."}),
            json!({"user": "Lead", "message": "Monitoring data flow..."}),
            json!({"user": "QA", "message": "Verifying latency..."}),
        ]
    );
    assert_eq!(
        responses[2],
        json!({"user": "System", "message": "Acknowledged QA's update: Verifying latency..."})
    );
    assert_eq!(responses.len(), 3);
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[test]
fn the_rust_client_shows_every_pattern_on_the_wire() {
    let server = TestServer::start();
    let output = client(&[
        "--target",
        &server.target,
        "--delay-ms",
        "0",
        "--show-wire=json",
    ]);
    // The command's own output is unchanged.
    assert_eq!(mask_times(&output.stdout), LAB_TRANSCRIPT);
    let records = json_lines(&output.stderr);
    check_lab_demos(&records);
    // One connection: preface, SETTINGS both ways, and its summary.
    assert!(records.iter().all(|r| r["conn"] == 1), "{records:#?}");
    // The server may send its SETTINGS first; the client's first bytes are the preface.
    let client_first = records
        .iter()
        .find(|r| r["dir"] == "client_to_server")
        .unwrap();
    assert_eq!(client_first["event"], "preface");
    assert!(records
        .iter()
        .any(|r| r["type"] == "SETTINGS" && r["dir"] == "server_to_client"));
    let summary = records.last().unwrap();
    assert_eq!(summary["event"], "close");
    assert_eq!(summary["streams"], 4);
    assert_eq!(
        summary["messages"],
        json!({"client_to_server": 9, "server_to_client": 9})
    );
    assert!(summary["json_ratio"].as_f64().unwrap() > 1.0);
}

#[test]
fn all_concurrent_interleaves_four_streams_on_one_connection() {
    let server = paced_server();
    let output = client(&[
        "--target",
        &server.target,
        "--show-wire=json",
        "all",
        "--concurrent",
        "--delay-ms",
        PACE_MS,
    ]);
    let records = json_lines(&output.stderr);
    check_lab_demos(&records);
    assert_four_streams_interleave(&records);
}

/// The pause between the messages of `client all --concurrent`'s three
/// streams, on both sides ([`paced_server`] and the client's `--delay-ms`):
/// each stream then lasts three or four pauses, longer than a loaded
/// machine takes to start the last call.
const PACE_MS: &str = "400";

/// A server whose StreamLearnings pauses [`PACE_MS`] before each update.
fn paced_server() -> TestServer {
    TestServer::with_config(ServerConfig {
        delay: Duration::from_millis(PACE_MS.parse().unwrap()),
        ..test_config()
    })
}

/// `client all --concurrent`'s records (against [`paced_server`], with
/// `--delay-ms` [`PACE_MS`]): streams 1, 3, 5 and 7 on one connection,
/// interleaved (before a second stream ends, all four began).
fn assert_four_streams_interleave(records: &[Value]) {
    let streams: Vec<u64> = records
        .iter()
        .filter(|r| r["role"] == "request")
        .map(|r| r["stream"].as_u64().unwrap())
        .collect();
    assert_eq!(streams, [1, 3, 5, 7]);
    assert!(records.iter().all(|r| r["conn"] == 1), "{records:#?}");
    // Interleaved: before the last stream's last frame, every stream has had frames.
    let on_streams: Vec<u64> = records
        .iter()
        .filter_map(|r| r["stream"].as_u64())
        .filter(|&s| s != 0)
        .collect();
    let switches = on_streams.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches > 3,
        "streams one after the other, not interleaved: {on_streams:?}"
    );
    // The unary call may be over before the last call starts (on a busy
    // machine it is); the three streams with pauses are not.
    let mut ends: Vec<usize> = [1, 3, 5, 7]
        .iter()
        .map(|s| on_streams.iter().rposition(|x| x == s).unwrap())
        .collect();
    ends.sort_unstable();
    let started: HashSet<u64> = on_streams[..ends[1]].iter().copied().collect();
    assert_eq!(
        started.len(),
        4,
        "two streams ended before all four began: {on_streams:?}"
    );
}

#[test]
fn deadlines_and_compression_show_in_headers_and_compressed_messages_are_inflated() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let note = "a".repeat(10_000);
    let file = dir.path().join("note.txt");
    std::fs::write(&file, format!("{note}\n")).unwrap();
    let output = client(&[
        "--target",
        &server.target,
        "--timeout-ms",
        "20000",
        "--compression",
        "gzip",
        "--show-wire=json",
        "upload",
        file.to_str().unwrap(),
    ]);
    assert!(
        output.stdout.contains("Processed 1 notes"),
        "{}",
        output.stdout
    );
    let records = json_lines(&output.stderr);
    let stream = stream_of(&records, "/messenger.LearningMessenger/SubmitResearchNotes");
    let request = stream[0];
    assert_eq!(header(request, "grpc-encoding"), Some("gzip"), "{request}");
    let timeout = header(request, "grpc-timeout").expect("a grpc-timeout header");
    assert!(timeout.ends_with(['m', 'S', 'u', 'n']), "{timeout}");
    let message = stream
        .iter()
        .find(|r| r["event"] == "message" && r["dir"] == "client_to_server")
        .expect("the note");
    // 10,000 repeated bytes compress: the prefix's flag is set and the length is small.
    assert_eq!(message["compressed"], true, "{message}");
    assert!(message["length"].as_u64().unwrap() < 1_000, "{message}");
    assert_eq!(message["message"]["text"], note.as_str());
}

#[test]
fn tls_passes_the_tap_untouched_in_one_line() {
    let pki = crate::tls::Pki::generate();
    let server = crate::tls::tls_server(&pki);
    let ca = pki.ca.to_str().unwrap();
    // The certificate is still checked against the server's name, not the tap's.
    let output = client(&[
        "--target",
        &server.target,
        "--tls-ca",
        ca,
        "--show-wire=json",
        "status",
    ]);
    assert!(
        output.stdout.contains("System ready for research"),
        "{}",
        output.stdout
    );
    let records = json_lines(&output.stderr);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["open", "notice", "close"], "{records:#?}");
    assert!(records[1]["text"].as_str().unwrap().starts_with("TLS: "));
    let bytes = &records[2]["bytes"];
    assert!(bytes["client_to_server"].as_u64().unwrap() > 100, "{bytes}");
    assert!(bytes["server_to_client"].as_u64().unwrap() > 100, "{bytes}");
}

#[test]
fn the_python_reference_client_through_the_wiretap_process() {
    let server = TestServer::start();
    let tap = TapProcess::start(&server.target, true);
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    // run_path leaves sys.path alone: `protos` is found in the working directory.
    let script = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')";
    let mut command = Command::new(venv_program("python3"));
    command
        .args(["-c", script])
        .arg(project_root().join("python/client.py"))
        .args(["--target", &tap.addr, "--delay-scale", "0"])
        .current_dir(stubs.path());
    let output = run_bounded(command, RUN_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "{}",
        output.stderr
    );
    assert_eq!(mask_times(&output.stdout), LAB_TRANSCRIPT);
    tap.wait_closed(1);
    check_lab_demos(&tap.records());
}

/// A relay between two hops that forwards both ways and keeps, per
/// direction, a count and an FNV-1a hash of the bytes it passed.
struct HashingRelay {
    addr: String,
    /// (bytes, hash) toward the upstream and back.
    sums: Arc<Mutex<[(u64, u64); 2]>>,
}

impl HashingRelay {
    fn start(upstream: String) -> HashingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sums = Arc::new(Mutex::new([(0, FNV_OFFSET); 2]));
        let shared = sums.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let server = TcpStream::connect(&upstream).expect("relay reaches its upstream");
                for (index, from, to) in [
                    (0, client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (1, server, client),
                ] {
                    let sums = shared.clone();
                    std::thread::spawn(move || relay(from, to, index, &sums));
                }
            }
        });
        HashingRelay { addr, sums }
    }

    fn sums(&self) -> [(u64, u64); 2] {
        *self.sums.lock().unwrap()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn relay(mut from: TcpStream, mut to: TcpStream, index: usize, sums: &Mutex<[(u64, u64); 2]>) {
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut sums = sums.lock().unwrap();
            let (count, hash) = &mut sums[index];
            *count += n as u64;
            for &byte in &buffer[..n] {
                *hash = (*hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
#[ignore = "slow: 100,000 notes of 512 bytes through the tap"]
fn a_hundred_thousand_notes_pass_the_tap_byte_for_byte_in_flat_memory() {
    // Full strength (a million) is `bench wiretap`'s. These notes (~50 MiB)
    // are more than the memory the tap may gain, so a tap that kept them would fail.
    const NOTES: usize = 100_000;
    const NOTE_BYTES: usize = 512;
    let server = ServerProcess::start(&["--delay-ms", "0"]);
    // client -> near relay -> tap -> far relay -> server
    let far = HashingRelay::start(server.target.clone());
    let tap = TapProcess::start(&far.addr, false);
    let near = HashingRelay::start(tap.addr.clone());
    let dir = tempfile::tempdir().unwrap();
    let note_text = |i: usize| format!("{:-<NOTE_BYTES$}", format!("note {i} "));
    let upload = |count: usize| {
        let path = dir.path().join(format!("{count}.txt"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..count {
            writeln!(file, "{}", note_text(i)).unwrap();
        }
        file.flush().unwrap();
        let output = client(&["--target", &near.addr, "upload", path.to_str().unwrap()]);
        assert_eq!(
            output.stdout,
            format!(
                "Server Summary: Processed {count} notes. Key takeaway: {} (Total {count})\n",
                note_text(count - 1)
            )
        );
    };
    upload(10_000);
    tap.wait_closed(1);
    let before = status_of(tap.child.id());
    let watcher = PeakWatcher::start(tap.child.id());
    upload(NOTES);
    let summary = tap.wait_closed(2);
    let peak = watcher.stop();
    eprintln!(
        "wiretap RSS before {:.1} MiB, peak {:.1} MiB during a {NOTES}-note upload",
        before.rss_mib(),
        peak.rss_mib()
    );
    // Both directions: what entered the tap is what left it.
    let (near_sums, far_sums) = (near.sums(), far.sums());
    assert_eq!(near_sums[0], far_sums[0], "client to server differs");
    assert_eq!(near_sums[1], far_sums[1], "server to client differs");
    assert!(
        near_sums[0].0 > (NOTES * NOTE_BYTES) as u64,
        "{near_sums:?}"
    );
    // The tap decoded every note, and its memory did not grow with them.
    assert_eq!(summary["messages"]["client_to_server"], NOTES as u64);
    assert_eq!(*tap.messages.lock().unwrap(), (10_000 + NOTES + 2) as u64);
    assert!(
        peak.rss_kib <= before.rss_kib + 32 * MIB,
        "the tap's memory grew with the upload: {before:?} -> {peak:?}"
    );
}

/// Sends `bytes` on a new connection through the tap, then closes our side
/// and reads until the other side closes (bounded).
fn send_raw(addr: &str, bytes: &[u8], close_write: bool) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    if close_write {
        let _ = stream.shutdown(Shutdown::Write);
    }
    stream
}

fn drain(mut stream: TcpStream) {
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

/// The notices of connection `conn`.
fn notices(tap: &TapProcess, conn: u64) -> Vec<String> {
    tap.records()
        .iter()
        .filter(|r| r["event"] == "notice" && r["conn"] == conn)
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The `client` binary with `args`, which must succeed.
fn client(args: &[&str]) -> BoundedOutput {
    let mut command = Command::new(CLIENT);
    command.args(args);
    let output = run_bounded(command, RUN_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "client {args:?}: {}",
        output.stderr
    );
    output
}

/// A good call through the tap still works.
fn assert_serves(tap: &TapProcess) {
    let output = client(&["--target", &tap.addr, "status"]);
    assert!(
        output.stdout.contains("System ready for research"),
        "{}",
        output.stdout
    );
}

#[test]
fn many_connections_at_once_are_each_decoded_on_their_own() {
    const CLIENTS: u64 = 8;
    let server = TestServer::start();
    let tap = TapProcess::start(&server.target, true);
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                client(&[
                    "--target",
                    &tap.addr,
                    "--delay-ms",
                    "0",
                    "all",
                    "--concurrent",
                ]);
            });
        }
    });
    for conn in 1..=CLIENTS {
        let summary = tap.wait_closed(conn);
        assert_eq!(summary["streams"], 4, "{summary}");
        assert_eq!(
            summary["messages"],
            json!({"client_to_server": 9, "server_to_client": 9}),
            "{summary}"
        );
    }
    let records = tap.records();
    assert!(
        records.iter().all(|r| r["event"] != "notice"),
        "{records:#?}"
    );
    for conn in 1..=CLIENTS {
        let mine: Vec<Value> = records
            .iter()
            .filter(|r| r["conn"] == conn)
            .cloned()
            .collect();
        check_lab_demos(&mine);
    }
}

#[test]
fn malformed_traffic_gets_one_clear_line_and_the_tap_goes_on() {
    let server = TestServer::start();
    let mut tap = TapProcess::start(&server.target, true);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    // A truncated frame, left open while other connections come and go.
    let mut truncated = preface.to_vec();
    truncated.extend([0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0]);
    let open = send_raw(&tap.addr, &truncated, false);

    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "garbage",
            [preface.to_vec(), vec![0xff; 64]].concat(),
            "malformed: a UNKNOWN_0xff frame of 16777215 bytes",
        ),
        (
            "HTTP/1.1",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not HTTP/2: the client did not send the connection preface (it began \"GET / HTTP/1.1",
        ),
        (
            "TLS",
            vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
            "TLS: the bytes are encrypted and cannot be decoded",
        ),
    ];
    for (i, (what, bytes, expected)) in cases.iter().enumerate() {
        let conn = i as u64 + 2;
        drain(send_raw(&tap.addr, bytes, true));
        tap.wait_closed(conn);
        let lines = notices(&tap, conn);
        let matching: Vec<_> = lines.iter().filter(|l| l.starts_with(expected)).collect();
        assert_eq!(matching.len(), 1, "{what}: {lines:?}");
        eprintln!("{what}: {}", matching[0]);
        tap.assert_alive();
    }
    assert_serves(&tap);

    let _ = open.shutdown(Shutdown::Write);
    drain(open);
    tap.wait_closed(1);
    assert_eq!(
        notices(&tap, 1),
        ["truncated: the connection ended 4 of a 12-byte SETTINGS frame on stream 0"]
    );
    tap.assert_alive();

    // An upstream that is down: one line per connection, and the tap stays up.
    let down = TapProcess::start(&format!("127.0.0.1:{}", free_port()), true);
    for conn in [1, 2] {
        drain(send_raw(&down.addr, preface, true));
        let mut lines = Vec::new();
        wait_until(crate::support::WAIT, || {
            lines = notices(&down, conn);
            !lines.is_empty()
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("is unreachable"), "{lines:?}");
        eprintln!("upstream down: {}", lines[0]);
    }
    let mut down = down;
    down.assert_alive();
    let mut command = Command::new(CLIENT);
    command.args(["--target", &down.addr, "--timeout-ms", "20000", "status"]);
    let output = run_bounded(command, RUN_TIMEOUT);
    assert_eq!(
        output.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        output.stderr
    );
    assert!(output.stderr.starts_with("error: "), "{}", output.stderr);
}

#[test]
fn wiretap_flags_and_a_bad_address_are_one_line() {
    let run = |args: &[&str]| {
        let mut command = Command::new(wiretap_bin());
        command.args(args);
        run_bounded(command, RUN_TIMEOUT)
    };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let output = run(&["--listen", &busy]);
    assert_eq!(
        output.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        output.stderr
    );
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
    assert!(
        output
            .stderr
            .starts_with(&format!("wiretap: cannot listen on {busy}: ")),
        "{}",
        output.stderr
    );
    let output = run(&["--listen", "127.0.0.1:0", "--web", &busy]);
    assert_eq!(output.status.and_then(|s| s.code()), Some(1));
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
    let line = format!("wiretap: cannot serve the web view on {busy}: ");
    assert!(output.stderr.starts_with(&line), "{}", output.stderr);
    let output = run(&["--no-such-flag"]);
    assert_eq!(
        output.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        output.stderr
    );
    assert!(output.stderr.starts_with("error: "), "{}", output.stderr);
    assert!(!output.stderr.contains("panicked"));
}

#[test]
fn show_wire_taps_a_target_that_names_one_address() {
    let server = TestServer::start();
    let port = server.target.rsplit_once(':').unwrap().1;
    for target in [
        format!("dns:///127.0.0.1:{port}"),
        format!("ipv4:127.0.0.1:{port}"),
    ] {
        let output = client(&["--target", &target, "--show-wire=json", "status"]);
        let records = json_lines(&output.stderr);
        let request = records
            .iter()
            .find(|r| header(r, ":path") == Some("/messenger.LearningMessenger/GetLearningStatus"))
            .unwrap_or_else(|| panic!("{target}: {records:#?}"));
        // The tap is invisible to the call: it names the server, not the tap.
        let authority = format!("127.0.0.1:{port}");
        assert_eq!(header(request, ":authority"), Some(authority.as_str()));
    }
    // A tap forwards to one address: several are refused before any call.
    let several = format!("ipv4:127.0.0.1:{port},127.0.0.2:{port}");
    let mut command = Command::new(CLIENT);
    command.args(["--target", &several, "--show-wire", "status"]);
    let output = run_bounded(command, RUN_TIMEOUT);
    assert_eq!(
        output.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        output.stderr
    );
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
    assert!(
        output.stderr.contains("--show-wire taps one TCP address"),
        "{}",
        output.stderr
    );
}

/// A `client --show-wire=web` run, up to its first line: the page's address.
pub(crate) struct ShowWireWeb {
    child: Child,
    pub(crate) stderr: BufReader<ChildStderr>,
    /// host:port of the wire view's page.
    pub(crate) web: String,
}

impl ShowWireWeb {
    pub(crate) fn start(args: &[&str]) -> ShowWireWeb {
        let mut child = Command::new(CLIENT)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let web = line
            .strip_prefix("client: the wire view is at http://")
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_else(|| panic!("no page: {line}"))
            .0
            .to_owned();
        ShowWireWeb { child, stderr, web }
    }

    /// Ctrl-C, as a user ends it: its exit status, the rest of its stderr
    /// and its whole stdout.
    pub(crate) fn interrupt(mut self) -> (ExitStatus, String, String) {
        let interrupted = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupted.success());
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        (self.child.wait().unwrap(), rest, stdout)
    }
}

/// The web view's `/events` as a program reads it: server-sent events over
/// HTTP/1.0, so that the body is the events as they are, ended by a close.
pub(crate) struct EventReader {
    lines: BufReader<TcpStream>,
    /// Every line read, as it came.
    text: String,
}

impl EventReader {
    pub(crate) fn open(web: &str) -> EventReader {
        let mut stream = TcpStream::connect(web).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut lines = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(
                lines.read_line(&mut head).unwrap() > 0,
                "no response head: {head}"
            );
        }
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert!(
            head.contains("content-type: text/event-stream\r\n"),
            "{head}"
        );
        EventReader {
            lines,
            text: String::new(),
        }
    }

    /// The events read so far, as they came.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The next event: its name (`message` when it has none) and its data.
    pub(crate) fn next(&mut self) -> (String, Value) {
        let (mut name, mut data) = ("message".to_owned(), String::new());
        loop {
            let mut line = String::new();
            assert!(
                self.lines.read_line(&mut line).unwrap() > 0,
                "the events ended"
            );
            self.text.push_str(&line);
            match line.trim_end_matches('\n') {
                "" if !data.is_empty() => break,
                "" => {}
                field => match field.split_once(": ") {
                    Some(("event", value)) => name = value.to_owned(),
                    Some(("data", value)) => data.push_str(value),
                    // A comment (keep-alive).
                    _ => assert!(field.starts_with(':'), "not an event line: {field:?}"),
                },
            }
        }
        let value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
        (name, value)
    }

    /// The records up to connection `conn`'s summary.
    pub(crate) fn records_until_closed(&mut self, conn: u64) -> Vec<Value> {
        let mut records = Vec::new();
        loop {
            let (name, record) = self.next();
            assert_eq!(name, "message", "{record}");
            let closed = record["event"] == "close" && record["conn"] == conn;
            records.push(record);
            if closed {
                return records;
            }
        }
    }
}

/// A frame record's `raw` bytes are the frame: its header says its type,
/// flags, stream and length, and they are all there up to the cap.
fn assert_raw_is_the_frame(record: &Value) {
    let hex = record["raw"]
        .as_str()
        .unwrap_or_else(|| panic!("no raw: {record}"));
    let raw: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let length = u32::from_be_bytes([0, raw[0], raw[1], raw[2]]);
    let stream = u32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]);
    assert_eq!(
        u64::from(length),
        record["length"].as_u64().unwrap(),
        "{record}"
    );
    assert_eq!(
        u64::from(stream),
        record["stream"].as_u64().unwrap(),
        "{record}"
    );
    let kind = [
        "DATA",
        "HEADERS",
        "PRIORITY",
        "RST_STREAM",
        "SETTINGS",
        "PUSH_PROMISE",
        "PING",
        "GOAWAY",
        "WINDOW_UPDATE",
        "CONTINUATION",
    ];
    assert_eq!(kind[usize::from(raw[3])], record["type"], "{record}");
    // A DATA frame's payload may still have been on its way when the frame began.
    if record["type"] != "DATA" {
        assert_eq!(raw.len(), (9 + length as usize).min(1024), "{record}");
    }
}

#[test]
fn the_web_view_sends_every_record_as_a_server_sent_event() {
    let server = paced_server();
    let tap = TapProcess::start_web(&server.target, true);
    let web = tap.web.clone().unwrap();
    let mut page = EventReader::open(&web);
    let (name, info) = page.next();
    assert_eq!(name, "reset");
    assert_eq!(
        info,
        json!({"history_cap": 10_000, "history_bytes": 32 << 20, "dropped": 0})
    );
    client(&[
        "--target",
        &tap.addr,
        "all",
        "--concurrent",
        "--delay-ms",
        PACE_MS,
    ]);
    let records = page.records_until_closed(1);
    check_lab_demos(&records);
    assert_four_streams_interleave(&records);
    // The same records as --json prints, each frame with its bytes.
    tap.wait_closed(1);
    assert_eq!(records, tap.records());
    let frames: Vec<&Value> = records.iter().filter(|r| r["event"] == "frame").collect();
    assert!(frames.len() > 20, "{frames:#?}");
    frames.iter().for_each(|r| assert_raw_is_the_frame(r));
    // A page that opens later gets the history first, then what comes.
    let mut late = EventReader::open(&web);
    assert_eq!(late.next().0, "reset");
    assert_eq!(late.records_until_closed(1), records);
    assert_serves(&tap);
    assert_eq!(
        late.records_until_closed(2).first().unwrap()["event"],
        "open"
    );
    // The page and its files.
    for (path, host, content_type, text) in [
        ("/", "localhost", "text/html; charset=utf-8", "timeline.js"),
        (
            "/timeline.js",
            "127.0.0.1:80",
            "text/javascript; charset=utf-8",
            "EventSource(\"events\")",
        ),
        (
            "/timeline.css",
            "[::1]:8080",
            "text/css; charset=utf-8",
            ".lane",
        ),
        (
            "/nothing",
            "localhost",
            "text/plain; charset=utf-8",
            "not found",
        ),
        // Another site's name pointed at the tap (DNS rebinding).
        (
            "/events",
            "example.org",
            "text/plain; charset=utf-8",
            "HTTP/1.0 403 Forbidden",
        ),
    ] {
        let mut http = TcpStream::connect(&web).unwrap();
        write!(http, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut response = String::new();
        http.read_to_string(&mut response).unwrap();
        assert!(
            response.contains(&format!("content-type: {content_type}\r\n")),
            "{path}: {response}"
        );
        assert!(response.contains(text), "{path}: {response}");
    }
}

#[test]
fn show_wire_web_serves_the_page_until_ctrl_c() {
    let server = paced_server();
    let mut run = ShowWireWeb::start(&[
        "--target",
        &server.target,
        "--show-wire=web",
        "all",
        "--concurrent",
        "--delay-ms",
        PACE_MS,
    ]);
    let web = run.web.clone();
    let mut page = EventReader::open(&web);
    assert_eq!(page.next().0, "reset");
    let records = page.records_until_closed(1);
    check_lab_demos(&records);
    assert_four_streams_interleave(&records);
    let mut line = String::new();
    run.stderr.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "client: the calls are done; the wire view stays up until Ctrl-C\n"
    );
    // Still up: a page opened now gets it all.
    let mut late = EventReader::open(&web);
    assert_eq!(late.next().0, "reset");
    assert_eq!(late.records_until_closed(1), records);
    let (status, rest, stdout) = run.interrupt();
    assert!(status.success(), "{status}: {rest}");
    assert_eq!(rest, "");
    assert!(stdout.contains("System ready for research"), "{stdout}");
}

#[test]
fn a_page_that_never_reads_does_not_hold_the_traffic_back() {
    const NOTES: usize = 200_000;
    let server = ServerProcess::start(&["--delay-ms", "0"]);
    let tap = TapProcess::start_web(&server.target, false);
    let web = tap.web.clone().unwrap();
    // A page that asks for the events and never reads them.
    let mut stuck = TcpStream::connect(&web).unwrap();
    stuck
        .write_all(b"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..NOTES {
        writeln!(file, "note {i}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let output = client(&["--target", &tap.addr, "upload", path.to_str().unwrap()]);
    assert!(
        output.stdout.contains(&format!("Processed {NOTES} notes")),
        "{}",
        output.stdout
    );
    let summary = tap.wait_closed(1);
    assert_eq!(summary["messages"]["client_to_server"], NOTES as u64);
    // The stuck page missed records, and is told so when it reads again.
    let mut page = EventReader {
        lines: BufReader::new(stuck),
        text: String::new(),
    };
    page.lines
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        page.lines.read_line(&mut head).unwrap();
    }
    let skipped = loop {
        let (name, data) = page.next();
        if name == "lagged" {
            break data["skipped"].as_u64().unwrap();
        }
    };
    assert!(skipped > 0);
    // A new page gets the tap's history, which ends with the summary.
    let mut fresh = EventReader::open(&web);
    let (_, info) = fresh.next();
    assert!(info["dropped"].as_u64().unwrap() > 0, "{info}");
    let mut last = fresh.next().1;
    while last["event"] != "close" {
        last = fresh.next().1;
    }
    assert_eq!(last, summary);
}

/// The timeline page in headless Chromium, as a person sees it:
/// web/tests/timeline.test.mjs under node's test runner (lanes 0, 1, 3, 5
/// and 7 for `client all --concurrent`, a clicked frame's bytes, and 12,000
/// frames past the page's cap). Its screenshots go to target/browser/.
#[test]
#[ignore = "needs headless Chromium (Debian's chromium) and web/node_modules"]
fn the_timeline_page_in_a_real_browser() {
    let binaries = std::path::Path::new(SERVER_BIN).parent().unwrap();
    let mut command = node("timeline.test.mjs", &[]);
    command.env("MESSENGER_BIN_DIR", binaries);
    let output = run_bounded(command, Duration::from_secs(300));
    let report = format!("{}\n{}", output.stdout, output.stderr);
    assert!(output.status.is_some_and(|s| s.success()), "{report}");
    assert!(report.contains("\n# pass 2\n# fail 0\n"), "{report}");
}
