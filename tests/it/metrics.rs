//! Prometheus metrics on a real scrape: a known number of calls of each
//! pattern and each outcome gives exact counter values, named and labelled as
//! go-grpc-prometheus does, and the page parses with Prometheus's own Python
//! parser (prometheus_client, in the project's .venv).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::executor::block_on;
use futures::TryStreamExt;
use grpcio::{CallOption, MethodType, RpcStatusCode};
use learning_messenger::proto::messenger::{StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::method;
use learning_messenger::server::ServerConfig;
use protobuf::Message;

use crate::support::{
    failure, feed, note, raw_method, scrape, test_config, venv_program, wait_until, TestServer,
    WAIT,
};

/// Every sample of `page` as Prometheus's Python parser reads it:
/// `name{label="value",...}` (labels sorted) to its value.
fn parse(page: &str) -> HashMap<String, f64> {
    let script = "import sys, json\n\
                  from prometheus_client.parser import text_string_to_metric_families\n\
                  for family in text_string_to_metric_families(sys.stdin.read()):\n\
                  \x20   for s in family.samples:\n\
                  \x20       labels = ','.join(f'{k}=\"{v}\"' for k, v in sorted(s.labels.items()))\n\
                  \x20       print(json.dumps([f'{s.name}{{{labels}}}', s.value]))\n";
    let mut python = Command::new(venv_program("python3"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Prometheus's parser rejected the page: {}\n{page}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, value): (String, f64) = serde_json::from_str(line).unwrap();
            (name, value)
        })
        .collect()
}

fn labels(ty: &str, service: &str, method: &str) -> String {
    format!("grpc_method=\"{method}\",grpc_service=\"{service}\",grpc_type=\"{ty}\"")
}

fn handled(ty: &str, method: &str, code: &str) -> String {
    format!(
        "grpc_server_handled_total{{grpc_code=\"{code}\",{}}}",
        labels(ty, "messenger.LearningMessenger", method)
    )
}

fn counter(name: &str, ty: &str, method: &str) -> String {
    format!(
        "{name}{{{}}}",
        labels(ty, "messenger.LearningMessenger", method)
    )
}

#[test]
fn a_scrape_counts_every_call_once_with_its_outcome() {
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::from_millis(300),
        max_message_bytes: 1024,
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        ..test_config()
    });
    let port = server.running().metrics_port().expect("metrics are on");
    let client = server.client();
    let raw = grpcio::Client::new(client.channel().clone());
    let bounded = || CallOption::default().timeout(Duration::from_secs(30));

    // Unary: 3 OK, 1 INTERNAL (bytes that do not parse), 1 RESOURCE_EXHAUSTED
    // that no handler sees: C-core refuses it at its length prefix (patch
    // 0006), so it is not counted.
    for _ in 0..3 {
        client
            .get_learning_status(&StatusRequest::default())
            .unwrap();
    }
    let unary = raw_method(method::GET_LEARNING_STATUS.name, MethodType::Unary);
    let garbage = failure(raw.unary_call(&unary, &vec![0xff, 0xff, 0xff], bounded()));
    assert_eq!(garbage.code(), RpcStatusCode::INTERNAL);
    let big = StatusRequest {
        user_id: "x".repeat(2048),
        ..Default::default()
    };
    let big = failure(raw.unary_call(&unary, &big.write_to_bytes().unwrap(), bounded()));
    assert_eq!(big.code(), RpcStatusCode::RESOURCE_EXHAUSTED);

    // Server streaming: 1 OK (4 updates), 1 DEADLINE_EXCEEDED, 1 CANCELLED.
    let topic = TopicRequest {
        topic: "metrics".into(),
        ..Default::default()
    };
    let updates: Vec<_> =
        block_on(client.stream_learnings_async(&topic).unwrap().try_collect()).unwrap();
    assert_eq!(updates.len(), 4);
    let expiring = client
        .clone()
        // Ends before the first update (300 ms after the server has the call).
        .with_options(CallOption::default().timeout(Duration::from_millis(250)));
    let expired = failure(block_on(
        expiring
            .stream_learnings_async(&topic)
            .unwrap()
            .try_collect::<Vec<_>>(),
    ));
    assert_eq!(expired.code(), RpcStatusCode::DEADLINE_EXCEEDED);
    let mut cancelled = client.stream_learnings_async(&topic).unwrap();
    // Cancelled once the server has started it (else no handler ever runs),
    // before its first update.
    let started = format!(
        "{} 3\n",
        counter(
            "grpc_server_started_total",
            "server_stream",
            "StreamLearnings"
        )
    );
    assert!(wait_until(WAIT, || { scrape(port).2.contains(&started) }));
    cancelled.cancel();
    drop(cancelled);

    // Client streaming: 1 OK of 3 notes. Bidi: 1 OK of 2 updates, 2 echoes.
    let summary = client
        .submit_research_notes([note("a"), note("b"), note("c")])
        .unwrap();
    assert_eq!(summary.count, 3);
    let echoes: Vec<_> = client
        .collaborative_feed([feed("ada", "1"), feed("bob", "2")])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(echoes.len(), 2);
    // An unknown method is answered UNIMPLEMENTED by grpcio before any
    // handler; its checker hook counts it, under `unknown` labels.
    let unknown = raw_method(
        "/messenger.LearningMessenger/NoSuchMethod",
        MethodType::Unary,
    );
    assert_eq!(
        failure(raw.unary_call(&unknown, &Vec::new(), bounded())).code(),
        RpcStatusCode::UNIMPLEMENTED
    );

    // The server ends a cancelled stream at its next delay: wait for it.
    let ended = |samples: &HashMap<String, f64>| {
        let count = |code| {
            samples
                .get(&handled("server_stream", "StreamLearnings", code))
                .copied()
                .unwrap_or(0.0)
        };
        count("Canceled") + count("DeadlineExceeded") == 2.0
    };
    let mut samples = HashMap::new();
    assert!(
        wait_until(WAIT, || {
            samples = parse(&scrape(port).2);
            ended(&samples)
        }),
        "the cancelled stream was never counted: {samples:?}"
    );

    let (status, content_type, _) = scrape(port);
    assert!(status.contains("200"), "{status}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let expect = |key: String, value: f64| {
        assert_eq!(samples.get(&key), Some(&value), "{key}");
    };
    let (u, ss, cs, bi) = (
        ("unary", "GetLearningStatus"),
        ("server_stream", "StreamLearnings"),
        ("client_stream", "SubmitResearchNotes"),
        ("bidi_stream", "CollaborativeFeed"),
    );
    expect(counter("grpc_server_started_total", u.0, u.1), 4.0);
    expect(handled(u.0, u.1, "OK"), 3.0);
    expect(handled(u.0, u.1, "Internal"), 1.0);
    expect(handled(u.0, u.1, "ResourceExhausted"), 0.0);
    expect(handled(u.0, u.1, "Unimplemented"), 0.0);
    expect(counter("grpc_server_msg_received_total", u.0, u.1), 3.0);
    expect(counter("grpc_server_msg_sent_total", u.0, u.1), 3.0);

    expect(counter("grpc_server_started_total", ss.0, ss.1), 3.0);
    expect(handled(ss.0, ss.1, "OK"), 1.0);
    // The expired stream is DeadlineExceeded if the server's own deadline
    // (timed from when it received the call) has passed when the client's
    // RST_STREAM arrives, else Canceled: the client's timer runs ahead by the
    // transit time, and under load the server can see the reset first (grpc-go
    // has the same race). The cancelled one is always Canceled.
    let code = |code| samples.get(&handled(ss.0, ss.1, code)).copied();
    let (expired, cancelled) = (code("DeadlineExceeded"), code("Canceled"));
    assert!(
        matches!((expired, cancelled), (Some(1.0), Some(1.0)) | (Some(0.0), Some(2.0))),
        "the expired and the cancelled stream: {expired:?} DeadlineExceeded, {cancelled:?} Canceled"
    );
    expect(counter("grpc_server_msg_received_total", ss.0, ss.1), 3.0);
    expect(counter("grpc_server_msg_sent_total", ss.0, ss.1), 4.0);

    expect(counter("grpc_server_started_total", cs.0, cs.1), 1.0);
    expect(handled(cs.0, cs.1, "OK"), 1.0);
    expect(counter("grpc_server_msg_received_total", cs.0, cs.1), 3.0);
    expect(counter("grpc_server_msg_sent_total", cs.0, cs.1), 1.0);

    expect(counter("grpc_server_started_total", bi.0, bi.1), 1.0);
    expect(handled(bi.0, bi.1, "OK"), 1.0);
    expect(counter("grpc_server_msg_received_total", bi.0, bi.1), 2.0);
    expect(counter("grpc_server_msg_sent_total", bi.0, bi.1), 2.0);

    // Every call counted has ended: none in flight, each timed once.
    for (ty, method, calls) in [
        (u.0, u.1, 4.0),
        (ss.0, ss.1, 3.0),
        (cs.0, cs.1, 1.0),
        (bi.0, bi.1, 1.0),
    ] {
        expect(counter("grpc_server_calls_in_flight", ty, method), 0.0);
        expect(
            counter("grpc_server_handling_seconds_count", ty, method),
            calls,
        );
    }
    let unknown = labels("unknown", "unknown", "unknown");
    expect(
        format!("grpc_server_handled_total{{grpc_code=\"Unimplemented\",{unknown}}}"),
        1.0,
    );
    expect(format!("grpc_server_started_total{{{unknown}}}"), 1.0);
    // Nothing else was counted.
    let total: f64 = samples
        .iter()
        .filter(|(name, _)| name.starts_with("grpc_server_started_total{"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(total, 10.0, "{samples:?}");
}

#[test]
fn health_calls_are_counted_and_metrics_are_off_by_default() {
    let server = TestServer::with_config(ServerConfig {
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        ..test_config()
    });
    let health =
        learning_messenger::rpc::health::HealthClient::new(server.client().channel().clone());
    health.check(&Default::default()).unwrap();
    let key = format!(
        "grpc_server_handled_total{{grpc_code=\"OK\",{}}}",
        labels("unary", "grpc.health.v1.Health", "Check")
    );
    // The glue counts the call once its answer is sent, which may be just
    // after the client has it.
    let port = server.running().metrics_port().unwrap();
    let mut samples = parse(&scrape(port).2);
    wait_until(WAIT, || {
        samples = parse(&scrape(port).2);
        samples.get(&key) == Some(&1.0)
    });
    assert_eq!(samples.get(&key), Some(&1.0), "{samples:?}");

    assert_eq!(TestServer::start().running().metrics_port(), None);
}

#[test]
fn the_metrics_page_is_the_only_page() {
    let server = TestServer::with_config(ServerConfig {
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        ..test_config()
    });
    let port = server.running().metrics_port().unwrap();
    let mut http = TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 404") || response.starts_with("HTTP/1.1 404"),
        "{response}"
    );
}
