//! The four patterns end to end against a real in-process server.

use std::time::Duration;

use crate::support::{
    feed, is_clock_time, mask_times, note, raw_method, TestServer, LAB_TRANSCRIPT,
};
use futures::executor::block_on;
use futures::{SinkExt, StreamExt, TryStreamExt};
use grpcio::{CallOption, MethodType, RpcStatusCode, WriteFlags};
use learning_messenger::client::demo;
use learning_messenger::client::output::{Format, Printer};
use learning_messenger::proto::messenger::{StatusRequest, TopicRequest};
use learning_messenger::rpc::ok_if_call_over;

fn status_code(result: grpcio::Result<impl std::fmt::Debug>) -> RpcStatusCode {
    match result {
        Err(grpcio::Error::RpcFailure(status)) => status.code(),
        other => panic!("expected a failed call, got {other:?}"),
    }
}

#[test]
fn unary_answers_the_lab_status() {
    let server = TestServer::start();
    let request = StatusRequest {
        user_id: "researcher-01".into(),
        ..Default::default()
    };
    let response = server.client().get_learning_status(&request).unwrap();
    assert_eq!(
        response.message,
        "System ready for research. Status check OK."
    );
    assert!(response.active);
}

#[test]
fn unary_async_form_gives_the_same_answer() {
    let server = TestServer::start();
    let request = StatusRequest {
        user_id: "研究者".into(),
        ..Default::default()
    };
    let client = server.client();
    let response = block_on(client.get_learning_status_async(&request).unwrap()).unwrap();
    assert_eq!(
        response.message,
        "System ready for research. Status check OK."
    );
}

#[test]
fn server_stream_sends_four_timestamped_updates() {
    let server = TestServer::start();
    let request = TopicRequest {
        topic: "gRPC Protocols".into(),
        ..Default::default()
    };
    let updates: Vec<_> = server
        .client()
        .stream_learnings(&request)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let contents: Vec<_> = updates
        .iter()
        .map(|u| (u.progress, u.content.as_str()))
        .collect();
    assert_eq!(
        contents,
        [
            (25, "Searching for research papers on gRPC Protocols..."),
            (50, "Analyzing core principles of gRPC Protocols..."),
            (75, "Synthesizing key gRPC use cases..."),
            (100, "Finalizing the consolidated report."),
        ]
    );
    for update in &updates {
        assert!(
            is_clock_time(&update.timestamp),
            "timestamp {:?} is not HH:MM:SS",
            update.timestamp
        );
    }
}

#[test]
fn server_stream_keeps_non_ascii_topics_intact() {
    let server = TestServer::start();
    let request = TopicRequest {
        topic: "gRPC über HTTP/2 — 多路复用 🚀".into(),
        ..Default::default()
    };
    let client = server.client();
    let first = block_on(client.stream_learnings_async(&request).unwrap().next())
        .unwrap()
        .unwrap();
    assert_eq!(
        first.content,
        "Searching for research papers on gRPC über HTTP/2 — 多路复用 🚀..."
    );
}

#[test]
fn server_stream_honours_the_delay() {
    let server = TestServer::with_config(learning_messenger::server::ServerConfig {
        delay: Duration::from_millis(50),
        ..crate::support::test_config()
    });
    let request = TopicRequest {
        topic: "t".into(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let count = server.client().stream_learnings(&request).unwrap().count();
    assert_eq!(count, 4);
    // Four pauses of 50 ms: a lower bound only, never an upper one.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn client_stream_summarises_count_and_last_note() {
    let server = TestServer::start();
    let notes = ["first", "second", "Note 4: Typed interface contracts"].map(note);
    let summary = server.client().submit_research_notes(notes).unwrap();
    assert_eq!(summary.count, 3);
    assert_eq!(
        summary.final_summary,
        "Processed 3 notes. Key takeaway: Note 4: Typed interface contracts"
    );
}

#[test]
fn client_stream_of_no_notes_says_none() {
    let server = TestServer::start();
    let summary = server.client().submit_research_notes(Vec::new()).unwrap();
    assert_eq!(summary.count, 0);
    assert_eq!(
        summary.final_summary,
        "Processed 0 notes. Key takeaway: None"
    );
}

#[test]
fn client_stream_keeps_non_ascii_notes_intact() {
    let server = TestServer::start();
    let summary = server
        .client()
        .submit_research_notes([note("a"), note("Ünïcödé — 笔记 ✅")])
        .unwrap();
    assert_eq!(
        summary.final_summary,
        "Processed 2 notes. Key takeaway: Ünïcödé — 笔记 ✅"
    );
}

#[test]
fn client_stream_carries_a_3_mib_note() {
    let server = TestServer::start();
    let big: String = "0123456789abcdef".repeat(3 * 1024 * 1024 / 16);
    let summary = server
        .client()
        .submit_research_notes([note("small"), note(&big)])
        .unwrap();
    assert_eq!(summary.count, 2);
    assert_eq!(
        summary.final_summary,
        format!("Processed 2 notes. Key takeaway: {big}")
    );
}

#[test]
fn bidi_echoes_every_update() {
    let server = TestServer::start();
    let echoes: Vec<_> = server
        .client()
        .collaborative_feed(vec![
            feed("Engineer", "Initializing system..."),
            feed("QA", "naïve ✓"),
        ])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let echoes: Vec<_> = echoes
        .iter()
        .map(|e| (e.user.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        echoes,
        [
            (
                "System",
                "Acknowledged Engineer's update: Initializing system..."
            ),
            ("System", "Acknowledged QA's update: naïve ✓"),
        ]
    );
}

#[test]
fn bidi_empty_feed_ends_cleanly_with_no_echoes() {
    let server = TestServer::start();
    let echoes: Vec<_> = server
        .client()
        .collaborative_feed(Vec::new())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(echoes.is_empty());
}

#[test]
fn bidi_echo_arrives_while_the_client_stream_is_still_open() {
    let server = TestServer::start();
    let client = server.client();
    let (mut sender, mut echoes) = client.collaborative_feed_async().unwrap();
    block_on(async {
        for i in 0..3 {
            sender
                .send((feed("Lead", &format!("update {i}")), WriteFlags::default()))
                .await
                .unwrap();
            // Not half-closed yet: the echo must come back now.
            let echo = echoes
                .try_next()
                .await
                .unwrap()
                .expect("an echo before half-close");
            assert_eq!(
                echo.message,
                format!("Acknowledged Lead's update: update {i}")
            );
        }
        let closed = sender.close().await;
        assert!(echoes.try_next().await.unwrap().is_none());
        ok_if_call_over(closed).unwrap();
    });
}

#[test]
fn unknown_method_and_service_are_unimplemented() {
    let server = TestServer::start();
    let channel = server.client().channel().clone();
    let client = grpcio::Client::new(channel);
    for name in [
        "/messenger.LearningMessenger/NoSuchMethod",
        "/no.such.Service/GetLearningStatus",
    ] {
        let method = raw_method(name, MethodType::Unary);
        let code = status_code(client.unary_call(&method, &Vec::new(), CallOption::default()));
        assert_eq!(code, RpcStatusCode::UNIMPLEMENTED, "{name}");
    }
    // And the server still answers.
    assert!(
        server
            .client()
            .get_learning_status(&StatusRequest::default())
            .unwrap()
            .active
    );
}

#[test]
fn lab_demos_print_the_lab_transcript() {
    let server = TestServer::start();
    let mut out = Vec::new();
    block_on(demo::run_all(
        &server.client(),
        Duration::ZERO,
        &mut Printer::plain(&mut out, Format::Text),
    ))
    .unwrap();
    assert_eq!(mask_times(&String::from_utf8(out).unwrap()), LAB_TRANSCRIPT);
}

#[test]
fn blocking_upload_reports_the_status_that_ended_it() {
    let server = TestServer::with_config(learning_messenger::server::ServerConfig {
        max_message_bytes: 1024,
        delay: Duration::ZERO,
        ..crate::support::test_config()
    });
    let big = "x".repeat(4096);
    // Many notes after the oversized one, so the client is still sending when the server refuses.
    let notes = std::iter::once(note("fine"))
        .chain(std::iter::once(note(&big)))
        .chain((0..10_000).map(|i| note(&format!("{i}"))));
    let code = status_code(server.client().submit_research_notes(notes));
    assert_eq!(code, RpcStatusCode::RESOURCE_EXHAUSTED);
}

/// `x-served-by` in `headers`, which must be there.
fn replica_of(headers: grpcio::Result<&grpcio::Metadata>) -> String {
    learning_messenger::client::calls::served_by(headers.expect("initial metadata"))
        .expect("an x-served-by header")
        .to_owned()
}

#[test]
fn every_pattern_says_which_replica_answered_in_its_initial_metadata() {
    let server = TestServer::with_config(learning_messenger::server::ServerConfig {
        delay: Duration::ZERO,
        replica_name: Some("replica-a".to_owned()),
        max_message_bytes: 1024,
        ..crate::support::test_config()
    });
    let client = server.client();
    block_on(async {
        let mut unary = client
            .get_learning_status_async(&StatusRequest::default())
            .unwrap();
        assert_eq!(replica_of(unary.headers().await), "replica-a");
        assert!(unary.message().await.unwrap().active);

        let mut updates = client
            .stream_learnings_async(&TopicRequest::default())
            .unwrap();
        assert_eq!(replica_of(updates.headers().await), "replica-a");
        assert_eq!(updates.try_collect::<Vec<_>>().await.unwrap().len(), 4);

        let (mut notes, mut summary) = client.submit_research_notes_async().unwrap();
        notes
            .send((note("n"), WriteFlags::default()))
            .await
            .unwrap();
        // The call's end can overtake the half-close: the receiving half says how it went.
        ok_if_call_over(notes.close().await).unwrap();
        assert_eq!(summary.message().await.unwrap().count, 1);
        assert_eq!(replica_of(summary.headers().await), "replica-a");

        let (mut updates, mut echoes) = client.collaborative_feed_async().unwrap();
        updates
            .send((feed("u", "m"), WriteFlags::default()))
            .await
            .unwrap();
        assert_eq!(replica_of(echoes.headers().await), "replica-a");
        ok_if_call_over(updates.close().await).unwrap();
        assert_eq!(echoes.try_collect::<Vec<_>>().await.unwrap().len(), 1);

        // A refused request's status comes with it too.
        let big = StatusRequest {
            user_id: "u".repeat(2048),
            ..Default::default()
        };
        let mut refused = client.get_learning_status_async(&big).unwrap();
        assert_eq!(
            status_code(refused.message().await),
            RpcStatusCode::RESOURCE_EXHAUSTED
        );

        // So do the health service's answers.
        let health = learning_messenger::rpc::health::HealthClient::new(client.channel().clone());
        let mut check = health.check_async(&Default::default()).unwrap();
        assert_eq!(replica_of(check.headers().await), "replica-a");
    });
}

#[test]
fn the_default_replica_name_is_the_bound_address() {
    let server = TestServer::start();
    let client = server.client();
    let mut call = client
        .get_learning_status_async(&StatusRequest::default())
        .unwrap();
    assert_eq!(replica_of(block_on(call.headers())), server.target);
    assert_eq!(server.running().replica_name(), server.target);
}
