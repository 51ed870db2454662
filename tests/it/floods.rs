//! Raw HTTP/2 floods (tests/harness/floods.py, h2 in the project's .venv) against the
//! `server` binary, while a well-behaved client on its own connection keeps
//! making GetLearningStatus calls: every one of them must succeed, the server's
//! memory must stay bounded during the flood and come back after it, its CPU
//! must go back to idle, and the attacker must get what HTTP/2 (and the
//! patched C-core, docs/http2-floods.md) says. The bounds are generous on purpose.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use grpcio::CallOption;
use learning_messenger::proto::messenger::StatusRequest;
use serde_json::Value;

use crate::support::{project_root, venv_program, wait_until, PeakWatcher, ServerProcess};

/// Peak RSS during a flood, over the RSS before it.
const PEAK_MARGIN_KIB: u64 = 128 * 1024;
/// The same for the CONTINUATION flood: C-core parses and drops every header
/// byte the attacker sends (about a core's worth, 500 MB/s here), and its
/// read buffers grow with that rate; peaks of 114-151 MiB were seen, all
/// given back within a second or two of the end (docs/http2-floods.md).
const CONTINUATION_PEAK_MARGIN_KIB: u64 = 256 * 1024;
/// RSS after a flood (once the allocator has purged), over the RSS before it.
const AFTER_MARGIN_KIB: u64 = 32 * 1024;
/// How long memory and CPU may take to settle after a flood.
const SETTLE: Duration = Duration::from_secs(10);
/// Server CPU in one idle second after a flood, at most.
const IDLE_CPU_SECONDS: f64 = 0.3;
/// The legitimate client's deadline per call.
const LEGIT_DEADLINE: Duration = Duration::from_secs(5);
/// Any flood run is killed after this.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(90);

static ONE_FLOOD: Mutex<()> = Mutex::new(());

/// Runs `tests/harness/floods.py --port PORT FLOOD ARGS` and parses the JSON it prints.
pub(crate) fn run_flood(port: u16, flood: &str, args: &[&str]) -> Value {
    let root = project_root();
    let python = venv_program("python3");
    let mut child = Command::new(&python)
        .arg("tests/harness/floods.py")
        .args(["--port", &port.to_string(), flood])
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/bootstrap.sh): {e}",
                python.display()
            )
        });
    let exited = wait_until(FLOOD_TIMEOUT, || {
        child.try_wait().expect("try_wait").is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("flood output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        exited && output.status.success(),
        "floods.py {flood} failed ({:?}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("floods.py {flood} printed no JSON ({e}): {stdout}"))
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat has (comm)")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15; `fields[0]` is field 3 (state).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

/// GetLearningStatus calls one after another, each with a deadline, on the
/// client's own connection, until stopped: the failures and the count.
struct LegitClient {
    stop: Arc<AtomicBool>,
    calls: JoinHandle<(usize, Vec<String>)>,
}

impl LegitClient {
    fn start(server: &ServerProcess) -> LegitClient {
        let client = server
            .client()
            .with_options(CallOption::default().timeout(LEGIT_DEADLINE));
        let request = StatusRequest {
            user_id: "legit".to_owned(),
            ..Default::default()
        };
        // One call before the flood: the connection is up.
        client
            .get_learning_status(&request)
            .expect("the first legitimate call");
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let calls = std::thread::spawn(move || {
            let (mut ok, mut failures) = (0, Vec::new());
            while !stop_flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.get_learning_status(&request) {
                    Ok(_) => ok += 1,
                    Err(e) => failures.push(format!("after {:.2?}: {e:?}", started.elapsed())),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failures)
        });
        LegitClient { stop, calls }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failures) = self.calls.join().expect("legit client thread");
        assert!(
            failures.is_empty(),
            "{} of {} legitimate calls failed during the flood: {failures:?}",
            failures.len(),
            ok + failures.len()
        );
        assert!(ok > 0, "no legitimate call completed during the flood");
        ok
    }
}

/// Starts a server, floods it while a legitimate client calls, checks the
/// bounds, and gives back the flood's report for the flood's own checks.
fn flood(name: &str, args: &[&str]) -> Value {
    flood_within(name, args, PEAK_MARGIN_KIB)
}

/// [`flood`], with its own bound on the peak RSS over the start.
fn flood_within(name: &str, args: &[&str], peak_margin_kib: u64) -> Value {
    flood_server(&[], name, args, peak_margin_kib)
}

/// [`flood_within`], the server started with `server_args` too.
fn flood_server(server_args: &[&str], name: &str, args: &[&str], peak_margin_kib: u64) -> Value {
    // One flood at a time: two would share the two cores and blur the bounds.
    let _one_at_a_time = ONE_FLOOD.lock().unwrap_or_else(|e| e.into_inner());
    let server = ServerProcess::start(&[&["--delay-ms", "0"], server_args].concat());
    let pid = server.pid();
    let before = server.status();
    let legit = LegitClient::start(&server);
    let peak = PeakWatcher::start(pid);
    let cpu_start = cpu_seconds(pid);
    let port = server.target.rsplit(':').next().unwrap().parse().unwrap();
    let report = run_flood(port, name, args);
    let cpu_flood = cpu_seconds(pid) - cpu_start;
    let peak = peak.stop();
    let legit_calls = legit.stop();

    // Afterwards: CPU back to idle, memory back near where it was.
    let mut idle_cpu = f64::MAX;
    let idle = wait_until(SETTLE, || {
        let start = cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(1));
        idle_cpu = cpu_seconds(pid) - start;
        idle_cpu < IDLE_CPU_SECONDS
    });
    let returned = wait_until(SETTLE, || {
        server.status().rss_kib <= before.rss_kib + AFTER_MARGIN_KIB
    });
    let after = server.status();
    println!(
        "{name}: RSS {:.1} -> peak {:.1} -> {:.1} MiB, server CPU {cpu_flood:.2} s during, \
         {idle_cpu:.2} s in an idle second after; {legit_calls} legitimate calls OK\n{report}",
        before.rss_mib(),
        peak.rss_mib(),
        after.rss_mib()
    );
    assert!(
        peak.rss_kib <= before.rss_kib + peak_margin_kib,
        "{name}: peak RSS {:.1} MiB, started at {:.1} MiB",
        peak.rss_mib(),
        before.rss_mib()
    );
    assert!(
        idle,
        "{name}: server CPU still {idle_cpu:.2} s per second after the flood"
    );
    assert!(
        returned,
        "{name}: RSS {:.1} MiB {SETTLE:?} after the flood, started at {:.1} MiB",
        after.rss_mib(),
        before.rss_mib()
    );
    // The server still serves a new client.
    let serves = wait_until(crate::support::WAIT, || {
        server
            .client()
            .with_options(CallOption::default().timeout(LEGIT_DEADLINE))
            .get_learning_status(&StatusRequest::default())
            .is_ok()
    });
    assert!(serves, "{name}: a new client is not served after the flood");
    report
}

fn count(report: &Value, pointer: &str) -> u64 {
    report.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn a_rapid_reset_flood_is_sent_away_and_the_server_recovers() {
    let report = flood("rapid-reset", &["--seconds", "4"]);
    // The patched C-core (patch 0004): past the default budget of 100
    // streams reset before their calls start in a second, GOAWAY
    // ENHANCE_YOUR_CALM, and the connection is closed.
    assert!(count(&report, "/sent/streams") > 100, "{report}");
    assert_eq!(
        report["server"]["goaway"]["error"], "ENHANCE_YOUR_CALM",
        "{report}"
    );
    assert_eq!(report["server"]["goaway"]["debug"], "too_many_resets");
    assert!(
        !report["server"]["closed_by_server"].is_null(),
        "connection still open: {report}"
    );
}

#[test]
fn a_connection_that_keeps_opening_refused_streams_is_sent_away() {
    // Rounds of 2,000 calls, each round reset in the same write that opens
    // the next: more than 1,024 reset calls are unfinished when the new
    // HEADERS arrive, so patch 0001 refuses them, and past 100 refusals in a
    // second patch 0004 sends the connection away.
    let report = flood("late-reset", &["--seconds", "4"]);
    assert!(
        count(&report, "/server/rst_stream/REFUSED_STREAM") > 100,
        "{report}"
    );
    assert_eq!(
        report["server"]["goaway"]["error"], "ENHANCE_YOUR_CALM",
        "{report}"
    );
    assert_eq!(
        report["server"]["goaway"]["debug"],
        "too_many_refused_streams"
    );
}

#[test]
#[ignore = "slow: ~8 s of HEADERS + RST_STREAM"]
fn without_the_budget_a_rapid_reset_flood_is_refused_and_the_server_recovers() {
    // The first line of defence alone (patch 0001): streams over the
    // allowance of unfinished reset ones are refused, whatever the stream limit.
    let report = flood_server(
        &["--max-aborted-streams-per-second", "0"],
        "rapid-reset",
        &["--seconds", "4"],
        PEAK_MARGIN_KIB,
    );
    assert!(count(&report, "/sent/streams") > 1000, "{report}");
    assert!(
        count(&report, "/server/rst_stream/REFUSED_STREAM") > 0,
        "no REFUSED_STREAM: {report}"
    );
    assert!(report["server"]["goaway"].is_null(), "{report}");
}

#[test]
#[ignore = "slow: holds 500 stalled streams for seconds"]
fn streams_over_the_limit_with_a_zero_window_close_the_connection() {
    let report = flood_server(
        &["--max-concurrent-streams", "100"],
        "stall",
        &["--seconds", "4", "--streams", "500"],
        PEAK_MARGIN_KIB,
    );
    // More streams than the acknowledged MAX_CONCURRENT_STREAMS (100) in the
    // stream map: C-core ends the connection, cancelling the calls it had.
    assert_eq!(
        count(&report, "/server/server_settings/MAX_CONCURRENT_STREAMS"),
        100
    );
    assert!(
        !report["server"]["closed_by_server"].is_null(),
        "connection still open: {report}"
    );
    // With no window the server can send no DATA: no stalled call completes.
    // (How many it had ended before closing depends on timing: 101 in one
    // run, 200 in another, so it is not asserted.)
    assert_eq!(
        count(&report, "/server/grpc_status/0"),
        0,
        "a stalled stream was served: {report}"
    );
}

#[test]
fn a_ping_flood_gets_goaway_enhance_your_calm() {
    let report = flood("ping-flood", &["--seconds", "3", "--drain", "1"]);
    assert_eq!(
        report["server"]["goaway"]["error"], "ENHANCE_YOUR_CALM",
        "{report}"
    );
    assert_eq!(report["server"]["goaway"]["debug"], "too_many_pings");
}

#[test]
#[ignore = "slow: ~6 s of SETTINGS frames"]
fn a_settings_flood_is_acknowledged_at_the_readers_pace_and_memory_stays_flat() {
    let report = flood("settings-flood", &["--seconds", "4"]);
    // C-core acks every SETTINGS frame and has no limit on them in 1.56: the
    // flood is bounded by the attacker reading the acks (reading pauses
    // while too many induced frames are pending).
    assert!(count(&report, "/sent/frames") > 10_000, "{report}");
    assert!(
        count(&report, "/server/frames/SETTINGS_ACK") > 1,
        "{report}"
    );
}

#[test]
#[ignore = "slow: ~6 s of CONTINUATION frames"]
fn an_endless_continuation_flood_gets_resource_exhausted_and_memory_stays_flat() {
    let report = flood_within(
        "continuation-flood",
        &["--seconds", "4"],
        CONTINUATION_PEAK_MARGIN_KIB,
    );
    assert!(count(&report, "/sent/header_bytes") > 16 << 20, "{report}");
    // The header list goes over the limit: the stream is ended with
    // RESOURCE_EXHAUSTED; C-core keeps decoding (and dropping) the rest.
    assert!(
        count(&report, "/server/grpc_status/8") > 0,
        "no RESOURCE_EXHAUSTED: {report}"
    );
}

#[test]
fn a_one_mib_header_gets_resource_exhausted_and_the_connection_goes_on() {
    let report = flood("big-headers", &["--seconds", "2", "--drain", "1"]);
    assert!(
        count(&report, "/server/grpc_status/8") > 0,
        "no RESOURCE_EXHAUSTED: {report}"
    );
    // The normal request after it, on the same connection, is answered OK.
    assert!(count(&report, "/server/grpc_status/0") > 0, "{report}");
    assert!(report["server"]["closed_by_server"].is_null(), "{report}");
}

#[test]
#[ignore = "slow: holds 300 silent connections for 5 s"]
fn silent_connections_are_held_without_harm() {
    let report = flood("slowloris", &["--seconds", "5", "--connections", "300"]);
    assert_eq!(count(&report, "/sent/connections"), 300, "{report}");
    // C-core waits up to its handshake timeout (120 s) for the preface.
    assert_eq!(count(&report, "/server/closed_by_server"), 0, "{report}");
}

#[test]
#[ignore = "slow: 20 connections x 1,000 requests that are never read, held 4 s"]
fn clients_that_never_read_do_not_grow_server_memory() {
    let report = flood(
        "no-read",
        &["--seconds", "4", "--connections", "20", "--streams", "1000"],
    );
    assert_eq!(count(&report, "/sent/streams"), 20_000, "{report}");
    // The answers are small: they wait in socket buffers; the streams
    // finish, so none of the connections goes over the stream limit.
    assert!(count(&report, "/server/grpc_status/0") > 0, "{report}");
}
