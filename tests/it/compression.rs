//! Per-message compression (gzip, deflate) both ways: our client and the
//! Python reference compressing their requests, the server its answers only
//! with what each client accepts (seen on the wire by tests/harness/compression_probe.py,
//! a raw HTTP/2 client), and a gzip bomb refused without its decompressed
//! size ever being allocated (patches/grpcio-sys/0002).

use std::process::Command;
use std::time::Duration;

use learning_messenger::compression::Compression;
use learning_messenger::server::ServerConfig;
use serde_json::Value;

use crate::support::{
    mask_times, project_root, python_stubs, run_bounded, status_of, test_config, venv_program,
    PeakWatcher, ServerProcess, TestServer, LAB_TRANSCRIPT,
};

const ALGORITHMS: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Deflate];
/// How long one client or probe run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const STATUS_MESSAGE: &str = "System ready for research. Status check OK.";
const LAB_SUMMARY: &str = "Processed 4 notes. Key takeaway: Note 4: Typed interface contracts";
/// The bomb: a note of 64 MiB of "a", about 64 KiB once gzipped.
const BOMB_BYTES: usize = 64 << 20;
/// A note under the 4 MiB default limit, compressed as well.
const UNDER_LIMIT_BYTES: usize = 3 << 20;
/// The most the server's RSS may grow while refusing the bomb.
const BOMB_MARGIN_KIB: u64 = 32 * 1024;
/// grpc-status RESOURCE_EXHAUSTED.
const RESOURCE_EXHAUSTED: i64 = 8;

/// Our `client` binary's four demos, delays off, requests compressed with `compression`.
fn our_client(target: &str, compression: Compression, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_client"));
    command
        .args(["--target", target, "--delay-ms", "0"])
        .args(["--compression", &compression.to_string()])
        .args(args);
    let output = run_bounded(command, RUN_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "client --compression {compression} {args:?} against {target}: {:?}\n\
         --- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    output.stdout
}

#[test]
fn our_client_prints_the_lab_transcript_with_every_compression_both_ways() {
    let big = "a".repeat(3000);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{big}\n")).unwrap();
    let big_note = file.path().display().to_string();
    for answers in ALGORITHMS {
        let server = TestServer::with_config(ServerConfig {
            delay: Duration::ZERO,
            compression: answers,
            ..test_config()
        });
        for requests in ALGORITHMS {
            let stdout = our_client(&server.target, requests, &[]);
            assert_eq!(
                mask_times(&stdout),
                LAB_TRANSCRIPT,
                "server compressing with {answers}, client with {requests}"
            );
            // The lab's messages are too small to be worth compressing: a
            // big note is compressed both ways (its summary echoes it).
            let summary = our_client(&server.target, requests, &["upload", &big_note]);
            assert_eq!(
                summary,
                format!("Server Summary: Processed 1 notes. Key takeaway: {big} (Total 1)\n"),
                "server compressing with {answers}, client with {requests}"
            );
        }
    }
}

/// The raw HTTP/2 probe: one JSON object per CALL (see tests/harness/compression_probe.py).
fn probe(target: &str, calls: &[&str]) -> Vec<Value> {
    let mut command = Command::new(venv_program("python3"));
    command
        .arg(project_root().join("tests/harness/compression_probe.py"))
        .args(["--target", target])
        .args(calls)
        .env("PYTHONUNBUFFERED", "1");
    let output = run_bounded(command, RUN_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "compression_probe.py {calls:?}: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    let results: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line from the probe"))
        .collect();
    assert_eq!(
        results.len(),
        calls.len(),
        "probe output:\n{}",
        output.stdout
    );
    for result in &results {
        println!("{result}");
    }
    results
}

/// What a probed call must have seen: the answers' `grpc-encoding` header
/// (None: absent or identity), each message's compressed flag, and right answers.
fn assert_wire(result: &Value, encoding: Option<&str>, flags: &[u64]) {
    let call = &result["call"];
    assert_eq!(result["grpc_status"], 0, "{call}: {result}");
    let seen = result["grpc_encoding"]
        .as_str()
        .filter(|e| *e != "identity");
    assert_eq!(seen, encoding, "{call}: grpc-encoding in {result}");
    let seen_flags: Vec<u64> = result["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap())
        .collect();
    assert_eq!(seen_flags, flags, "{call}: compressed flags in {result}");
    let answers = result["answers"].as_array().unwrap();
    let text = |i: usize, field: &str| answers[i][field].as_str().unwrap_or_default().to_owned();
    let lab = call.as_str().unwrap().split(':').count() < 4;
    match result["method"].as_str().unwrap() {
        "GetLearningStatus" => {
            assert_eq!(text(0, "message"), STATUS_MESSAGE, "{call}: {result}");
            assert_eq!(answers[0]["active"], 1, "{call}: {result}");
        }
        "StreamLearnings" => {
            let progress: Vec<i64> = answers
                .iter()
                .map(|a| a["progress"].as_i64().unwrap())
                .collect();
            assert_eq!(progress, [25, 50, 75, 100], "{call}: {result}");
        }
        "SubmitResearchNotes" if lab => {
            assert_eq!(text(0, "final_summary"), LAB_SUMMARY, "{call}: {result}");
        }
        "SubmitResearchNotes" => {
            let summary = text(0, "final_summary");
            assert!(
                summary.starts_with("Processed 1 notes. Key takeaway: aaaa"),
                "{call}: {result}"
            );
        }
        "CollaborativeFeed" => {
            assert_eq!(answers.len(), 3, "{call}: {result}");
            assert!(
                text(0, "message").starts_with("Acknowledged Engineer's update: "),
                "{call}: {result}"
            );
        }
        other => panic!("unexpected method {other}"),
    }
}

/// Probes `target` with each call and checks what it saw: (call, grpc-encoding, flags).
fn probe_and_check(target: &str, cases: &[(&str, Option<&str>, &[u64])]) -> Vec<Value> {
    let calls: Vec<&str> = cases.iter().map(|case| case.0).collect();
    let results = probe(target, &calls);
    for (result, (_, encoding, flags)) in results.iter().zip(cases) {
        assert_wire(result, *encoding, flags);
    }
    results
}

// SIZE 2000 (the 4th part of a call) makes the first two StreamLearnings
// updates echo a 2 KiB topic and the feed echoes a 1 KiB message: worth
// compressing. The lab's answers are a few dozen bytes, which C-core sends
// uncompressed (flag 0) under the grpc-encoding header: they would grow.
const GZIP: Option<&str> = Some("gzip");
const DEFLATE: Option<&str> = Some("deflate");
const BIG_TOPIC: &[u64] = &[1, 1, 0, 0];
const PLAIN_UPDATES: &[u64] = &[0, 0, 0, 0];

#[test]
fn answers_are_compressed_only_with_what_the_client_accepts() {
    let gzip = ServerProcess::start(&["--delay-ms", "0", "--compression", "gzip"]);
    let results = probe_and_check(
        &gzip.target,
        &[
            ("unary:gzip", GZIP, &[0]),
            ("stream:gzip", GZIP, PLAIN_UPDATES),
            ("stream:gzip:identity:2000", GZIP, BIG_TOPIC),
            // C-core picks what the client accepts, whatever the server prefers.
            ("unary:deflate", DEFLATE, &[0]),
            ("stream:deflate:identity:2000", DEFLATE, BIG_TOPIC),
            ("stream:gzip,deflate:identity:2000", GZIP, BIG_TOPIC),
            // A client that accepts nothing: plain answers, no error.
            ("unary:identity", None, &[0]),
            ("stream:identity:identity:2000", None, PLAIN_UPDATES),
            // Compressed requests (flag 1), answered.
            ("notes:gzip:gzip", GZIP, &[0]),
            ("notes:gzip:deflate:3000", GZIP, &[1]),
            ("feed:gzip:gzip:1000", GZIP, &[1, 1, 1]),
            ("feed:identity:deflate:1000", None, &[0, 0, 0]),
        ],
    );
    let wire = |i: usize| results[i]["response_wire_bytes"].as_u64().unwrap();
    assert!(
        wire(2) * 4 < wire(7),
        "gzipped answers {} bytes, plain ones {}",
        wire(2),
        wire(7)
    );
    for i in [8, 9, 10] {
        assert!(
            results[i]["sent_grpc_encoding"].is_string(),
            "{}",
            results[i]
        );
    }

    let deflate = ServerProcess::start(&["--delay-ms", "0", "--compression", "deflate"]);
    probe_and_check(
        &deflate.target,
        &[
            ("unary:gzip,deflate", DEFLATE, &[0]),
            ("stream:gzip,deflate:identity:2000", DEFLATE, BIG_TOPIC),
            ("stream:gzip:identity:2000", GZIP, BIG_TOPIC),
            ("stream:identity:identity:2000", None, PLAIN_UPDATES),
            ("notes:deflate:gzip:3000", DEFLATE, &[1]),
        ],
    );

    let none = ServerProcess::start(&["--delay-ms", "0", "--compression", "none"]);
    probe_and_check(
        &none.target,
        &[
            ("unary:gzip", None, &[0]),
            ("stream:gzip,deflate:identity:2000", None, PLAIN_UPDATES),
            ("notes:gzip:gzip:3000", None, &[0]),
            ("feed:gzip:deflate:1000", None, &[0, 0, 0]),
        ],
    );
}

#[test]
fn the_python_reference_client_compressing_with_gzip_and_deflate_is_answered() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let server = ServerProcess::start(&["--delay-ms", "0", "--compression", "gzip"]);
    let mut command = Command::new(venv_program("python3"));
    command
        .arg(project_root().join("tests/harness/compression_client.py"))
        .args(["--target", &server.target, "--stubs"])
        .arg(stubs.path())
        .env("PYTHONUNBUFFERED", "1");
    let output = run_bounded(command, RUN_TIMEOUT);
    println!("{}", output.stdout);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "compression_client.py: {:?}\n--- stdout ---\n{}--- stderr ---\n{}--- server log ---\n{}",
        output.status,
        output.stdout,
        output.stderr,
        server.log()
    );
    for algorithm in ["gzip", "deflate"] {
        assert!(
            output
                .stdout
                .contains(&format!("{algorithm} client streaming: {LAB_SUMMARY}")),
            "{}",
            output.stdout
        );
    }
    assert!(
        output.stdout.ends_with("all answers right\n"),
        "{}",
        output.stdout
    );
}

/// The peak RSS (VmHWM) of a process, in KiB; reset first by [`reset_peak_rss`].
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Sets a process's VmHWM back to its current RSS (clear_refs 5); says whether it could.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[test]
fn a_gzip_bomb_is_refused_without_allocating_its_decompressed_size() {
    let server = ServerProcess::start(&["--delay-ms", "0"]);
    let pid = server.pid();
    // A first call, so that the connection machinery is already in the RSS.
    our_client(&server.target, Compression::None, &["status"]);
    let before = status_of(pid);
    let hwm_reset = reset_peak_rss(pid);
    let hwm_before = peak_rss_kib(pid);
    let watcher = PeakWatcher::start(pid);
    let bomb = format!("notes:gzip:gzip:{BOMB_BYTES}");
    let deflate_bomb = format!("notes:gzip:deflate:{BOMB_BYTES}");
    let results = probe(&server.target, &[&bomb, &deflate_bomb]);
    let peak = watcher.stop();
    let hwm_after = peak_rss_kib(pid);
    println!(
        "bombs: RSS {:.1} MiB, peak {:.1} MiB (sampled), VmHWM {} -> {} KiB (reset: {hwm_reset})",
        before.rss_mib(),
        peak.rss_mib(),
        hwm_before,
        hwm_after
    );
    for result in &results {
        let wire = result["request_wire_bytes"].as_u64().unwrap();
        assert!(wire < 128 * 1024, "the bomb is small on the wire: {result}");
        assert_eq!(result["grpc_status"], RESOURCE_EXHAUSTED, "{result}");
        let message = result["grpc_message"].as_str().unwrap_or_default();
        assert!(
            message.contains("once decompressed"),
            "refused while decompressing: {result}"
        );
    }
    assert!(
        peak.rss_kib <= before.rss_kib + BOMB_MARGIN_KIB,
        "peak RSS {:.1} MiB, started at {:.1} MiB",
        peak.rss_mib(),
        before.rss_mib()
    );
    // VmHWM catches a spike between two samples too.
    assert!(
        hwm_after <= hwm_before.max(before.rss_kib + BOMB_MARGIN_KIB),
        "VmHWM {hwm_after} KiB, RSS before {} KiB",
        before.rss_kib
    );

    // The server still answers, and a compressed note under the limit is taken.
    let status = our_client(&server.target, Compression::None, &["status"]);
    assert!(status.contains(STATUS_MESSAGE), "{status}");
    let under = format!("notes:gzip:gzip:{UNDER_LIMIT_BYTES}");
    let result = &probe(&server.target, &[&under])[0];
    assert_eq!(result["grpc_status"], 0, "{result}");
    assert_eq!(result["answers"][0]["count"], 1, "{result}");
    let summary = result["answers"][0]["final_summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Processed 1 notes. Key takeaway: aaaa"),
        "{result}"
    );
}
