//! The lab's promise of many concurrent calls on one connection, kept by the
//! server's defaults: an independent client (Python's grpcio) runs 200
//! StreamLearnings at once on one channel against a server started with no
//! flags, and every one of them starts before any ends. (With the old
//! default of 100 streams per connection, the second hundred waited for the
//! first.) The times are figures for docs/http2-floods.md, not asserted.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{project_root, run_bounded, venv_program, ServerProcess};

#[test]
fn two_hundred_streams_of_an_independent_client_run_at_once_with_no_flags() {
    // The lab's 1 s pause between updates: a call lasts about 4 s.
    let server = ServerProcess::start(&[]);
    let mut command = Command::new(venv_program("python3"));
    command
        .arg("tests/harness/concurrent_streams.py")
        .args(["--target", &server.target, "--streams", "200"])
        .current_dir(project_root());
    let output = run_bounded(command, Duration::from_secs(120));
    assert!(
        output.status.is_some_and(|s| s.success()),
        "concurrent_streams.py: {:?}\n{}\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    let report: Value = serde_json::from_str(output.stdout.trim()).expect("a JSON report");
    println!("200 concurrent StreamLearnings (Python grpcio, one channel): {report}");
    assert_eq!(report["failures"], 0, "{report}");
    assert_eq!(report["updates"], 800, "{report}");
    assert_eq!(report["concurrent"], true, "{report}");
}
