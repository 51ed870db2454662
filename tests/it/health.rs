//! The standard grpc.health.v1.Health service on a real in-process server:
//! Check, Watch, and the turn to NOT_SERVING when a graceful stop begins.

use std::time::Duration;

use crate::support::{failure, TestServer};
use futures::executor::block_on;
use futures::{SinkExt, TryStreamExt};
use grpcio::{CallOption, ClientSStreamReceiver, RpcStatusCode, WriteFlags};
use learning_messenger::proto::health::health_check_response::ServingStatus;
use learning_messenger::proto::health::{HealthCheckRequest, HealthCheckResponse};
use learning_messenger::proto::messenger::{StatusRequest, StatusResponse};
use learning_messenger::rpc::health::HealthClient;
use learning_messenger::rpc::messenger::SERVICE_NAME;
use learning_messenger::server::Stopped;

fn health_client(server: &TestServer) -> HealthClient {
    let bounded = CallOption::default().timeout(Duration::from_secs(30));
    HealthClient::new(server.client().channel().clone()).with_options(bounded)
}

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
        ..Default::default()
    }
}

fn check(client: &HealthClient, service: &str) -> grpcio::Result<ServingStatus> {
    client
        .check(&request(service))
        .map(|response| response.status.enum_value_or_default())
}

fn next_status(watch: &mut ClientSStreamReceiver<HealthCheckResponse>) -> Option<ServingStatus> {
    block_on(watch.try_next())
        .expect("the watch stays healthy")
        .map(|response| response.status.enum_value_or_default())
}

#[test]
fn check_says_serving_for_the_server_and_the_messenger_service() {
    let server = TestServer::start();
    let health = health_client(&server);
    assert_eq!(check(&health, "").unwrap(), ServingStatus::SERVING);
    assert_eq!(
        check(&health, SERVICE_NAME).unwrap(),
        ServingStatus::SERVING
    );
}

#[test]
fn check_of_an_unknown_service_is_not_found() {
    let server = TestServer::start();
    let status = failure(check(&health_client(&server), "no.such.Service"));
    assert_eq!(status.code(), RpcStatusCode::NOT_FOUND);
    assert!(status.message().contains("no.such.Service"), "{status:?}");
}

#[test]
fn health_requests_over_the_receive_limit_get_resource_exhausted() {
    let server = TestServer::with_config(learning_messenger::server::ServerConfig {
        max_message_bytes: 64,
        ..crate::support::test_config()
    });
    let health = health_client(&server);
    let long_name = "s".repeat(100);
    let status = failure(check(&health, &long_name));
    assert_eq!(
        status.code(),
        RpcStatusCode::RESOURCE_EXHAUSTED,
        "{status:?}"
    );
    assert!(status.message().contains("larger than max"), "{status:?}");
    let watch = health.watch_async(&request(&long_name)).unwrap();
    let status = failure(block_on(watch.try_collect::<Vec<_>>()));
    assert_eq!(
        status.code(),
        RpcStatusCode::RESOURCE_EXHAUSTED,
        "{status:?}"
    );
    assert_eq!(check(&health, "").unwrap(), ServingStatus::SERVING);
}

#[test]
fn watch_of_an_unknown_service_says_service_unknown() {
    let server = TestServer::start();
    let health = health_client(&server);
    let mut watch = health.watch_async(&request("no.such.Service")).unwrap();
    assert_eq!(
        next_status(&mut watch),
        Some(ServingStatus::SERVICE_UNKNOWN)
    );
}

#[test]
fn a_graceful_stop_turns_health_not_serving_and_watchers_see_it() {
    let server = TestServer::start();
    let health = health_client(&server);
    let states = server.running().health().clone();
    let mut watches: Vec<_> = ["", SERVICE_NAME]
        .map(|service| health.watch_async(&request(service)).unwrap())
        .into();
    for watch in &mut watches {
        assert_eq!(next_status(watch), Some(ServingStatus::SERVING));
    }
    // An upload left open keeps the server in its grace period while we look.
    let client = server.client();
    let (mut notes, summary) = client.submit_research_notes_async().unwrap();
    block_on(notes.send((crate::support::note("in flight"), WriteFlags::default()))).unwrap();
    assert!(crate::support::wait_until(crate::support::WAIT, || server
        .running()
        .calls_in_flight()
        == 1));

    let stopping = std::thread::spawn(move || server.stop(Duration::from_secs(20)));
    for watch in &mut watches {
        assert_eq!(next_status(watch), Some(ServingStatus::NOT_SERVING));
        // The stop is terminal: the watch ends cleanly.
        assert_eq!(next_status(watch), None);
    }
    assert_eq!(states.status(""), Some(ServingStatus::NOT_SERVING));
    assert_eq!(
        states.status(SERVICE_NAME),
        Some(ServingStatus::NOT_SERVING)
    );
    // Then no new calls: the server stops accepting them right after the flip.
    let mut answered = Ok(StatusResponse::default());
    assert!(crate::support::wait_until(crate::support::WAIT, || {
        answered = client.get_learning_status(&StatusRequest::default());
        answered.is_err()
    }));
    // C-core refuses such a call as UNAVAILABLE, or (seen when the call races
    // the start of the shutdown) as CANCELLED.
    let refused = failure(answered);
    assert!(
        [RpcStatusCode::UNAVAILABLE, RpcStatusCode::CANCELLED].contains(&refused.code()),
        "{refused:?}"
    );

    // The call in flight still finishes, and the stop is a clean drain. Its
    // end can overtake the half-close (`ok_if_call_over`): the summary
    // says how it went.
    learning_messenger::rpc::ok_if_call_over(block_on(notes.close())).unwrap();
    assert_eq!(block_on(summary).unwrap().count, 1);
    assert_eq!(stopping.join().unwrap(), Stopped::Drained);
}
