//! One end per stream (RFC 9113 5.1): every way a call can be refused or cut,
//! watched by a strict HTTP/2 client (tests/harness/strict_h2.py: Python's h2 is
//! fed every byte the server sends, and the frames are checked one by one).
//! Each refused call gets exactly one trailers HEADERS, with the status that
//! says why, and nothing after a RST_STREAM; a cancelled call gets nothing
//! after the client's RST_STREAM.

use crate::strict_h2::{assert_one_end, strict_h2, strict_h2_one};
use crate::support::ServerProcess;

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
    let reports = strict_h2(&server.target, &cases);
    assert_eq!(reports.len(), cases.len(), "{reports:?}");
    for (report, (case, status)) in reports.iter().zip(expected) {
        println!("{case}: {report}");
        assert_one_end(report, status);
    }
    // A server that answered with one end answers the next call.
    let ok = &strict_h2_one(&server.target, &["ok"]);
    assert_one_end(ok, 0);
}

#[test]
fn a_cancelled_call_gets_nothing_after_the_clients_reset() {
    let server = ServerProcess::start(&["--delay-ms", "60000"]);
    let report = &strict_h2_one(&server.target, &["cancel"]);
    assert_eq!(report["violations"], serde_json::json!([]), "{report}");
    assert_eq!(report["trailers"], 0, "{report}");
    assert_eq!(report["rst_stream"], serde_json::json!([]), "{report}");
}

#[test]
fn a_call_over_the_limit_on_calls_in_flight_ends_once() {
    // One call in flight at most: the case's first StreamLearnings holds it.
    let server = ServerProcess::start(&["--delay-ms", "60000", "--max-calls-in-flight", "1"]);
    let report = &strict_h2_one(&server.target, &["busy"]);
    assert_one_end(report, 8);
    assert!(
        report["grpc_message"]
            .as_str()
            .is_some_and(|message| message.contains("calls in flight")),
        "{report}"
    );
}
