//! The strict HTTP/2 client (tests/harness/strict_h2.py: Python's h2 is fed
//! every byte the server sends, and the frames are checked one by one), for
//! the tests of refusals: each case's report, and the one-end assertion.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{project_root, run_bounded, venv_program};

/// Runs `strict_h2.py --port PORT ARGS` against `target` (ARGS: its cases,
/// and the flags of the case `call`) and parses its reports, one JSON object
/// per case.
pub(crate) fn strict_h2(target: &str, args: &[&str]) -> Vec<Value> {
    let port = target.rsplit(':').next().unwrap();
    let mut command = Command::new(venv_program("python3"));
    command
        .arg(project_root().join("tests/harness/strict_h2.py"))
        .args(["--port", port])
        .args(args);
    // Exit 1 means violations, which the reports name; anything else is a failure to run.
    run_bounded(command, Duration::from_secs(120))
        .json_lines(&format!("strict_h2.py {args:?}"), |s| {
            matches!(s.code(), Some(0 | 1))
        })
}

/// The one report of a run of one case.
pub(crate) fn strict_h2_one(target: &str, args: &[&str]) -> Value {
    let mut reports = strict_h2(target, args);
    assert_eq!(reports.len(), 1, "strict_h2.py {args:?}: {reports:?}");
    reports.remove(0)
}

/// The case ended with one trailers HEADERS carrying `status`, and nothing
/// broke the one-end rule: nothing after RST_STREAM, and after END_STREAM at
/// most the RST_STREAM that tells a client still sending to stop (RFC 9113, 8.1).
pub(crate) fn assert_one_end(report: &Value, status: u64) {
    let case = &report["case"];
    assert_eq!(
        report["violations"],
        serde_json::json!([]),
        "{case}: {report}"
    );
    assert_eq!(report["trailers"], 1, "{case}: {report}");
    assert_eq!(report["grpc_status"], status, "{case}: {report}");
}
