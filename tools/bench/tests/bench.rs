//! The benchmark's own logic at tiny sizes: every workload against a real
//! in-process server, wrong answers caught, and the command line's errors.
//! Figures are never asserted: only that they exist and are sane.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{EnvBuilder, RpcContext, ServerBuilder, ServerCredentials};
use learning_messenger::auth::Caller;
use learning_messenger::client::Balancing;
use learning_messenger::proto::messenger::{
    FeedUpdate, LearningUpdate, ResearchNote, StatusRequest, StatusResponse, SummaryResponse,
    TopicRequest,
};
use learning_messenger::rpc::messenger::{create_learning_messenger, LearningMessenger};
use learning_messenger::rpc::{
    ClientStreamReply, DuplexReply, Requests, ServerStreamReply, ServiceOptions, UnaryReply,
};
use learning_messenger::server::{self, RunningServer, ServerConfig};
use learning_messenger::service::MessengerService;
use learning_messenger::transport::DEFAULT_MAX_MESSAGE_BYTES;
use messenger_bench::workloads::{Load, Workload};
use messenger_bench::BenchError;
use messenger_lab::answers::{acknowledge, summarize, STATUS_MESSAGE};
use messenger_testkit::report::Unit;

/// Small, but with a window a loaded machine still starts calls in: only
/// calls started in it count, and a workload with none is an error.
fn tiny() -> Load {
    Load {
        concurrency: 4,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(50),
        messages: 2_000,
    }
}

/// Our server, in this process on a free loopback port, without delays.
fn start_server() -> (RunningServer, String) {
    let config = ServerConfig {
        addr: "127.0.0.1:0".to_owned(),
        delay: Duration::ZERO,
        completion_queues: 2,
        ..ServerConfig::default()
    };
    let running = server::start(&config).expect("server starts");
    let target = format!("127.0.0.1:{}", running.port());
    (running, target)
}

#[test]
fn every_workload_runs_and_reports_its_figures() {
    let (_server, target) = start_server();
    let figures = messenger_bench::run(&target, &Balancing::new(), 2, 1, &Workload::ALL, &tiny())
        .expect("the run succeeds");
    for workload in Workload::ALL {
        assert!(
            figures.iter().any(|f| f.workload == workload.name()),
            "no figures for {}",
            workload.name()
        );
    }
    for figure in &figures {
        assert!(figure.value.is_finite() && figure.value > 0.0, "{figure:?}");
        if let Unit::Rate(_) = figure.unit {
            continue;
        }
        assert_eq!(figure.unit, Unit::Latency, "{figure:?}");
    }
    let metrics: Vec<_> = figures
        .iter()
        .filter(|f| f.workload == "unary")
        .map(|f| f.metric)
        .collect();
    assert_eq!(metrics, ["throughput", "p50", "p99", "p99.9"]);
}

/// Our handlers, except for the one answer a test makes wrong.
#[derive(Clone)]
struct Faulty {
    inner: MessengerService,
    fault: Fault,
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// The summary counts one note too few.
    ShortCount,
    /// The feed's echoes say something else.
    WrongEcho,
    /// The status is inactive.
    Inactive,
    /// Status calls of odd-numbered bench workers (`bench-1`, `bench-3`…) fail UNAVAILABLE.
    OddUnavailable,
}

impl LearningMessenger for Faulty {
    fn get_learning_status(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: StatusRequest,
        sink: UnaryReply<StatusResponse>,
    ) {
        let odd = req
            .user_id
            .chars()
            .last()
            .and_then(|c| c.to_digit(10))
            .is_some_and(|d| d % 2 == 1);
        if self.fault == Fault::OddUnavailable && odd {
            let reply = sink.fail(grpcio::RpcStatus::with_message(
                grpcio::RpcStatusCode::UNAVAILABLE,
                "odd".into(),
            ));
            ctx.spawn(async move {
                let _ = reply.await;
            });
            return;
        }
        if self.fault != Fault::Inactive {
            return self.inner.get_learning_status(ctx, caller, req, sink);
        }
        let reply = sink.success(StatusResponse {
            message: STATUS_MESSAGE.into(),
            active: false,
            ..Default::default()
        });
        ctx.spawn(async move {
            let _ = reply.await;
        });
    }

    fn stream_learnings(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: TopicRequest,
        sink: ServerStreamReply<LearningUpdate>,
    ) {
        self.inner.stream_learnings(ctx, caller, req, sink)
    }

    fn submit_research_notes(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        notes: Requests<ResearchNote>,
        sink: ClientStreamReply<SummaryResponse>,
    ) {
        use futures::TryStreamExt;
        if self.fault != Fault::ShortCount {
            return self.inner.submit_research_notes(ctx, caller, notes, sink);
        }
        ctx.spawn(async move {
            let notes: Vec<ResearchNote> = notes.try_collect().await.unwrap_or_default();
            let count = notes.len() as i32 - 1;
            let summary = summarize(count, notes.last().map(|n| n.text.as_str()));
            let _ = sink.success(summary).await;
        });
    }

    fn collaborative_feed(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        updates: Requests<FeedUpdate>,
        mut sink: DuplexReply<FeedUpdate>,
    ) {
        use futures::{SinkExt, TryStreamExt};
        if self.fault != Fault::WrongEcho {
            return self.inner.collaborative_feed(ctx, caller, updates, sink);
        }
        ctx.spawn(async move {
            let mut echoes = updates.map_ok(|update| {
                let mut echo = acknowledge(&update);
                echo.message.push('!');
                (echo, grpcio::WriteFlags::default())
            });
            let _ = sink.send_all(&mut echoes).await;
            let _ = sink.close().await;
        });
    }
}

/// A server on a free port answering with `fault`.
fn faulty_server(fault: Fault) -> (grpcio::Server, String) {
    let env = Arc::new(EnvBuilder::new().cq_count(1).build());
    let service = Faulty {
        inner: MessengerService::new(Duration::ZERO),
        fault,
    };
    let mut server = ServerBuilder::new(env)
        .register_service(create_learning_messenger(
            service,
            &ServiceOptions::new(DEFAULT_MAX_MESSAGE_BYTES),
        ))
        .build()
        .unwrap();
    let port = server
        .add_listening_port("127.0.0.1:0", ServerCredentials::insecure())
        .unwrap();
    server.start();
    (server, format!("127.0.0.1:{port}"))
}

#[test]
fn a_wrong_answer_fails_the_run() {
    for (fault, workload, expected) in [
        (
            Fault::ShortCount,
            Workload::ClientStream,
            "client-stream: wrong answer: summary was ",
        ),
        (
            Fault::WrongEcho,
            Workload::Bidi,
            "bidi: wrong answer: echo 0 was ",
        ),
        (
            Fault::WrongEcho,
            Workload::PingPong,
            "ping-pong: wrong answer: echo 0 was ",
        ),
        (
            Fault::Inactive,
            Workload::Unary,
            "unary: wrong answer: status was ",
        ),
    ] {
        let (_server, target) = faulty_server(fault);
        match messenger_bench::run(&target, &Balancing::new(), 1, 1, &[workload], &tiny()) {
            Err(e @ BenchError::WrongAnswer { .. }) => {
                assert!(e.to_string().starts_with(expected), "{e}")
            }
            other => panic!(
                "expected a wrong answer from {}, got {other:?}",
                workload.name()
            ),
        }
    }
}

#[test]
fn failed_calls_are_counted_by_status_and_the_run_goes_on() {
    let (_server, target) = faulty_server(Fault::OddUnavailable);
    let figures = messenger_bench::run(
        &target,
        &Balancing::new(),
        1,
        1,
        &[Workload::Unary],
        &tiny(),
    )
    .expect("the run goes on");
    let value = |metric: &str| {
        figures
            .iter()
            .find(|f| f.metric == metric)
            .map(|f| (f.unit, f.value))
    };
    let (unit, failed) = value("failed").expect("a failed-calls figure");
    assert_eq!(unit, Unit::Count("calls"));
    assert!(failed >= 1.0, "{figures:?}");
    assert_eq!(
        value("UNAVAILABLE"),
        Some((Unit::Count("failed calls"), failed))
    );
    assert!(
        value("throughput").is_some_and(|(_, calls)| calls > 0.0),
        "{figures:?}"
    );
    // The binary prints them, and says so when none failed.
    let (code, stdout, stderr) = bench(&[
        "unary",
        "--target",
        &target,
        "--concurrency",
        "4",
        "--warmup",
        "0s",
        "--duration",
        "200ms",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("UNAVAILABLE") && stdout.contains("failed calls"),
        "{stdout}"
    );
    let (_good, target) = start_server();
    let (code, stdout, stderr) = bench(&[
        "unary",
        "--target",
        &format!("ipv4:{target}"),
        "--lb",
        "round_robin",
        "--warmup",
        "0s",
        "--duration",
        "200ms",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with("(no call failed)\n"), "{stdout}");
}

fn bench(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("bench runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code().unwrap_or(-1),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn bad_flags_exit_2_with_usage() {
    for args in [
        &["unary", "--concurrency", "0"][..],
        &["unary", "--duration", "ten"],
        &["bidi", "--messages", "-5"],
        &["compare", "--no-such-flag"],
        &["warp-speed"],
    ] {
        let (code, stdout, stderr) = bench(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stdout.is_empty() && stderr.starts_with("error: "),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn an_unreachable_target_is_one_line_and_a_failure() {
    let port = messenger_bench::compare::free_port().unwrap();
    let (code, stdout, stderr) = bench(&["ping-pong", "--target", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("bench: error: cannot reach 127.0.0.1:{port}: ")),
        "{stderr}"
    );
}

#[test]
fn the_binary_prints_a_table_of_checked_figures() {
    let (_server, target) = start_server();
    let (code, stdout, stderr) = bench(&[
        "bidi",
        "--target",
        &target,
        "--messages",
        "500",
        "--warmup",
        "0s",
        "--duration",
        "100ms",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("workload"), "{stdout}");
    assert!(stdout.contains("echoes/s"), "{stdout}");
    let (code, stdout, _) = bench(&["codec", "--iterations", "10"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("FeedUpdate (echo)"), "{stdout}");
}

#[test]
fn compare_says_which_server_cannot_start() {
    use messenger_bench::compare::{compare, CompareOptions};
    let out_dir = tempfile::tempdir().unwrap();
    let options = CompareOptions {
        load: tiny(),
        python_messages: 10,
        connections: 1,
        client_threads: 1,
        workloads: vec![Workload::Unary],
        server_bin: out_dir.path().join("no-such-server"),
        python: out_dir.path().join("no-such-python"),
        python_dir: out_dir.path().to_owned(),
        out_dir: out_dir.path().to_owned(),
    };
    let error = compare(&options).unwrap_err().to_string();
    assert!(
        error.starts_with("cannot start the rust server ("),
        "{error}"
    );
    assert!(error.contains("cargo build --release --bins"), "{error}");
}

#[test]
fn a_load_of_unary_calls_is_never_cancelled() {
    // Sustained load from a client with gRPC's default channel: every call is
    // answered. (A server that allowed pings on idle connections had C-core
    // cancel some of them; seen with the release build.)
    let (_server, target) = start_server();
    let args = [
        "unary",
        "--target",
        &target,
        "--concurrency",
        "1",
        "--duration",
        "3s",
        "--warmup",
        "1s",
    ];
    let (code, stdout, stderr) = bench(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("throughput"), "{stdout}");
}

/// `bench wiretap` at tiny sizes, with the `wiretap` built next to `bench`
/// (scripts/test.sh builds every binary of the workspace).
#[test]
fn the_tap_bench_reports_both_runs() {
    let wiretap_bin = std::path::Path::new(env!("CARGO_BIN_EXE_bench")).with_file_name("wiretap");
    assert!(
        wiretap_bin.exists(),
        "{} is missing: cargo build -p messenger-wire --bin wiretap",
        wiretap_bin.display()
    );
    let (_server, target) = start_server();
    let options = messenger_bench::tap::TapBench {
        target,
        load: tiny(),
        client_threads: 1,
        wiretap_bin,
    };
    let figures = messenger_bench::tap::run(&options).expect("both runs succeed");
    for list in [&figures.direct, &figures.tapped] {
        let p50 = list
            .iter()
            .find(|f| f.workload == "ping-pong" && f.metric == "p50")
            .expect("a ping-pong p50");
        assert!(p50.value > 0.0 && p50.value < 1.0, "{p50:?}");
        let notes = list
            .iter()
            .find(|f| f.workload == "client-stream")
            .expect("an upload rate");
        assert!(notes.value > 0.0, "{notes:?}");
    }
    let table = figures.table();
    assert!(table.rows.iter().any(|row| row[4].ends_with("% of direct")));
    assert!(table.rows.iter().any(|row| row[4].starts_with('+')));
}
