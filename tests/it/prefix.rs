//! A request is checked before it is held (issue 27, part 2): the patched
//! C-core (patch 0006) judges each request message by its 5-byte gRPC length
//! prefix as soon as the prefix arrives. A message declaring more than
//! `--max-message-bytes` (its compressed size, if compressed), or more than
//! `--max-request-bytes-in-flight` has left, gets RESOURCE_EXHAUSTED at once,
//! one trailers and a RST_STREAM NO_ERROR, and no window: its body is never
//! held. Watched by the strict HTTP/2 client (tests/harness/strict_h2.py)
//! and, for memory, by a raw h2 flood (tests/harness/floods.py `declared`) with the server's
//! RSS read from /proc.

use std::time::Duration;

use grpcio::CallOption;
use learning_messenger::proto::messenger::StatusRequest;
use serde_json::{json, Value};

use crate::auth::{claims, Issuer, Key};
use crate::strict_h2::strict_h2;
use crate::support::{wait_until, PeakWatcher, ServerProcess};

/// What 200 refused streams may add to the server's RSS (the bound).
const PEAK_MARGIN_KIB: u64 = 64 * 1024;
/// How long each refused stream may wait for its status, from its prefix
/// (the bound; the refusals come in milliseconds).
const STATUS_WITHIN_S: f64 = 5.0;

/// The case was refused at its prefix: one trailers-only answer with
/// RESOURCE_EXHAUSTED and the message that says why, then RST_STREAM
/// NO_ERROR (the client was still sending), and nothing else on the stream:
/// no DATA, no WINDOW_UPDATE, nothing after the end.
fn assert_refused_at_prefix(report: &Value, message: &str) {
    let case = &report["case"];
    assert_eq!(report["violations"], json!([]), "{case}: {report}");
    assert_eq!(report["grpc_status"], 8, "{case}: {report}");
    assert_eq!(
        report["frames"],
        json!(["HEADERS+END_STREAM", "RST_STREAM(NO_ERROR)"]),
        "{case}: {report}"
    );
    assert!(
        report["grpc_message"]
            .as_str()
            .is_some_and(|m| m.contains(message)),
        "{case}: {report}"
    );
}

const DECLARED_PLAIN: &str = "request message larger than max (1073741824 vs. 4194304 bytes)";
const DECLARED_GZIP: &str =
    "compressed request message larger than max (1073741824 vs. 4194304 bytes)";

/// The declared-oversize cases, unary and streaming, plain and gzip, and
/// the message each must be refused with.
const DECLARED_CASES: [(&str, &str); 4] = [
    ("declared-oversize", DECLARED_PLAIN),
    ("declared-oversize-gzip", DECLARED_GZIP),
    ("declared-oversize-upload", DECLARED_PLAIN),
    ("declared-oversize-feed", DECLARED_GZIP),
];

fn run_declared_cases(server: &ServerProcess, cases: &[(&str, &str)], flags: &[&str]) {
    let names: Vec<&str> = cases.iter().map(|(case, _)| *case).collect();
    let reports = strict_h2(&server.target, &[flags, &names[..]].concat());
    assert_eq!(reports.len(), cases.len(), "{reports:?}");
    for (report, (case, message)) in reports.iter().zip(cases) {
        println!("{case}: {report}");
        assert_refused_at_prefix(report, message);
    }
}

/// A server requiring tokens from `issuer`.
fn server_with_auth(issuer: &Issuer, extra: &[&str]) -> ServerProcess {
    let delay = ["--delay-ms", "0"];
    ServerProcess::start(&[&delay[..], &issuer.server_flags(), extra].concat())
}

#[test]
fn a_declared_length_over_the_limit_is_refused_at_its_prefix_once() {
    let server = ServerProcess::start(&["--delay-ms", "0"]);
    run_declared_cases(&server, &DECLARED_CASES, &[]);
    // The connection's other calls go on: a valid call after the refusals.
    let ok = strict_h2(&server.target, &["ok"]);
    assert_eq!(ok[0]["grpc_status"], 0, "{ok:?}");
}

#[test]
fn with_auth_on_the_prefix_is_refused_with_or_without_a_token() {
    let issuer = Issuer::generate();
    let server = server_with_auth(&issuer, &[]);
    // No token: a unary call's request is judged before its handler (and the
    // token check) runs, so the prefix is what refuses it.
    run_declared_cases(&server, &DECLARED_CASES[..2], &[]);
    // A valid token: every pattern is refused at the prefix all the same.
    let token = issuer.sign(Key::Es256, &claims("ann", json!({})));
    let header = format!("authorization=Bearer {token}");
    run_declared_cases(&server, &DECLARED_CASES, &["--header", &header]);
}

#[test]
fn a_request_over_the_budget_is_refused_at_its_prefix_and_the_budget_comes_back() {
    // A budget of two largest messages: two held uploads fill it.
    let budget = (8 << 20).to_string();
    let server =
        ServerProcess::start(&["--delay-ms", "0", "--max-request-bytes-in-flight", &budget]);
    let reports = strict_h2(&server.target, &["over-budget"]);
    println!("{reports:?}");
    let [report] = &reports[..] else {
        panic!("{reports:?}")
    };
    assert_refused_at_prefix(
        report,
        "request message of 4194304 bytes refused: the server holds 8388608 request bytes in flight, its limit 8388608",
    );
    // The holders' connection is gone: their places come back, and large
    // requests one after another (each given back when its handler gets
    // it) all pass, far more than the budget in all.
    let client = server
        .client()
        .with_options(CallOption::default().timeout(Duration::from_secs(10)));
    let big = StatusRequest {
        user_id: "b".repeat(3 << 20),
        ..Default::default()
    };
    let freed = wait_until(Duration::from_secs(10), || {
        client.get_learning_status(&big).is_ok()
    });
    assert!(freed, "the budget did not come back after its holders left");
    for i in 0..10 {
        if let Err(e) = client.get_learning_status(&big) {
            panic!("large request {i} after the first: {e:?}");
        }
    }
}

/// 200 unary calls on one connection, each declaring 1 GiB and trying to
/// send 8 MiB (the attack), against a server started with `args`:
/// every stream gets RESOURCE_EXHAUSTED within [`STATUS_WITHIN_S`], no
/// stream gets any window, and the server's RSS stays within
/// [`PEAK_MARGIN_KIB`] of its rest.
fn two_hundred_declared_gibibytes(server: &ServerProcess) {
    let pid = server.pid();
    let before = server.status();
    let peak = PeakWatcher::start(pid);
    let port = server.target.rsplit(':').next().unwrap().parse().unwrap();
    let report = crate::floods::run_flood(port, "declared", &["--streams", "200"]);
    let peak = peak.stop();
    println!(
        "declared: RSS {:.1} -> peak {:.1} MiB\n{report}",
        before.rss_mib(),
        peak.rss_mib()
    );
    assert_eq!(report["status_of_streams"], json!({"8": 200}), "{report}");
    let slowest = report["slowest_status_s"].as_f64().unwrap();
    assert!(slowest <= STATUS_WITHIN_S, "{report}");
    assert_eq!(report["window_updates_on_streams"], 0, "{report}");
    assert!(
        peak.rss_kib <= before.rss_kib + PEAK_MARGIN_KIB,
        "peak RSS {:.1} MiB, at rest {:.1} MiB",
        peak.rss_mib(),
        before.rss_mib()
    );
}

#[test]
#[ignore = "slow: a flood of 200 streams (run by scripts/test.sh)"]
fn two_hundred_streams_declaring_a_gibibyte_hold_no_memory() {
    let server = ServerProcess::start(&["--delay-ms", "0"]);
    two_hundred_declared_gibibytes(&server);
    // The server still answers.
    let answered = server
        .client()
        .with_options(CallOption::default().timeout(Duration::from_secs(5)))
        .get_learning_status(&StatusRequest::default());
    assert!(answered.is_ok(), "{answered:?}");
}

#[test]
#[ignore = "slow: a flood of 200 streams (run by scripts/test.sh)"]
fn two_hundred_anonymous_streams_declaring_a_gibibyte_hold_no_memory_with_auth_on() {
    let issuer = Issuer::generate();
    let server = server_with_auth(&issuer, &[]);
    two_hundred_declared_gibibytes(&server);
}
