//! The lab's "serialization tax", measured: the same generated messages
//! encoded as protobuf binary and as proto3 JSON (rust-protobuf's own JSON
//! mapping), their size and encode/decode time per message; and the binary
//! encoding's size once compressed as gRPC does (gzip, deflate): the lab's
//! messages are so small that compression makes them bigger.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::{GzEncoder, ZlibEncoder};
use protobuf::MessageFull;

use messenger_lab::answers::{self, acknowledge, summarize, STATUS_MESSAGE};
use messenger_lab::demo;
use messenger_lab::proto::messenger::StatusResponse;
use messenger_testkit::report::{format_duration, format_ratio, Table};

use crate::BenchError;

/// One message's figures in both encodings.
#[derive(Clone, Debug)]
pub struct CodecFigures {
    pub message: &'static str,
    pub binary_bytes: usize,
    pub json_bytes: usize,
    /// The binary encoding gzipped, as C-core compresses it (zlib's default level).
    pub gzip_bytes: usize,
    /// The binary encoding in gRPC's "deflate": the zlib format, default level.
    pub deflate_bytes: usize,
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
            "gzip_bytes": self.gzip_bytes,
            "deflate_bytes": self.deflate_bytes,
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

/// The size of `bytes` compressed by `encoder` (a gzip or zlib writer into a Vec).
fn compressed_len<W: Write>(
    mut encoder: W,
    bytes: &[u8],
    finish: impl FnOnce(W) -> std::io::Result<Vec<u8>>,
) -> usize {
    encoder
        .write_all(bytes)
        .and_then(|()| finish(encoder))
        .map_or(0, |out| out.len())
}

/// `bytes` gzipped and in gRPC's deflate (zlib), at zlib's default level like C-core.
pub fn compressed_sizes(bytes: &[u8]) -> (usize, usize) {
    let level = flate2::Compression::default();
    (
        compressed_len(GzEncoder::new(Vec::new(), level), bytes, GzEncoder::finish),
        compressed_len(
            ZlibEncoder::new(Vec::new(), level),
            bytes,
            ZlibEncoder::finish,
        ),
    )
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
    let (gzip_bytes, deflate_bytes) = compressed_sizes(&binary);
    Ok(CodecFigures {
        message: name,
        binary_bytes: binary.len(),
        json_bytes: json.len(),
        gzip_bytes,
        deflate_bytes,
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

/// The figures as a table: sizes (binary, JSON, binary gzipped and
/// deflated), times, and JSON's cost relative to binary.
pub fn table(figures: &[CodecFigures]) -> Table {
    let mut table = Table::new([
        "message",
        "binary",
        "JSON",
        "size",
        "gzip",
        "deflate",
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
            format!("{} B", f.gzip_bytes),
            format!("{} B", f.deflate_bytes),
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
        // Compression only adds to messages this small: gzip's 18 bytes of
        // header and trailer, zlib's 6, and too little text to repeat itself.
        for f in &figures {
            assert!(
                f.gzip_bytes > f.binary_bytes && f.deflate_bytes > f.binary_bytes,
                "{}: gzip {}, deflate {} vs {}",
                f.message,
                f.gzip_bytes,
                f.deflate_bytes,
                f.binary_bytes
            );
        }
        // StatusRequest: 15 bytes, 35 gzipped, 23 deflated.
        assert_eq!((figures[0].gzip_bytes, figures[0].deflate_bytes), (35, 23));
        assert_eq!(table(&figures).rows.len(), 8);
        assert_eq!(
            table(&figures).rows[0][4],
            format!("{} B", figures[0].gzip_bytes)
        );
    }

    #[test]
    fn compressed_sizes_are_those_of_gzip_and_zlib() {
        let (gzip, deflate) = compressed_sizes(&[b'a'; 4096]);
        // Long repeated input shrinks; an empty one is just the framing.
        assert!(gzip < 100 && deflate < gzip, "{gzip} {deflate}");
        assert_eq!(compressed_sizes(&[]), (20, 8));
    }
}
