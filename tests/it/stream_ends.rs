//! One end per stream (RFC 9113 5.1): every way a call can be refused or cut,
//! watched by a strict HTTP/2 client (python/strict_h2.py: Python's h2 is
//! fed every byte the server sends, and the frames are checked one by one).
//! Each refused call gets exactly one trailers HEADERS, with the status that
//! says why, and nothing after a RST_STREAM; a cancelled call gets nothing
//! after the client's RST_STREAM.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{project_root, run_bounded, venv_program, ServerProcess};

/// Runs `python/strict_h2.py --port PORT CASES` and parses its reports, one
/// JSON object per case.
fn strict_h2(server: &ServerProcess, cases: &[&str]) -> Vec<Value> {
    let port = server.target.rsplit(':').next().unwrap();
    let mut command = Command::new(venv_program("python3"));
    command
        .arg("python/strict_h2.py")
        .args(["--port", port])
        .args(cases)
        .current_dir(project_root());
    let output = run_bounded(command, Duration::from_secs(120));
    // Exit 1 means violations, which the reports name; anything else is a failure to run.
    assert!(
        output
            .status
            .is_some_and(|s| matches!(s.code(), Some(0 | 1))),
        "strict_h2.py {cases:?}: {:?}\n{}\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    let reports: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON report"))
        .collect();
    assert_eq!(reports.len(), cases.len(), "{}", output.stdout);
    reports
}

/// The case ended with one trailers HEADERS carrying `status`, and nothing
/// broke the one-end rule.
fn assert_one_end(report: &Value, status: u64) {
    let case = &report["case"];
    assert_eq!(
        report["violations"],
        serde_json::json!([]),
        "{case}: {report}"
    );
    assert_eq!(report["trailers"], 1, "{case}: {report}");
    assert_eq!(report["grpc_status"], status, "{case}: {report}");
}

#[test]
fn every_refusal_and_cut_ends_its_stream_once() {
    // Updates 60 s apart: the deadline and the cancel come first. Rooms of
    // one, so that a second participant is refused.
    let server = ServerProcess::start(&["--delay-ms", "60000", "--max-room-size", "1"]);
    let expected = [
        ("ok", 0),
        ("oversize", 8),
        ("oversize-gzip", 8),
        ("bomb", 8),
        ("malformed", 13),
        ("malformed-gzip", 13),
        ("oversize-upload", 8),
        ("big-header", 8),
        ("unimplemented", 12),
        ("deadline", 4),
        ("room-name", 3),
        ("room-full", 8),
    ];
    let cases: Vec<&str> = expected.iter().map(|(case, _)| *case).collect();
    for (report, (case, status)) in strict_h2(&server, &cases).iter().zip(expected) {
        println!("{case}: {report}");
        assert_one_end(report, status);
    }
    // A server that answered with one end answers the next call.
    let [ok] = &strict_h2(&server, &["ok"])[..] else {
        unreachable!()
    };
    assert_one_end(ok, 0);
}

#[test]
fn a_cancelled_call_gets_nothing_after_the_clients_reset() {
    let server = ServerProcess::start(&["--delay-ms", "60000"]);
    let [report] = &strict_h2(&server, &["cancel"])[..] else {
        unreachable!()
    };
    assert_eq!(report["violations"], serde_json::json!([]), "{report}");
    assert_eq!(report["trailers"], 0, "{report}");
    assert_eq!(report["rst_stream"], serde_json::json!([]), "{report}");
}

#[test]
fn a_call_over_the_limit_on_calls_in_flight_ends_once() {
    // One call in flight at most: the case's first StreamLearnings holds it.
    let server = ServerProcess::start(&["--delay-ms", "60000", "--max-calls-in-flight", "1"]);
    let [report] = &strict_h2(&server, &["busy"])[..] else {
        unreachable!()
    };
    assert_one_end(report, 8);
    assert!(
        report["grpc_message"]
            .as_str()
            .is_some_and(|message| message.contains("calls in flight")),
        "{report}"
    );
}
