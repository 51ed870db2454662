//! The `client` binary run as a real process against a real server in this
//! process: every command, its JSON output, and every way it can fail.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{mask_times, test_config, TestServer, LAB_TRANSCRIPT};
use learning_messenger::server::ServerConfig;
use serde_json::Value;

const CLIENT: &str = env!("CARGO_BIN_EXE_client");
/// However slow the machine, no client run here should take this long.
const PATIENCE: Duration = Duration::from_secs(120);

/// `client --target TARGET ARGS`, its output piped, no input.
fn client(target: &str, args: &[&str]) -> Command {
    let mut command = Command::new(CLIENT);
    command
        .args(["--target", target])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` to exit and collects its output; kills it past PATIENCE.
fn finish(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(PATIENCE) {
        Ok(output) => output.expect("client output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("client still running after {PATIENCE:?}");
        }
    }
}

/// Runs `client --target TARGET ARGS` to its end with `input` on its stdin.
fn run(target: &str, args: &[&str], input: Option<&'static [u8]>) -> Output {
    let mut command = client(target, args);
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("client starts");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        std::thread::spawn(move || stdin.write_all(input));
    }
    finish(child)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A successful run: exit 0, nothing on stderr.
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "client failed: {:?}; stderr: {}",
        output.status,
        stderr(output)
    );
    assert_eq!(stderr(output), "");
}

/// A failed run: `code`, and exactly one line on stderr containing each of `expected`.
fn assert_fails(output: &Output, code: i32, expected: &[&str]) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "stderr: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected on stderr, got: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{text:?} not in stderr: {stderr}");
    }
}

/// Each line of the child's stdout as it arrives, read on a thread of its own.
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
        })
        .collect()
}

fn slow_server(delay: Duration) -> TestServer {
    TestServer::with_config(ServerConfig {
        delay,
        ..test_config()
    })
}

#[test]
fn no_command_and_all_print_the_lab_transcript() {
    let server = TestServer::start();
    for args in [&["--delay-ms", "0"][..], &["all", "--delay-ms", "0"]] {
        let output = run(&server.target, args, None);
        assert_ok(&output);
        assert_eq!(
            mask_times(&stdout(&output)),
            LAB_TRANSCRIPT,
            "client {args:?}"
        );
    }
}

#[test]
fn status_prints_the_servers_answer() {
    let server = TestServer::start();
    let output = run(&server.target, &["status", "--user-id", "someone"], None);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        "Server Response: System ready for research. Status check OK. (Active: True)\n"
    );
}

#[test]
fn learn_prints_plain_lines_off_a_terminal() {
    let server = TestServer::start();
    let output = run(&server.target, &["learn", "--topic", "Rust"], None);
    assert_ok(&output);
    let text = stdout(&output);
    assert!(
        !text.contains('\x1b'),
        "no colours or progress bar in a pipe: {text:?}"
    );
    assert_eq!(
        mask_times(&text),
        "[--:--:--] Progress 25%: Searching for research papers on Rust...\n\
         [--:--:--] Progress 50%: Analyzing core principles of Rust...\n\
         [--:--:--] Progress 75%: Synthesizing key gRPC use cases...\n\
         [--:--:--] Progress 100%: Finalizing the consolidated report.\n"
    );
}

#[test]
fn upload_sends_every_line_of_a_large_file() {
    const NOTES: usize = 200_000;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    {
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        for i in 1..=NOTES {
            writeln!(
                writer,
                "note {i}: line {i} of a file read lazily, one note per line"
            )
            .unwrap();
        }
    }
    let server = TestServer::start();
    let output = run(
        &server.target,
        &["upload", file.path().to_str().unwrap()],
        None,
    );
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "Server Summary: Processed {NOTES} notes. Key takeaway: \
             note {NOTES}: line {NOTES} of a file read lazily, one note per line (Total {NOTES})\n"
        )
    );
}

#[test]
fn upload_memory_stays_flat_however_long_the_input() {
    // 100,000 notes of 1 KiB (100 MiB) through stdin: a client that gathered
    // them before sending (or queued them unsent) would hold them all.
    const LINES: usize = 100_000;
    let line = format!("{}\n", "x".repeat(1023));
    let server = TestServer::start();
    let mut child = client(&server.target, &["upload", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let watcher = crate::support::PeakWatcher::start(child.id());
    let writer = std::thread::spawn(move || {
        for _ in 0..LINES {
            stdin.write_all(line.as_bytes())?;
        }
        Ok::<_, std::io::Error>(())
    });
    let output = finish(child);
    let peak = watcher.stop();
    writer
        .join()
        .unwrap()
        .expect("the client read all its input");
    assert_ok(&output);
    assert!(
        stdout(&output).ends_with(&format!("(Total {LINES})\n")),
        "{}",
        stdout(&output)
    );
    assert!(
        peak.rss_mib() < 64.0,
        "client peak RSS {:.1} MiB for 100 MiB of input",
        peak.rss_mib()
    );
}

#[test]
fn upload_reads_standard_input_or_sends_the_labs_notes() {
    let server = TestServer::start();
    let output = run(
        &server.target,
        &["upload", "-"],
        Some("first\r\n\nthird: über 🚀\n".as_bytes()),
    );
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        "Server Summary: Processed 3 notes. Key takeaway: third: über 🚀 (Total 3)\n"
    );

    let output = run(&server.target, &["upload"], None);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        "Server Summary: Processed 4 notes. Key takeaway: Note 4: Typed interface contracts (Total 4)\n"
    );
}

#[test]
fn chat_echoes_each_line_while_input_is_still_open() {
    let server = TestServer::start();
    let mut child = client(&server.target, &["chat", "--user", "bob"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("client starts");
    let mut stdin = child.stdin.take().unwrap();
    let echoes = lines_of(child.stdout.take().unwrap());

    // Each echo must come back while stdin is still open: a client that
    // waited for the end of input would never answer here.
    for (line, echo) in [
        (
            "alice: hello",
            " [Feed Update] System: Acknowledged alice's update: hello",
        ),
        (
            "no name here",
            " [Feed Update] System: Acknowledged bob's update: no name here",
        ),
    ] {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(
            echoes
                .recv_timeout(PATIENCE)
                .expect("an echo before the end of input"),
            echo
        );
    }
    writeln!(stdin, "carol: last words").unwrap();
    drop(stdin);
    let output = finish(child);
    assert_ok(&output);
    assert_eq!(
        echoes.recv_timeout(PATIENCE).unwrap(),
        " [Feed Update] System: Acknowledged carol's update: last words"
    );
    assert!(
        echoes.recv_timeout(PATIENCE).is_err(),
        "nothing after the last echo"
    );
}

#[test]
fn chat_speaks_as_the_login_name_by_default() {
    let server = TestServer::start();
    let mut command = client(&server.target, &["chat"]);
    command.env("USER", "dora").stdin(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi\n\n  \nok\n")
        .unwrap();
    let output = finish(child);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        " [Feed Update] System: Acknowledged dora's update: hi\n [Feed Update] System: Acknowledged dora's update: ok\n"
    );
}

#[test]
fn json_is_one_object_per_received_message() {
    let server = TestServer::start();
    let output = run(&server.target, &["all", "--json", "--delay-ms", "0"], None);
    assert_ok(&output);
    let objects = json_lines(&output);
    let rpcs: Vec<_> = objects.iter().map(|o| o["rpc"].as_str().unwrap()).collect();
    assert_eq!(
        rpcs,
        [
            "GetLearningStatus",
            "StreamLearnings",
            "StreamLearnings",
            "StreamLearnings",
            "StreamLearnings"
        ]
        .into_iter()
        .chain([
            "SubmitResearchNotes",
            "CollaborativeFeed",
            "CollaborativeFeed",
            "CollaborativeFeed"
        ])
        .collect::<Vec<_>>()
    );
    assert_eq!(objects[0]["message"]["active"], true);
    let progress: Vec<_> = objects[1..5]
        .iter()
        .map(|o| o["message"]["progress"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, [25, 50, 75, 100]);
    assert!(crate::support::is_clock_time(
        objects[1]["message"]["timestamp"].as_str().unwrap()
    ));
    assert_eq!(objects[5]["message"]["count"], 4);
    assert_eq!(
        objects[5]["message"]["finalSummary"],
        "Processed 4 notes. Key takeaway: Note 4: Typed interface contracts"
    );
    assert_eq!(objects[8]["message"]["user"], "System");
    assert_eq!(
        objects[8]["message"]["message"],
        "Acknowledged QA's update: Verifying latency..."
    );

    let output = run(&server.target, &["upload", "-", "--json"], Some(b"a\nb\n"));
    assert_ok(&output);
    assert_eq!(
        json_lines(&output),
        [
            serde_json::json!({"rpc": "SubmitResearchNotes", "message": {"count": 2, "finalSummary": "Processed 2 notes. Key takeaway: b"}})
        ]
    );
}

#[test]
fn all_concurrent_prints_every_pattern_then_the_total_time() {
    let server = TestServer::start();
    let output = run(
        &server.target,
        &["all", "--concurrent", "--delay-ms", "0"],
        None,
    );
    assert_ok(&output);
    let text = stdout(&output);
    // Each line is `LABEL | LINE`, LINE as the lab prints it.
    let lines: Vec<(&str, String)> = text
        .lines()
        .filter_map(|line| line.split_once(" | "))
        .map(|(label, line)| {
            (
                label.trim_end(),
                mask_times(line).trim_end_matches('\n').to_owned(),
            )
        })
        .collect();
    let mut label = "unary";
    for lab_line in LAB_TRANSCRIPT.lines().filter(|l| !l.is_empty()) {
        if lab_line.starts_with("--- Server") {
            label = "server-stream";
        } else if lab_line.starts_with("--- Client") {
            label = "client-stream";
        } else if lab_line.starts_with("--- Bi") {
            label = "bidi";
        }
        assert!(
            lines.contains(&(label, lab_line.to_owned())),
            "{label} | {lab_line} missing from:\n{text}"
        );
    }
    for pattern in ["unary", "server-stream", "client-stream", "bidi"] {
        let finished = lines
            .iter()
            .filter(|(l, line)| *l == pattern && line.starts_with("finished in "))
            .count();
        assert_eq!(finished, 1, "{pattern} not finished once:\n{text}");
    }
    assert!(
        text.lines().last().unwrap().starts_with("Total time: "),
        "{text}"
    );
}

#[test]
fn all_concurrent_takes_about_the_longest_pattern_not_their_sum() {
    // Real pauses on both sides: the streams take 4 x 300 ms, the upload
    // 4 x 300 ms, the feed 3 x 300 ms; their sum is over 3 s.
    let server = slow_server(Duration::from_millis(300));
    let output = run(
        &server.target,
        &["all", "--concurrent", "--json", "--delay-ms", "300"],
        None,
    );
    assert_ok(&output);
    let objects = json_lines(&output);
    let rpcs: Vec<_> = objects.iter().filter_map(|o| o["rpc"].as_str()).collect();
    for rpc in [
        "GetLearningStatus",
        "StreamLearnings",
        "SubmitResearchNotes",
        "CollaborativeFeed",
    ] {
        assert!(rpcs.contains(&rpc), "no {rpc} result in {objects:?}");
    }
    let timing = objects.last().unwrap();
    let total = timing["total_ms"].as_u64().unwrap();
    let sum: u64 = timing["pattern_ms"]
        .as_object()
        .unwrap()
        .values()
        .map(|ms| ms.as_u64().unwrap())
        .sum();
    assert_eq!(timing["pattern_ms"].as_object().unwrap().len(), 4);
    assert!(sum >= 3000, "the patterns' own times add up to {sum} ms");
    // At the same time, the total is the longest (about 1.2 s) plus overhead;
    // one after another it would be the sum. The bound is generous.
    assert!(
        total < sum * 3 / 4,
        "total {total} ms is not much less than the sum {sum} ms"
    );
}

#[test]
fn unreachable_server_is_one_line_naming_the_target_and_unavailable() {
    // A port where nobody listens.
    let closed = format!("127.0.0.1:{}", crate::support::free_port());
    for args in [
        &["status"][..],
        &["learn"],
        &["upload"],
        &["chat"],
        &["--delay-ms", "0"],
    ] {
        let output = run(&closed, args, None);
        assert_fails(&output, 1, &[&format!("error: {closed}: UNAVAILABLE: ")]);
        assert_eq!(
            stdout(&output)
                .lines()
                .filter(|l| l.starts_with("[") || l.starts_with("Server"))
                .count(),
            0
        );
    }
}

#[test]
fn a_deadline_shorter_than_the_stream_is_deadline_exceeded() {
    let server = slow_server(Duration::from_secs(5));
    let output = run(&server.target, &["learn", "--timeout-ms", "300"], None);
    assert_fails(
        &output,
        1,
        &[&format!("error: {}: DEADLINE_EXCEEDED", server.target)],
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn bad_flags_exit_2_with_usage_and_local_problems_exit_3() {
    let server = TestServer::start();
    for args in [
        &["--no-such-flag"][..],
        &["status", "--timeout-ms", "soon"],
        &["learn", "extra"],
        &["dance"],
    ] {
        let output = run(&server.target, args, None);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "client {args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("--help"),
            "client {args:?}: {stderr}"
        );
    }
    let output = run(&server.target, &["upload", "/no/such/notes.txt"], None);
    assert_fails(&output, 3, &["cannot open /no/such/notes.txt"]);
    let output = run(&server.target, &["upload", "-"], Some(b"fine\n\xff\xfe\n"));
    assert_fails(&output, 3, &["standard input: line 2: not valid UTF-8"]);
    let output = run(
        &server.target,
        &["status", "--tls-ca", "/no/such/ca.pem"],
        None,
    );
    assert_fails(&output, 3, &["/no/such/ca.pem"]);
}

#[test]
fn every_command_has_help() {
    for command in ["all", "status", "learn", "upload", "chat"] {
        let output = finish(
            Command::new(CLIENT)
                .args([command, "--help"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        assert!(output.status.success());
        let help = stdout(&output);
        assert!(
            help.contains("--target") && help.contains("--json"),
            "client {command} --help: {help}"
        );
    }
}

#[test]
fn a_closed_output_stops_the_client_quietly() {
    let server = slow_server(Duration::from_millis(200));
    let mut child = client(&server.target, &["learn"]).spawn().unwrap();
    // The reader goes away before the first update (200 ms away) is printed.
    drop(child.stdout.take());
    let output = finish(child);
    assert_ok(&output);
}

#[test]
fn ctrl_c_cancels_the_stream_with_one_line_and_code_130() {
    let server = slow_server(Duration::from_secs(1));
    let mut child = client(&server.target, &["learn"]).spawn().unwrap();
    let updates = lines_of(child.stdout.take().unwrap());
    let first = updates.recv_timeout(PATIENCE).expect("a first update");
    assert!(
        first.ends_with("Progress 25%: Searching for research papers on gRPC Protocols..."),
        "{first}"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = finish(child);
    assert_fails(
        &output,
        130,
        &[&format!("error: {}: CANCELLED: interrupted", server.target)],
    );
}

#[test]
fn tls_flags_reach_the_server_or_get_one_line_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    // Self-signed for "localhost": the certificate is its own CA.
    let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (
        write("server.pem", server.cert.pem()),
        write("server.key", server.key_pair.serialize_pem()),
    );
    let (ca, other_ca) = (cert.clone(), write("other.pem", stranger.cert.pem()));
    let tls = learning_messenger::server::TlsIdentity {
        cert: cert.into(),
        key: key.into(),
    };
    let server = TestServer::with_config(ServerConfig {
        tls: Some(tls),
        delay: Duration::ZERO,
        ..test_config()
    });

    let trusted = [
        "--tls-ca",
        &ca,
        "--tls-server-name",
        "localhost",
        "--timeout-ms",
        "20000",
    ];
    let output = run(&server.target, &[&["status"][..], &trusted].concat(), None);
    assert_ok(&output);
    assert!(stdout(&output).starts_with("Server Response: "));

    for refused in [
        &["status", "--timeout-ms", "20000"][..],
        &[
            "status",
            "--tls-ca",
            &other_ca,
            "--tls-server-name",
            "localhost",
        ],
    ] {
        let output = run(&server.target, refused, None);
        assert_fails(
            &output,
            1,
            &[&format!("error: {}: UNAVAILABLE", server.target)],
        );
    }
}

#[test]
fn health_exits_0_only_for_serving_with_a_code_for_each_other_outcome() {
    use learning_messenger::proto::health::health_check_response::ServingStatus;
    let server = TestServer::start();
    let serving = run(&server.target, &["health"], None);
    assert_ok(&serving);
    assert_eq!(stdout(&serving), "status: SERVING\n");
    let messenger = ["health", "--service", "messenger.LearningMessenger"];
    assert_ok(&run(&server.target, &messenger, None));

    server
        .running()
        .health()
        .set_status("resting", ServingStatus::NOT_SERVING);
    let resting = run(&server.target, &["health", "--service", "resting"], None);
    assert_eq!(stdout(&resting), "status: NOT_SERVING\n");
    assert_fails(&resting, 4, &["NOT_SERVING"]);

    let unknown = run(&server.target, &["health", "--service", "nope"], None);
    assert_fails(&unknown, 5, &["unknown service \"nope\""]);

    let json = run(&server.target, &["health", "--json"], None);
    assert_eq!(
        json_lines(&json),
        [serde_json::json!({"rpc": "grpc.health.v1.Health", "message": {"status": "SERVING"}})]
    );

    let gone = format!("127.0.0.1:{}", crate::support::free_port());
    let unreachable = run(&gone, &["health", "--timeout-ms", "2000"], None);
    assert_fails(&unreachable, 1, &[&gone]);
}

#[test]
fn health_watch_prints_each_change_until_the_stream_ends() {
    let server = TestServer::start();
    let mut child = client(&server.target, &["health", "--watch"])
        .spawn()
        .expect("client starts");
    let lines = lines_of(child.stdout.take().unwrap());
    assert_eq!(
        lines.recv_timeout(PATIENCE).as_deref(),
        Ok("status: SERVING")
    );
    // A graceful stop turns health NOT_SERVING and ends the watch.
    server.stop(Duration::from_secs(30));
    assert_eq!(
        lines.recv_timeout(PATIENCE).as_deref(),
        Ok("status: NOT_SERVING")
    );
    let output = finish(child);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
}

#[test]
fn a_bad_target_or_service_config_is_one_line_and_exit_2_before_any_call() {
    let server = TestServer::start();
    for (target, why) in [
        (
            "ipv4:localhost:50051",
            "\"localhost\" is not an IPv4 address",
        ),
        ("localhost", "no :PORT"),
        ("http://localhost:50051", "unknown scheme \"http\""),
        ("unix:", "no socket path"),
    ] {
        let output = run(target, &["status"], None);
        assert_fails(&output, 2, &[&format!("bad target {target:?}: {why}")]);
    }
    // Not JSON: said where.
    let output = run(&server.target, &["--service-config", "{lb", "status"], None);
    assert_fails(
        &output,
        2,
        &["the service config is not JSON: key must be a string at line 1 column 2"],
    );
    // JSON that C-core refuses: it makes no channel, and we say so.
    for config in [
        r#"{"loadBalancingConfig": [{"no_such_policy": {}}]}"#,
        r#"{"methodConfig": [{"name": [{"service": "messenger.LearningMessenger"}], "retryPolicy": {"maxAttempts": "many"}}]}"#,
    ] {
        let output = run(
            &server.target,
            &["--service-config", config, "status"],
            None,
        );
        assert_fails(
            &output,
            2,
            &["gRPC refused to create the channel: the service config is not valid"],
        );
    }
    // A valid one is used.
    let config = r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#;
    assert_ok(&run(
        &server.target,
        &["--service-config", config, "status"],
        None,
    ));
}

#[test]
fn show_replica_prints_the_replica_of_each_call_and_the_other_targets_reach_it() {
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        replica_name: Some("replica-7".to_owned()),
        ..test_config()
    });
    let port = server.running().port();
    for target in [
        server.target.clone(),
        format!("dns:///127.0.0.1:{port}"),
        format!("ipv4:127.0.0.1:{port}"),
    ] {
        let output = run(&target, &["--show-replica", "status"], None);
        assert_ok(&output);
        assert_eq!(
            stdout(&output),
            "Served by: replica-7\nServer Response: System ready for research. Status check OK. (Active: True)\n",
            "{target}"
        );
    }
    // A Unix socket, named by its address.
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", dir.path().join("messenger.sock").display());
    let _on_socket = TestServer::with_config(ServerConfig {
        addr: socket.clone(),
        ..test_config()
    });
    let output = run(&socket, &["--show-replica", "status"], None);
    assert_ok(&output);
    assert!(
        stdout(&output).starts_with(&format!("Served by: {socket}\n")),
        "{}",
        stdout(&output)
    );
    let output = run(
        &server.target,
        &[
            "--show-replica",
            "--lb",
            "round_robin",
            "--max-attempts",
            "3",
            "--wait-for-ready",
            "--delay-ms",
            "0",
        ],
        None,
    );
    assert_ok(&output);
    let text = mask_times(&stdout(&output));
    assert_eq!(text.matches("Served by: replica-7\n").count(), 4, "{text}");
    // Without the flag, nothing of it: the lab's transcript.
    let output = run(
        &server.target,
        &["--lb", "round_robin", "--delay-ms", "0"],
        None,
    );
    assert_eq!(mask_times(&stdout(&output)), LAB_TRANSCRIPT);
    let output = run(&server.target, &["--show-replica", "health"], None);
    assert!(
        stdout(&output).starts_with("Served by: replica-7\n"),
        "{}",
        stdout(&output)
    );
    let output = run(&server.target, &["--json", "--show-replica", "learn"], None);
    assert_eq!(
        json_lines(&output)[0],
        serde_json::json!({"rpc": "StreamLearnings", "served_by": "replica-7"})
    );
}

#[test]
fn wait_for_ready_waits_for_a_server_that_comes_up_late() {
    let port = crate::support::free_port();
    let target = format!("127.0.0.1:{port}");
    // No server yet: the port takes the client's first attempt and closes
    // it. Without --wait-for-ready the call would fail on that.
    let refusing = std::net::TcpListener::bind(&target).unwrap();
    refusing.set_nonblocking(true).unwrap();
    let child = client(
        &target,
        &["--wait-for-ready", "--timeout-ms", "60000", "status"],
    )
    .spawn()
    .expect("client starts");
    let attempted = crate::support::wait_until(PATIENCE, || refusing.accept().is_ok());
    assert!(attempted, "the client never tried to connect");
    drop(refusing);
    let _server = TestServer::with_config(ServerConfig {
        addr: target.clone(),
        ..test_config()
    });
    let output = finish(child);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("Status check OK"),
        "{}",
        stdout(&output)
    );
}
