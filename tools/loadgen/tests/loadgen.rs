//! The load generator against a real server started in-process, at tiny sizes:
//! each workload completes with its answers checked, and a failed call or an
//! unreachable server is an error, not a figure. Figures are never asserted.

use std::net::TcpListener;
use std::time::Duration;

use bytes::BytesMut;
use learning_messenger::proto::messenger::ResearchNote;
use learning_messenger::server::{self, RunningServer, ServerConfig};
use messenger_loadgen::{self as loadgen, encode, Connection, Decoder};
use protobuf::Message;

fn start_server(max_message_bytes: usize) -> (RunningServer, String) {
    let config = ServerConfig {
        addr: "127.0.0.1:0".to_owned(),
        delay: Duration::ZERO,
        max_message_bytes,
        ..Default::default()
    };
    let running = server::start(&config).expect("server starts");
    let target = format!("127.0.0.1:{}", running.port());
    (running, target)
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn every_workload_completes_with_checked_answers() {
    let (_server, target) = start_server(1 << 20);
    block_on(async {
        let connections = vec![
            Connection::open(&target).await.unwrap(),
            Connection::open(&target).await.unwrap(),
        ];
        // Only calls started in the window count, and none is an error:
        // long enough for a loaded machine to start some.
        let short = Duration::from_secs(1);

        let unary = loadgen::unary(&connections, 4, Duration::ZERO, short)
            .await
            .unwrap();
        assert!(unary.calls > 0);
        assert_eq!(unary.latency.unwrap().samples, unary.calls);

        let streams = loadgen::server_stream(&connections, 3, Duration::ZERO, short)
            .await
            .unwrap();
        assert!(streams.calls > 0);

        // Enough notes and updates to span several 64 KiB chunks and DATA frames.
        loadgen::client_stream(&connections[0], 20_000)
            .await
            .unwrap();
        loadgen::bidi(&connections[1], 20_000).await.unwrap();

        let latency = loadgen::ping_pong(&connections[0], 10, 50).await.unwrap();
        assert_eq!(latency.samples, 50);
    });
}

#[test]
fn a_failed_call_is_an_error_with_its_status() {
    // Notes over 16 bytes are refused with RESOURCE_EXHAUSTED (code 8).
    let (_server, target) = start_server(16);
    let error = block_on(async {
        loadgen::client_stream(&Connection::open(&target).await.unwrap(), 10).await
    })
    .unwrap_err();
    assert!(error.contains("status 8"), "{error}");
}

#[test]
fn an_unreachable_or_non_grpc_target_is_an_error() {
    let free = format!("127.0.0.1:{}", messenger_testkit::port::reserve().unwrap());
    let error = block_on(Connection::open(&free)).err().unwrap();
    assert!(error.contains("cannot reach"), "{error}");

    // A listener that never speaks HTTP/2: the handshake fails (it closes at once).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let closer = std::thread::spawn(move || drop(silent.accept()));
    let result = block_on(async {
        let connection = Connection::open(&target).await?;
        loadgen::unary(&[connection], 1, Duration::ZERO, Duration::from_millis(100)).await
    });
    closer.join().unwrap();
    assert!(result.is_err());
}

#[test]
fn the_decoder_finds_messages_however_the_frames_split_them() {
    let mut wire = BytesMut::new();
    let mut scratch = Vec::new();
    let notes: Vec<ResearchNote> = (0..3)
        .map(|i| ResearchNote {
            text: format!("note {i}"),
            ..Default::default()
        })
        .collect();
    for note in &notes {
        encode(note, &mut scratch, &mut wire).unwrap();
    }
    let mut decoder = Decoder::default();
    let mut decoded = Vec::new();
    for byte in wire.iter() {
        decoder.push(&[*byte]);
        while let Some(message) = decoder.next_message().unwrap() {
            decoded.push(ResearchNote::parse_from_bytes(&message).unwrap());
        }
    }
    assert_eq!(decoded, notes);
    assert!(decoder.is_empty());

    let mut compressed = Decoder::default();
    compressed.push(&[1, 0, 0, 0, 0]);
    assert!(compressed
        .next_message()
        .unwrap_err()
        .contains("compressed"));
}
