//! The seed's "serialization tax", measured: the same generated messages
//! encoded as protobuf binary and as proto3 JSON (rust-protobuf's own JSON
//! mapping), their size and encode/decode time per message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use protobuf::MessageFull;

use messenger_lab::answers::{self, acknowledge, summarize, STATUS_MESSAGE};
use messenger_lab::demo;
use messenger_lab::proto::messenger::StatusResponse;
use messenger_lab::report::{format_duration, format_ratio, Table};

use crate::BenchError;

/// One message's figures in both encodings.
#[derive(Clone, Debug)]
pub struct CodecFigures {
    pub message: &'static str,
    pub binary_bytes: usize,
    pub json_bytes: usize,
    pub binary_encode: Duration,
    pub json_encode: Duration,
    pub binary_decode: Duration,
    pub json_decode: Duration,
}

impl CodecFigures {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.message,
            "binary_bytes": self.binary_bytes,
            "json_bytes": self.json_bytes,
            "binary_encode_ns": self.binary_encode.as_nanos() as u64,
            "json_encode_ns": self.json_encode.as_nanos() as u64,
            "binary_decode_ns": self.binary_decode.as_nanos() as u64,
            "json_decode_ns": self.json_decode.as_nanos() as u64,
        })
    }
}

/// The average time of one `f()` over `iterations`.
fn time_per_call<T>(iterations: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(f());
    }
    start.elapsed() / iterations.max(1)
}

/// Measures `message` both ways; fails if either encoding does not give the message back.
pub fn measure<M: MessageFull + PartialEq>(
    name: &'static str,
    message: &M,
    iterations: u32,
) -> Result<CodecFigures, BenchError> {
    let wrong = |what: String| BenchError::wrong("codec", format!("{name}: {what}"));
    let binary = message
        .write_to_bytes()
        .map_err(|e| wrong(format!("binary encoding failed: {e}")))?;
    let json = protobuf_json_mapping::print_to_string(message)
        .map_err(|e| wrong(format!("JSON encoding failed: {e}")))?;
    let from_binary =
        M::parse_from_bytes(&binary).map_err(|e| wrong(format!("binary decoding failed: {e}")))?;
    let from_json: M = protobuf_json_mapping::parse_from_str(&json)
        .map_err(|e| wrong(format!("JSON decoding failed: {e}")))?;
    if from_binary != *message || from_json != *message {
        return Err(wrong("a round trip changed the message".to_owned()));
    }
    Ok(CodecFigures {
        message: name,
        binary_bytes: binary.len(),
        json_bytes: json.len(),
        binary_encode: time_per_call(iterations, || black_box(message).write_to_bytes()),
        json_encode: time_per_call(iterations, || {
            protobuf_json_mapping::print_to_string(black_box(message))
        }),
        binary_decode: time_per_call(iterations, || M::parse_from_bytes(black_box(&binary))),
        json_decode: time_per_call(iterations, || {
            protobuf_json_mapping::parse_from_str::<M>(black_box(&json))
        }),
    })
}

/// Every message of the contract, with the contents the original lab's demos send.
pub fn measure_all(iterations: u32) -> Result<Vec<CodecFigures>, BenchError> {
    let topic = demo::topic_request();
    let contents = answers::learning_contents(&topic.topic);
    let note = demo::notes().last().unwrap_or_default();
    let update = demo::feed().next().unwrap_or_default();
    let status = StatusResponse {
        message: STATUS_MESSAGE.into(),
        active: true,
        ..Default::default()
    };
    let mut learning = answers::learning_update(0, contents[0].clone());
    // A fixed time: every run measures the same bytes.
    learning.timestamp = "12:34:56".into();
    Ok(vec![
        measure("StatusRequest", &demo::status_request(), iterations)?,
        measure("StatusResponse", &status, iterations)?,
        measure("TopicRequest", &topic, iterations)?,
        measure("LearningUpdate", &learning, iterations)?,
        measure("ResearchNote", &note, iterations)?,
        measure(
            "SummaryResponse",
            &summarize(4, Some(&note.text)),
            iterations,
        )?,
        measure("FeedUpdate", &update, iterations)?,
        measure("FeedUpdate (echo)", &acknowledge(&update), iterations)?,
    ])
}

/// The figures as a table: sizes, times, and JSON's cost relative to binary.
pub fn table(figures: &[CodecFigures]) -> Table {
    let mut table = Table::new([
        "message",
        "binary",
        "JSON",
        "size",
        "encode bin",
        "encode JSON",
        "decode bin",
        "decode JSON",
        "JSON/bin time",
    ]);
    for f in figures {
        let ratio = |json: usize, binary: usize| (binary > 0).then(|| json as f64 / binary as f64);
        let binary_time = (f.binary_encode + f.binary_decode).as_nanos() as f64;
        let json_time = (f.json_encode + f.json_decode).as_nanos() as f64;
        table.push([
            f.message.to_owned(),
            format!("{} B", f.binary_bytes),
            format!("{} B", f.json_bytes),
            format_ratio(ratio(f.json_bytes, f.binary_bytes)),
            format_duration(f.binary_encode),
            format_duration(f.json_encode),
            format_duration(f.binary_decode),
            format_duration(f.json_decode),
            format_ratio((binary_time > 0.0).then(|| json_time / binary_time)),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_json_is_larger() {
        let figures = measure_all(3).unwrap();
        assert_eq!(figures.len(), 8);
        for f in &figures {
            assert!(
                f.json_bytes > f.binary_bytes,
                "{}: {} vs {}",
                f.message,
                f.json_bytes,
                f.binary_bytes
            );
        }
        // The original demo's StatusRequest: tag+len+13 bytes vs {"userId": "researcher-01"}.
        assert_eq!(figures[0].binary_bytes, 15);
        assert_eq!(table(&figures).rows.len(), 8);
    }
}
