//! Records as text (one colour per stream on a terminal, so interleaved
//! streams can be told apart) or as JSON, one object per line, the fields of
//! docs/wiretap.md.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::annotate::{self, Field};
use crate::event::{Body, Detail, Event, Frame, Message, Raw, Record, Summary};
use crate::frame;
use crate::names;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// How records are printed.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub format: Format,
    /// ANSI colours, one per stream (text only).
    pub colour: bool,
}

/// Stream colours: ANSI foregrounds that read on dark and light terminals.
const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "31"];

/// Appends `record` to `out`, one line or more, each ending in a newline.
pub fn render(record: &Record, style: Style, out: &mut String) {
    match style.format {
        Format::Json => {
            json_line(record, out);
            out.push('\n');
        }
        Format::Text => text_lines(record, style.colour, out),
    }
}

fn stream_of(event: &Event) -> Option<u32> {
    match event {
        Event::Frame(frame) => Some(frame.stream),
        Event::Message(message) => Some(message.stream),
        _ => None,
    }
}

fn text_lines(record: &Record, colour: bool, out: &mut String) {
    let mut lead = format!("#{} {:.6}", record.conn, record.time.as_secs_f64());
    if let Some(direction) = record.direction {
        let _ = write!(lead, " {}", direction.arrow());
    }
    if let Some(stream) = stream_of(&record.event) {
        let _ = write!(lead, " stream {stream}");
    }
    let lines = match &record.event {
        Event::Opened { client, upstream } => vec![format!("open: {client} -> tap -> {upstream}")],
        Event::Preface => vec![format!("preface {}", frame::quoted(frame::PREFACE))],
        Event::Frame(frame) => frame_text(frame),
        Event::Message(message) => message_text(message),
        Event::Notice(text) => vec![format!("! {text}")],
        Event::Closed(summary) => vec![summary_text(summary)],
    };
    let colour = colour
        .then(|| stream_of(&record.event).filter(|&s| s != 0))
        .flatten()
        .map(|s| PALETTE[(s as usize / 2) % PALETTE.len()]);
    for line in lines {
        match colour {
            Some(code) => {
                let _ = writeln!(out, "\x1b[{code}m{lead} {line}\x1b[0m");
            }
            None => {
                let _ = writeln!(out, "{lead} {line}");
            }
        }
    }
}

fn frame_text(frame: &Frame) -> Vec<String> {
    let flags = frame.kind.flag_names(frame.flags);
    let mut head = format!("{} len={}", frame.kind.name(), frame.length);
    if !flags.is_empty() {
        let _ = write!(head, " [{}]", flags.join(" "));
    }
    let mut lines = Vec::new();
    match &frame.detail {
        Detail::None => {}
        Detail::Settings(settings) => {
            for (id, value) in settings {
                let _ = write!(head, " {}={value}", names::setting(*id));
            }
        }
        Detail::WindowUpdate(increment) => {
            let _ = write!(head, " increment={increment}");
        }
        Detail::Ping(payload) => {
            let _ = write!(head, " payload={}", annotate::hex(payload).replace(' ', ""));
        }
        Detail::RstStream(code) => {
            let _ = write!(head, " error={}", names::error_code(*code));
        }
        Detail::GoAway {
            last_stream,
            code,
            debug,
        } => {
            let _ = write!(
                head,
                " last_stream={last_stream} error={}",
                names::error_code(*code)
            );
            if !debug.is_empty() {
                let _ = write!(head, " debug={}", frame::quoted(debug));
            }
        }
        Detail::HeadersContinue => head.push_str(" (block continues)"),
        Detail::Malformed(why) => {
            let _ = write!(head, " ! {why}");
        }
        Detail::Headers(block) => {
            let _ = write!(head, " {}", block.role.name());
            if let Some(error) = &block.error {
                let _ = write!(head, " ! {error}");
            }
            lines.push(head);
            for (name, value) in &block.fields {
                let mut line = format!("    {name}: {value}");
                if name == "grpc-status" {
                    if let Some(code) = names::grpc_status(value) {
                        let _ = write!(line, " ({code})");
                    }
                }
                lines.push(line);
            }
            return lines;
        }
    }
    lines.push(head);
    lines
}

fn message_text(message: &Message) -> Vec<String> {
    let type_name = message.type_name.as_deref().unwrap_or("(unknown type)");
    let mut head = format!(
        "  message: compressed={} length={} {type_name}",
        u8::from(message.compressed),
        message.length
    );
    if message.frames > 1 {
        let _ = write!(head, " (split over {} DATA frames)", message.frames);
    }
    match &message.body {
        Body::Decoded(decoded) => {
            let _ = write!(
                head,
                " {{ {} }}",
                decoded.text.as_deref().unwrap_or(&decoded.json)
            );
            let binary = message.length.max(1) as f64;
            let _ = write!(
                head,
                "  [binary {} B, JSON {} B: {:.2}x]",
                message.length,
                decoded.json.len(),
                decoded.json.len() as f64 / binary
            );
        }
        Body::Schemaless(text) => {
            let _ = write!(head, " {{ {} }} (schema-less)", shortened(text));
        }
        Body::NotDecoded(why) => {
            let _ = write!(head, " ! {why}");
        }
    }
    let mut lines = vec![head];
    if let Some(fields) = &message.fields {
        field_lines(fields, 2, &mut lines);
    }
    lines
}

/// At most this many characters of a message are shown on a text line.
const TEXT_SHOWN: usize = 200;

/// `text`, cut to [`TEXT_SHOWN`] characters, saying how long it was.
fn shortened(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(TEXT_SHOWN) {
        None => text.into(),
        Some((end, _)) => {
            format!("{} … ({} characters)", &text[..end], text.chars().count()).into()
        }
    }
}

fn field_lines(fields: &[Field], depth: usize, lines: &mut Vec<String>) {
    for field in fields {
        lines.push(format!(
            "{}{}",
            "  ".repeat(depth + 1),
            annotate::field_line(field)
        ));
        field_lines(&field.fields, depth + 1, lines);
    }
}

fn summary_text(summary: &Summary) -> String {
    let frames: Vec<String> = summary
        .frames
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    let ratio = summary
        .json_ratio()
        .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"));
    format!(
        "closed: streams opened {}; frames {}; bytes C→S {} S→C {}; messages C→S {} S→C {}; JSON/binary {ratio} ({} B JSON for {} B binary)",
        summary.streams,
        if frames.is_empty() { "none".to_owned() } else { frames.join(" ") },
        summary.bytes[0],
        summary.bytes[1],
        summary.messages[0],
        summary.messages[1],
        summary.json_bytes,
        summary.binary_bytes
    )
}

fn json_line(record: &Record, out: &mut String) {
    if let Event::Message(message) = &record.event {
        return message_json(record, message, out);
    }
    let mut object = Map::new();
    object.insert("conn".into(), json!(record.conn));
    object.insert("time".into(), json!(seconds(record)));
    if let Some(direction) = record.direction {
        object.insert("dir".into(), json!(direction.key()));
    }
    match &record.event {
        Event::Opened { client, upstream } => {
            object.insert("event".into(), json!("open"));
            object.insert("client".into(), json!(client));
            object.insert("upstream".into(), json!(upstream));
        }
        Event::Preface => {
            object.insert("event".into(), json!("preface"));
        }
        Event::Frame(frame) => {
            object.insert("event".into(), json!("frame"));
            frame_json(frame, &mut object);
        }
        Event::Notice(text) => {
            object.insert("event".into(), json!("notice"));
            object.insert("text".into(), json!(text));
        }
        Event::Closed(summary) => {
            object.insert("event".into(), json!("close"));
            object.insert("streams".into(), json!(summary.streams));
            object.insert("frames".into(), json!(summary.frames));
            object.insert(
                "bytes".into(),
                json!({"client_to_server": summary.bytes[0], "server_to_client": summary.bytes[1]}),
            );
            object.insert(
                "messages".into(),
                json!({"client_to_server": summary.messages[0], "server_to_client": summary.messages[1]}),
            );
            object.insert("binary_bytes".into(), json!(summary.binary_bytes));
            object.insert("json_bytes".into(), json!(summary.json_bytes));
            object.insert("json_ratio".into(), json!(summary.json_ratio()));
        }
        Event::Message(_) => unreachable!("handled above"),
    }
    out.push_str(&Value::Object(object).to_string());
}

/// The record's time in seconds, to the microsecond.
fn seconds(record: &Record) -> f64 {
    record.time.as_micros() as f64 / 1e6
}

fn frame_json(frame: &Frame, object: &mut Map<String, Value>) {
    object.insert("stream".into(), json!(frame.stream));
    object.insert("type".into(), json!(frame.kind.name()));
    object.insert("flags".into(), json!(frame.kind.flag_names(frame.flags)));
    object.insert("length".into(), json!(frame.length));
    match &frame.raw {
        None => {}
        Some(Raw::Bytes { bytes, masked }) => {
            object.insert("raw".into(), json!(annotate::hex(bytes).replace(' ', "")));
            if !masked.is_empty() {
                let masked: Vec<Value> = masked
                    .iter()
                    .map(|m| json!({"from": m.bytes.start, "to": m.bytes.end, "header": m.header}))
                    .collect();
                object.insert("masked".into(), json!(masked));
            }
        }
        Some(Raw::Withheld(why)) => {
            object.insert("raw_withheld".into(), json!(why));
        }
    }
    match &frame.detail {
        Detail::None => {}
        Detail::Settings(settings) => {
            let list: Vec<Value> = settings
                .iter()
                .map(|(id, value)| json!({"id": id, "name": names::setting(*id), "value": value}))
                .collect();
            object.insert("settings".into(), json!(list));
        }
        Detail::WindowUpdate(increment) => {
            object.insert("increment".into(), json!(increment));
        }
        Detail::Ping(payload) => {
            object.insert(
                "payload".into(),
                json!(annotate::hex(payload).replace(' ', "")),
            );
        }
        Detail::RstStream(code) => {
            object.insert("error_code".into(), json!(code));
            object.insert("error".into(), json!(names::error_code(*code)));
        }
        Detail::GoAway {
            last_stream,
            code,
            debug,
        } => {
            object.insert("last_stream".into(), json!(last_stream));
            object.insert("error_code".into(), json!(code));
            object.insert("error".into(), json!(names::error_code(*code)));
            object.insert("debug".into(), json!(String::from_utf8_lossy(debug)));
        }
        Detail::HeadersContinue => {
            object.insert("continued".into(), json!(true));
        }
        Detail::Malformed(why) => {
            object.insert("malformed".into(), json!(why));
        }
        Detail::Headers(block) => {
            object.insert("role".into(), json!(block.role.name()));
            let fields: Vec<Value> = block.fields.iter().map(|(n, v)| json!([n, v])).collect();
            object.insert("headers".into(), json!(fields));
            if let Some(status) = block.get("grpc-status") {
                object.insert("grpc_status_name".into(), json!(names::grpc_status(status)));
            }
            if let Some(error) = &block.error {
                object.insert("hpack_error".into(), json!(error));
            }
        }
    }
}

/// Written by hand: a large upload has one of these per note, and the
/// message's JSON goes in as it is.
fn message_json(record: &Record, message: &Message, out: &mut String) {
    let _ = write!(
        out,
        "{{\"conn\":{},\"time\":{}",
        record.conn,
        seconds(record)
    );
    if let Some(direction) = record.direction {
        let _ = write!(out, ",\"dir\":\"{}\"", direction.key());
    }
    let _ = write!(
        out,
        ",\"event\":\"message\",\"stream\":{},\"compressed\":{},\"length\":{},\"data_frames\":{},\"type\":{}",
        message.stream,
        message.compressed,
        message.length,
        message.frames,
        json!(message.type_name)
    );
    match &message.body {
        Body::Decoded(decoded) => {
            let _ = write!(
                out,
                ",\"json_length\":{},\"message\":{}",
                decoded.json.len(),
                decoded.json
            );
        }
        Body::Schemaless(text) => {
            let _ = write!(out, ",\"schemaless\":{}", json!(text));
        }
        Body::NotDecoded(why) => {
            let _ = write!(out, ",\"not_decoded\":{}", json!(why));
        }
    }
    if let Some(fields) = &message.fields {
        let list: Vec<Value> = fields.iter().map(annotate::field_json).collect();
        let _ = write!(out, ",\"fields\":{}", Value::Array(list));
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Decoded;
    use crate::event::{Direction, HeaderBlock, HeaderRole};
    use crate::frame::FrameType;

    fn record(event: Event) -> Record {
        Record {
            conn: 3,
            time: std::time::Duration::from_micros(1_500),
            direction: Some(Direction::ServerToClient),
            event,
        }
    }

    fn text(record: &Record) -> String {
        let mut out = String::new();
        render(
            record,
            Style {
                format: Format::Text,
                colour: false,
            },
            &mut out,
        );
        out
    }

    fn json_of(record: &Record) -> Value {
        let mut out = String::new();
        render(
            record,
            Style {
                format: Format::Json,
                colour: false,
            },
            &mut out,
        );
        assert!(
            out.ends_with('\n') && out.matches('\n').count() == 1,
            "{out:?}"
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    #[test]
    fn trailers_show_the_status_name() {
        let trailers = record(Event::Frame(Frame {
            stream: 1,
            kind: FrameType::Headers,
            flags: frame::END_HEADERS | frame::END_STREAM,
            length: 16,
            detail: Detail::Headers(HeaderBlock {
                role: HeaderRole::Trailers,
                fields: vec![
                    ("grpc-status".into(), "5".into()),
                    ("grpc-message".into(), "no".into()),
                ],
                error: None,
            }),
            raw: None,
        }));
        assert_eq!(
            text(&trailers),
            "#3 0.001500 S→C stream 1 HEADERS len=16 [END_STREAM END_HEADERS] trailers\n\
             #3 0.001500 S→C stream 1     grpc-status: 5 (NOT_FOUND)\n\
             #3 0.001500 S→C stream 1     grpc-message: no\n"
        );
        let value = json_of(&trailers);
        assert_eq!(value["grpc_status_name"], "NOT_FOUND");
        assert_eq!(value["time"], 0.0015);
        assert_eq!(value["flags"], json!(["END_STREAM", "END_HEADERS"]));
        assert_eq!(value["headers"][1], json!(["grpc-message", "no"]));
    }

    #[test]
    fn messages_carry_their_json_as_it_is() {
        let message = record(Event::Message(Message {
            stream: 5,
            compressed: false,
            length: 8,
            frames: 1,
            type_name: Some("messenger.ResearchNote".into()),
            body: Body::Decoded(Decoded {
                text: Some("text: \"note 1\"".into()),
                json: "{\"text\": \"note 1\"}".into(),
            }),
            fields: None,
        }));
        let value = json_of(&message);
        assert_eq!(value["message"]["text"], "note 1");
        assert_eq!(value["json_length"], 18);
        assert_eq!(value["type"], "messenger.ResearchNote");
        assert!(text(&message).contains("{ text: \"note 1\" }  [binary 8 B, JSON 18 B: 2.25x]"));
    }
}
