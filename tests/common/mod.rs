//! Shared by the integration tests: real servers on free loopback ports.
#![allow(dead_code)]

use std::io::Read;
use std::time::Duration;

use grpcio::{GrpcSlice, Marshaller, MessageReader, Method, MethodType};
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::server::{self, RunningServer, ServerConfig};

/// A server in this process on 127.0.0.1 at a free port, stopped on drop.
pub struct TestServer {
    running: Option<RunningServer>,
    pub target: String,
}

impl TestServer {
    /// No delays: tests should not wait for the seed's simulated latency.
    pub fn start() -> TestServer {
        TestServer::with_config(ServerConfig { delay: Duration::ZERO, ..test_config() })
    }

    pub fn with_config(config: ServerConfig) -> TestServer {
        let running = server::start(&config).expect("server starts");
        let target = format!("127.0.0.1:{}", running.port());
        TestServer { running: Some(running), target }
    }

    pub fn client(&self) -> LearningMessengerClient {
        client::connect(&ConnectOptions::new(self.target.clone())).expect("client connects")
    }

    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().unwrap()
    }

    pub fn stop(mut self, grace: Duration) -> server::Stopped {
        self.running.take().unwrap().shutdown(grace)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::ZERO);
        }
    }
}

pub fn test_config() -> ServerConfig {
    ServerConfig { addr: "127.0.0.1:0".to_owned(), completion_queues: 2, ..ServerConfig::default() }
}

fn raw_ser(bytes: &Vec<u8>, buf: &mut GrpcSlice) -> grpcio::Result<()> {
    *buf = GrpcSlice::from(bytes.clone());
    Ok(())
}

fn raw_de(mut reader: MessageReader) -> grpcio::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| grpcio::Error::Codec(Box::new(e)))?;
    Ok(bytes)
}

/// A method that sends and receives raw bytes: for malformed messages and unknown names.
pub fn raw_method(name: &str, ty: MethodType) -> Method<Vec<u8>, Vec<u8>> {
    Method {
        ty,
        name: Box::leak(name.to_owned().into_boxed_str()),
        req_mar: Marshaller { ser: raw_ser, de: raw_de },
        resp_mar: Marshaller { ser: raw_ser, de: raw_de },
    }
}

/// Replaces every `[HH:MM:SS]` with `[--:--:--]`.
pub fn mask_timestamps(transcript: &str) -> String {
    transcript
        .lines()
        .map(|line| match line.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
            Some((time, rest)) if is_hh_mm_ss(time) => format!("[--:--:--]{rest}\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

pub fn is_hh_mm_ss(text: &str) -> bool {
    let parts: Vec<_> = text.split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What the seed's client.py prints, timestamps masked.
pub const SEED_TRANSCRIPT: &str = "\
--- Unary Request ---
Server Response: System ready for research. Status check OK. (Active: True)

--- Server Streaming (Real-time updates) ---
[--:--:--] Progress 25%: Searching for research papers on gRPC Protocols...
[--:--:--] Progress 50%: Analyzing core principles of gRPC Protocols...
[--:--:--] Progress 75%: Synthesizing key gRPC use cases...
[--:--:--] Progress 100%: Finalizing the consolidated report.

--- Client Streaming (Uploading research notes) ---
Server Summary: Processed 4 notes. Key takeaway: Note 4: Typed interface contracts (Total 4)

--- Bi-directional Streaming (Collaborative Feed) ---
 [Feed Update] System: Acknowledged Engineer's update: Initializing system...
 [Feed Update] System: Acknowledged Lead's update: Monitoring data flow...
 [Feed Update] System: Acknowledged QA's update: Verifying latency...
";
