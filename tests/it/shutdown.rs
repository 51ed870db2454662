//! The `server` binary as an operator runs it: real SIGTERM and SIGINT
//! (graceful stop), its flags, bad flags, and an address already in use.

use std::time::Duration;

use crate::support::{failure, run_server_binary, wait_until, RedisServer, ServerProcess, WAIT};
use futures::executor::block_on;
use futures::TryStreamExt;
use grpcio::{ClientSStreamReceiver, RpcStatusCode};
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::proto::health::health_check_response::ServingStatus;
use learning_messenger::proto::health::{HealthCheckRequest, HealthCheckResponse};
use learning_messenger::proto::messenger::{LearningUpdate, StatusRequest, TopicRequest};
use learning_messenger::rpc::health::HealthClient;
use learning_messenger::rpc::messenger::{LearningMessengerClient, SERVICE_NAME};

fn bounded_client(target: &str) -> LearningMessengerClient {
    client::connect(&ConnectOptions {
        timeout: Some(Duration::from_secs(30)),
        ..ConnectOptions::new(target)
    })
    .unwrap()
}

/// Starts StreamLearnings and waits for its first update: the call is surely in flight.
fn stream_in_flight(client: &LearningMessengerClient) -> ClientSStreamReceiver<LearningUpdate> {
    let request = TopicRequest {
        topic: "shutdown".into(),
        ..Default::default()
    };
    let mut updates = client.stream_learnings_async(&request).unwrap();
    let first = block_on(updates.try_next())
        .unwrap()
        .expect("a first update");
    assert_eq!(first.progress, 25);
    updates
}

/// A graceful stop on `signal`: health turns NOT_SERVING for watchers, new
/// calls are refused, the call in flight finishes, and the process exits 0.
fn graceful_stop_on(signal: &str) {
    // Four updates 1 s apart: about 3 s of the call remain when the signal lands.
    let mut server = ServerProcess::start(&["--delay-ms", "1000", "--shutdown-grace-ms", "20000"]);
    let client = bounded_client(&server.target);
    let health = HealthClient::new(client.channel().clone());
    let watch_request = HealthCheckRequest {
        service: SERVICE_NAME.into(),
        ..Default::default()
    };
    let mut watch = health.watch_async(&watch_request).unwrap();
    let watched = |watch: &mut ClientSStreamReceiver<HealthCheckResponse>| {
        block_on(watch.try_next())
            .unwrap()
            .map(|response| response.status.enum_value_or_default())
    };
    assert_eq!(watched(&mut watch), Some(ServingStatus::SERVING));
    let updates = stream_in_flight(&client);

    server.signal(signal);
    assert_eq!(
        watched(&mut watch),
        Some(ServingStatus::NOT_SERVING),
        "SIG{signal}"
    );
    assert_eq!(watched(&mut watch), None, "SIG{signal}: the watch ends");
    // New calls are refused, on a new connection and on the one in use, while the old call runs on.
    let fresh = bounded_client(&server.target);
    let refused = |client: &LearningMessengerClient| {
        client
            .get_learning_status(&StatusRequest::default())
            .is_err()
    };
    assert!(
        wait_until(WAIT, || refused(&fresh)),
        "SIG{signal}: a new connection is still served"
    );
    let status = failure(client.get_learning_status(&StatusRequest::default()));
    assert_eq!(
        status.code(),
        RpcStatusCode::UNAVAILABLE,
        "SIG{signal}: {status:?}"
    );

    let rest: Vec<_> = block_on(updates.try_collect()).expect("the call in flight finishes");
    assert_eq!(
        rest.iter().map(|u| u.progress).collect::<Vec<_>>(),
        [50, 75, 100],
        "SIG{signal}"
    );
    let exit = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server exits");
    assert_eq!(
        exit.code(),
        Some(0),
        "SIG{signal}: {exit:?}; log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("stopped (Drained)"),
        "SIG{signal}: log:\n{}",
        server.log()
    );
}

#[test]
fn sigterm_lets_the_call_in_flight_finish_refuses_new_ones_and_exits_0() {
    graceful_stop_on("TERM");
}

#[test]
fn sigint_lets_the_call_in_flight_finish_refuses_new_ones_and_exits_0() {
    graceful_stop_on("INT");
}

#[test]
fn a_drain_turns_health_not_serving_at_once_while_calls_are_still_served() {
    // Long enough for the checks below on a loaded machine; they stop at its end.
    let mut server = ServerProcess::start(&[
        "--delay-ms",
        "0",
        "--drain-ms",
        "6000",
        "--shutdown-grace-ms",
        "5000",
    ]);
    let client = bounded_client(&server.target);
    let health = HealthClient::new(client.channel().clone());
    let request = HealthCheckRequest {
        service: SERVICE_NAME.into(),
        ..Default::default()
    };
    let checked = |health: &HealthClient| {
        health
            .check(&request)
            .unwrap()
            .status
            .enum_value_or_default()
    };
    let mut watch = health.watch_async(&request).unwrap();
    let watched = |watch: &mut ClientSStreamReceiver<HealthCheckResponse>| {
        block_on(watch.try_next())
            .unwrap()
            .map(|response| response.status.enum_value_or_default())
    };
    assert_eq!(watched(&mut watch), Some(ServingStatus::SERVING));
    assert_eq!(checked(&health), ServingStatus::SERVING);

    // Before the signal: the drain cannot start earlier than this.
    let signalled = std::time::Instant::now();
    server.signal("TERM");
    assert_eq!(watched(&mut watch), Some(ServingStatus::NOT_SERVING));
    assert_eq!(checked(&health), ServingStatus::NOT_SERVING);
    // Still served, on the connection in use and on a new one.
    assert!(
        client
            .get_learning_status(&StatusRequest::default())
            .unwrap()
            .active
    );
    let fresh = bounded_client(&server.target);
    assert!(
        fresh
            .get_learning_status(&StatusRequest::default())
            .unwrap()
            .active
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(6),
        "the checks took longer than the drain"
    );
    assert!(
        wait_until(WAIT, || server.log().contains(
            "draining: health NOT_SERVING, calls still served for 6000 ms"
        )),
        "log:\n{}",
        server.log()
    );

    // After the drain, no new calls.
    let later = bounded_client(&server.target);
    assert!(
        wait_until(Duration::from_secs(30), || later
            .get_learning_status(&StatusRequest::default())
            .is_err()),
        "still served after the drain"
    );
    assert!(
        signalled.elapsed() >= Duration::from_secs(6),
        "refused before the drain ended"
    );
    let exit = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server exits");
    assert_eq!(exit.code(), Some(0), "{exit:?}; log:\n{}", server.log());
    let log = server.log();
    let phases = ["draining: ", "stopping: ", "stopped (Drained)"].map(|phase| log.find(phase));
    assert!(
        phases.iter().all(Option::is_some) && phases.is_sorted(),
        "phases out of order or missing: log:\n{log}"
    );
}

#[test]
fn a_call_longer_than_the_grace_is_cancelled_and_the_server_still_exits_0() {
    let mut server = ServerProcess::start(&["--delay-ms", "1000", "--shutdown-grace-ms", "300"]);
    let client = bounded_client(&server.target);
    let updates = stream_in_flight(&client);
    server.signal("TERM");
    // Three more seconds of work do not fit in 300 ms of grace: the call is cut short.
    let status = failure(block_on(updates.try_collect::<Vec<_>>()));
    assert!(
        matches!(
            status.code(),
            RpcStatusCode::CANCELLED | RpcStatusCode::UNAVAILABLE
        ),
        "{status:?}"
    );
    let exit = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server exits");
    assert_eq!(exit.code(), Some(0), "{exit:?}; log:\n{}", server.log());
    assert!(
        server.log().contains("cancelling 1 call(s) still running"),
        "log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("stopped (CancelledRemaining)"),
        "log:\n{}",
        server.log()
    );
}

#[test]
fn max_message_bytes_sets_the_receive_limit() {
    let server = ServerProcess::start(&["--max-message-bytes", "1024"]);
    let client = bounded_client(&server.target);
    let request = |len: usize| StatusRequest {
        user_id: "u".repeat(len),
        ..Default::default()
    };
    assert!(client.get_learning_status(&request(1000)).unwrap().active);
    let status = failure(client.get_learning_status(&request(1025)));
    assert_eq!(
        status.code(),
        RpcStatusCode::RESOURCE_EXHAUSTED,
        "{status:?}"
    );
}

#[test]
fn bad_flags_exit_2_with_a_clap_error() {
    let bad = [
        &["--no-such-flag"][..],
        &["--max-message-bytes", "lots"],
        &["--delay-ms", "-1"],
        &["--keepalive-time-ms", "0"],
        &["--max-connection-age-ms", "0"],
        // The grace of a connection age that is not set.
        &["--max-connection-age-grace-ms", "1000"],
        &["--drain-ms", "soon"],
    ];
    for args in bad {
        let output = run_server_binary(args, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        // clap: usage for an unknown flag, a pointer to --help for a bad value.
        assert!(
            stderr.starts_with("error: ") && stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_address_in_use_stops_the_server_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // Rooms on a Redis that answers, reached as the server starts: still
    // one line, the error (where rooms are kept is said once started).
    let redis = RedisServer::start();
    for rooms in [vec![], vec!["--rooms".to_owned(), redis.url()]] {
        let args: Vec<&str> = ["--addr", addr.as_str()]
            .into_iter()
            .chain(rooms.iter().map(String::as_str))
            .collect();
        let output = run_server_binary(&args, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("server: cannot listen on {addr}: address invalid or in use"),
            "{args:?}"
        );
    }
    drop(taken);
}

#[test]
fn a_replica_name_that_cannot_be_a_header_stops_the_server_with_one_line() {
    let output = run_server_binary(
        &["--addr", "127.0.0.1:0", "--replica-name", "réplica\t1"],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "server: --replica-name \"réplica\\t1\": only printable ASCII may go in a header"
    );
}
