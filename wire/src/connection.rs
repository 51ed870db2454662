//! One connection's decoder: both directions' frames, one HPACK decoder per
//! direction (fed every header block in order, padding and priority
//! stripped, so indexed headers of later requests decode), and the state of
//! each open stream (its `:path`, its `grpc-encoding`, a half-read message),
//! dropped when the stream ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::annotate;
use crate::contract::{self, Contract};
use crate::credential::{self, Secret};
use crate::event::{
    Body, Detail, Direction, Event, Frame, HeaderBlock, HeaderRole, Message, Raw, Record, Summary,
};
use crate::frame::{
    FrameError, FrameHeader, FrameReader, FrameType, Piece, END_HEADERS, END_STREAM, HEADER_LEN,
    PADDED, PRIORITY,
};
use crate::message::{self, Reassembler};
use crate::names;

/// The most of one header block (HEADERS and its CONTINUATIONs) kept for
/// HPACK; past it the block, and with it that direction's header table, is lost.
pub const HEADER_BLOCK_CAP: usize = 1 << 20;
/// The most of a frame's bytes a record keeps, with [`DecodeOptions::raw`].
pub const RAW_CAP: usize = 1024;

/// What to decode beyond frames and headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// Each message in protobuf's text format (the JSON is always made, for its size).
    pub text: bool,
    /// Each message's fields as annotated bytes.
    pub bytes: bool,
    /// Each frame's own bytes (for the web view's click-through).
    pub raw: bool,
}

pub struct ConnectionDecoder {
    readers: [FrameReader; 2],
    state: State,
}

struct State {
    conn: u64,
    contract: Arc<Contract>,
    options: DecodeOptions,
    sides: [Side; 2],
    streams: HashMap<u32, Stream>,
    summary: Summary,
    /// TLS, or a client that does not speak HTTP/2: nothing more is decoded.
    undecoded: bool,
    /// A SETTINGS_MAX_FRAME_SIZE for the other direction's reader.
    max_frame_size: Option<(Direction, u32)>,
    /// When the bytes being fed were read.
    time: Duration,
}

/// One direction's header decoding and the DATA frame being read.
struct Side {
    hpack: loona_hpack::Decoder<'static>,
    block: Vec<u8>,
    block_stream: u32,
    block_ends_stream: bool,
    block_kind: FrameType,
    /// The frames the block came in so far.
    block_frames: u32,
    /// The header table is out of step: no more headers are decoded this way.
    headers_lost: bool,
    data_stream: u32,
}

#[derive(Default)]
struct Stream {
    path: Option<String>,
    encoding: [Option<String>; 2],
    messages: [Reassembler; 2],
    ended: [bool; 2],
    headers_seen: [bool; 2],
}

impl ConnectionDecoder {
    pub fn new(conn: u64, contract: Arc<Contract>, options: DecodeOptions) -> ConnectionDecoder {
        let side = || Side {
            hpack: loona_hpack::Decoder::new(),
            block: Vec::new(),
            block_stream: 0,
            block_ends_stream: false,
            block_kind: FrameType::Headers,
            block_frames: 0,
            headers_lost: false,
            data_stream: 0,
        };
        ConnectionDecoder {
            readers: Direction::BOTH.map(|d| FrameReader::new(d.sender())),
            state: State {
                conn,
                contract,
                options,
                sides: [side(), side()],
                streams: HashMap::new(),
                summary: Summary::default(),
                undecoded: false,
                max_frame_size: None,
                time: Duration::ZERO,
            },
        }
    }

    /// When the bytes fed next were read (since the connection was accepted).
    pub fn set_time(&mut self, time: Duration) {
        self.state.time = time;
    }

    /// Reads `bytes` that went `direction`, adding what they show to `out`.
    pub fn feed(&mut self, direction: Direction, bytes: &[u8], out: &mut Vec<Record>) {
        let d = direction.index();
        self.state.summary.bytes[d] += bytes.len() as u64;
        if self.state.undecoded || self.readers[d].is_broken() {
            return;
        }
        let state = &mut self.state;
        let result =
            self.readers[d].feed(bytes, &mut |piece| state.on_piece(direction, piece, out));
        if let Some((to, size)) = self.state.max_frame_size.take() {
            self.readers[to.index()].set_max_frame_size(size);
        }
        if let Err(error) = result {
            let whole_connection = matches!(error, FrameError::Tls | FrameError::NotPreface { .. });
            let what = if whole_connection {
                self.state.undecoded = true;
                "the connection is forwarded undecoded"
            } else {
                "the rest of this direction is forwarded undecoded"
            };
            self.state
                .notice(Some(direction), format!("{error}; {what}"), out);
        }
    }

    /// A notice on this connection, in order with its frames.
    pub fn notice(&mut self, direction: Option<Direction>, text: String, out: &mut Vec<Record>) {
        self.state.notice(direction, text, out);
    }

    /// The connection is closed: what was cut short, then the summary.
    pub fn finish(mut self, out: &mut Vec<Record>) -> Summary {
        if !self.state.undecoded {
            for direction in Direction::BOTH {
                if let Some(cut) = self.readers[direction.index()].unfinished() {
                    self.state.notice(
                        Some(direction),
                        format!("truncated: the connection ended {cut}"),
                        out,
                    );
                }
            }
        }
        let summary = self.state.summary.clone();
        out.push(Record {
            conn: self.state.conn,
            time: self.state.time,
            direction: None,
            event: Event::Closed(summary.clone()),
        });
        summary
    }

    /// Streams whose state is kept (open ones).
    pub fn open_streams(&self) -> usize {
        self.state.streams.len()
    }
}

impl State {
    fn notice(&mut self, direction: Option<Direction>, text: String, out: &mut Vec<Record>) {
        out.push(Record {
            conn: self.conn,
            time: self.time,
            direction,
            event: Event::Notice(text),
        });
    }

    /// `payload`: as much of the frame's payload as is in hand; `shown`:
    /// which of its bytes the record may keep.
    fn frame(
        &self,
        direction: Direction,
        header: &FrameHeader,
        payload: &[u8],
        detail: Detail,
        shown: Shown,
        out: &mut Vec<Record>,
    ) {
        let raw = self.options.raw.then(|| raw_bytes(header, payload, shown));
        out.push(Record {
            conn: self.conn,
            time: self.time,
            direction: Some(direction),
            event: Event::Frame(Frame {
                stream: header.stream,
                kind: header.kind,
                flags: header.flags,
                length: header.length,
                detail,
                raw,
            }),
        });
    }

    fn on_piece(&mut self, direction: Direction, piece: Piece<'_>, out: &mut Vec<Record>) {
        let d = direction.index();
        match piece {
            Piece::Preface => out.push(Record {
                conn: self.conn,
                time: self.time,
                direction: Some(direction),
                event: Event::Preface,
            }),
            Piece::Start { header, ahead } => {
                *self.summary.frames.entry(header.kind.name()).or_default() += 1;
                if header.kind == FrameType::Data {
                    // DATA is shown as it starts: its messages follow it.
                    self.frame(direction, &header, ahead, Detail::None, Shown::All, out);
                    self.sides[d].data_stream = header.stream;
                    if let Some(stream) = self.streams.get_mut(&header.stream) {
                        stream.messages[d].frame_started();
                    }
                }
            }
            Piece::Data(bytes) => self.on_data(direction, bytes, out),
            Piece::End {
                header,
                payload,
                truncated,
            } => {
                if header.kind == FrameType::Data {
                    if header.has(END_STREAM) {
                        self.end_stream(direction, header.stream, out);
                    }
                } else if truncated {
                    self.on_truncated(direction, &header, out);
                } else {
                    let (detail, shown) = self.detail(direction, &header, payload, out);
                    self.frame(direction, &header, payload, detail, shown, out);
                }
            }
        }
    }

    fn on_data(&mut self, direction: Direction, bytes: &[u8], out: &mut Vec<Record>) {
        let d = direction.index();
        let id = self.sides[d].data_stream;
        let stream = self.streams.entry(id).or_default();
        let Stream {
            path,
            encoding,
            messages,
            ..
        } = stream;
        let method = path.as_deref().and_then(|p| self.contract.method(p));
        let descriptor = method.map(|m| match direction {
            Direction::ClientToServer => &m.request,
            Direction::ServerToClient => &m.response,
        });
        let options = self.options;
        let summary = &mut self.summary;
        let (conn, time) = (self.conn, self.time);
        messages[d].feed(bytes, &mut |m| {
            summary.messages[d] += 1;
            let message = describe(id, m, descriptor, encoding[d].as_deref(), options, summary);
            out.push(Record {
                conn,
                time,
                direction: Some(direction),
                event: Event::Message(message),
            });
        });
    }

    fn end_stream(&mut self, direction: Direction, id: u32, out: &mut Vec<Record>) {
        let d = direction.index();
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.ended[d] = true;
        if let Some(cut) = stream.messages[d].unfinished() {
            stream.messages[d] = Reassembler::default();
            self.notice(
                Some(direction),
                format!("malformed: stream {id} ended {cut}"),
                out,
            );
        }
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.ended == [true, true])
        {
            self.streams.remove(&id);
        }
    }

    fn on_truncated(&mut self, direction: Direction, header: &FrameHeader, out: &mut Vec<Record>) {
        let why = format!(
            "a {}-byte payload, over the tap's {}-byte cap: not decoded",
            header.length,
            crate::frame::PAYLOAD_CAP
        );
        if matches!(
            header.kind,
            FrameType::Headers | FrameType::Continuation | FrameType::PushPromise
        ) {
            self.lose_headers(direction, &why, out);
        }
        self.frame(
            direction,
            header,
            &[],
            Detail::Malformed(why),
            Shown::All,
            out,
        );
    }

    fn lose_headers(&mut self, direction: Direction, why: &str, out: &mut Vec<Record>) {
        let side = &mut self.sides[direction.index()];
        side.block = Vec::new();
        if !side.headers_lost {
            side.headers_lost = true;
            self.notice(
                Some(direction),
                format!("HPACK: {why}; this direction's header table is lost, its headers are no longer decoded"),
                out,
            );
        }
    }

    /// What a frame says, and which of its bytes its record may keep.
    fn detail(
        &mut self,
        direction: Direction,
        header: &FrameHeader,
        payload: &[u8],
        out: &mut Vec<Record>,
    ) -> (Detail, Shown) {
        match header.kind {
            FrameType::Headers | FrameType::PushPromise | FrameType::Continuation => {
                self.header_frame(direction, header, payload, out)
            }
            _ => (self.control_detail(direction, header, payload), Shown::All),
        }
    }

    /// A frame of another type than DATA and the header blocks'.
    fn control_detail(
        &mut self,
        direction: Direction,
        header: &FrameHeader,
        payload: &[u8],
    ) -> Detail {
        let malformed = |what: &str| Detail::Malformed(format!("{} {what}", header.kind.name()));
        match header.kind {
            FrameType::Settings => {
                if !payload.len().is_multiple_of(6) {
                    return malformed("payload is not a whole number of 6-byte settings");
                }
                let settings: Vec<(u16, u32)> = payload
                    .chunks(6)
                    .map(|s| {
                        (
                            u16::from_be_bytes([s[0], s[1]]),
                            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                        )
                    })
                    .collect();
                for &(id, value) in &settings {
                    if id == names::MAX_FRAME_SIZE {
                        // It limits the frames this sender receives.
                        self.max_frame_size = Some((direction.other(), value));
                    }
                }
                Detail::Settings(settings)
            }
            FrameType::WindowUpdate => match <[u8; 4]>::try_from(payload) {
                Ok(bytes) => Detail::WindowUpdate(u32::from_be_bytes(bytes) & 0x7fff_ffff),
                Err(_) => malformed("payload is not 4 bytes"),
            },
            FrameType::Ping => match <[u8; 8]>::try_from(payload) {
                Ok(bytes) => Detail::Ping(bytes),
                Err(_) => malformed("payload is not 8 bytes"),
            },
            FrameType::RstStream => match <[u8; 4]>::try_from(payload) {
                Ok(bytes) => {
                    self.streams.remove(&header.stream);
                    Detail::RstStream(u32::from_be_bytes(bytes))
                }
                Err(_) => malformed("payload is not 4 bytes"),
            },
            FrameType::GoAway => {
                if payload.len() < 8 {
                    return malformed("payload is shorter than 8 bytes");
                }
                Detail::GoAway {
                    last_stream: u32::from_be_bytes([
                        payload[0], payload[1], payload[2], payload[3],
                    ]) & 0x7fff_ffff,
                    code: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
                    debug: payload[8..payload.len().min(8 + 256)].to_vec(),
                }
            }
            _ => Detail::None,
        }
    }

    /// A frame that carries a piece of a header block: none of its bytes
    /// are kept unless the block is decoded and its credentials found.
    fn header_frame(
        &mut self,
        direction: Direction,
        header: &FrameHeader,
        payload: &[u8],
        out: &mut Vec<Record>,
    ) -> (Detail, Shown) {
        let malformed = |what: &str| {
            (
                Detail::Malformed(format!("{} {what}", header.kind.name())),
                Shown::Withheld(WITHHELD_UNDECODED),
            )
        };
        if header.kind == FrameType::Continuation {
            return self.header_fragment(direction, header, payload, 0, out);
        }
        let mut fragment = payload;
        let mut strip = 0;
        let mut offset = 0;
        if header.has(PADDED) {
            let Some((&pad, rest)) = fragment.split_first() else {
                return malformed("is padded but empty");
            };
            strip = usize::from(pad);
            fragment = rest;
            offset = 1;
        }
        let skip = match header.kind {
            FrameType::Headers if header.has(PRIORITY) => 5,
            FrameType::PushPromise => 4,
            _ => 0,
        };
        if fragment.len() < strip + skip {
            return malformed("has more padding and priority than payload");
        }
        let fragment = &fragment[skip..fragment.len() - strip];
        let side = &mut self.sides[direction.index()];
        side.block.clear();
        side.block_frames = 0;
        side.block_stream = header.stream;
        side.block_kind = header.kind;
        side.block_ends_stream = header.has(END_STREAM);
        self.header_fragment(direction, header, fragment, offset + skip, out)
    }

    /// Adds a piece of a header block, which starts `offset` bytes into the
    /// frame's payload; decodes the block when it is whole. Its frame's bytes
    /// are kept, credentials masked, when the block is in this one frame and
    /// decodes: the credentials are then found in step with its fields.
    fn header_fragment(
        &mut self,
        direction: Direction,
        header: &FrameHeader,
        fragment: &[u8],
        offset: usize,
        out: &mut Vec<Record>,
    ) -> (Detail, Shown) {
        let side = &mut self.sides[direction.index()];
        side.block_frames += 1;
        if !side.headers_lost {
            if side.block.len() + fragment.len() > HEADER_BLOCK_CAP {
                let why = format!("a header block over the tap's {HEADER_BLOCK_CAP}-byte cap");
                self.lose_headers(direction, &why, out);
            } else {
                side.block.extend_from_slice(fragment);
            }
        }
        if !header.has(END_HEADERS) {
            return (Detail::HeadersContinue, Shown::Withheld(WITHHELD_SPLIT));
        }
        let side = &mut self.sides[direction.index()];
        let id = side.block_stream;
        let mut fields = Vec::new();
        let mut shown = Shown::Withheld(WITHHELD_UNDECODED);
        let error = if side.headers_lost {
            Some("not decoded: the header table was lost earlier".to_owned())
        } else {
            let mut names = Vec::new();
            let decoded = side.hpack.decode_with_cb(&side.block, |name, value| {
                let name = String::from_utf8_lossy(&name).into_owned();
                let value = credential::shown_value(&name, &value);
                names.push(name.clone());
                fields.push((name, value))
            });
            if decoded.is_ok() {
                shown = match credential::secrets_in_block(
                    &side.block,
                    names.iter().map(String::as_str),
                ) {
                    _ if side.block_frames > 1 => Shown::Withheld(WITHHELD_SPLIT),
                    Some(secrets) => Shown::Masked { offset, secrets },
                    None => Shown::Withheld(WITHHELD_UNDECODED),
                };
            }
            side.block.clear();
            decoded.err().map(|e| e.to_string())
        };
        let ends_stream = side.block_ends_stream;
        let push = side.block_kind == FrameType::PushPromise;
        if let Some(error) = &error {
            if !self.sides[direction.index()].headers_lost {
                self.lose_headers(
                    direction,
                    &format!("cannot decode a header block ({error})"),
                    out,
                );
            }
        }
        let stream = self.streams.entry(id).or_default();
        let role = if push {
            HeaderRole::PushPromise
        } else if stream.headers_seen[direction.index()]
            || (direction == Direction::ServerToClient
                && fields.iter().any(|(n, _)| n == "grpc-status"))
        {
            // A second block, or a trailers-only answer.
            HeaderRole::Trailers
        } else if direction == Direction::ClientToServer {
            HeaderRole::Request
        } else {
            HeaderRole::Response
        };
        let block = HeaderBlock {
            role,
            fields,
            error,
        };
        if !push {
            if role == HeaderRole::Request {
                self.summary.streams += 1;
                stream.path = block.get(":path").map(str::to_owned);
            }
            stream.headers_seen[direction.index()] = true;
            if let Some(encoding) = block.get("grpc-encoding") {
                stream.encoding[direction.index()] = Some(encoding.to_owned());
            }
            if ends_stream {
                self.end_stream(direction, id, out);
            }
        }
        (Detail::Headers(block), shown)
    }
}

/// One reassembled message as the tap shows it.
fn describe(
    stream: u32,
    m: message::Message<'_>,
    descriptor: Option<&protobuf::reflect::MessageDescriptor>,
    encoding: Option<&str>,
    options: DecodeOptions,
    summary: &mut Summary,
) -> Message {
    let inflated;
    let bytes = match (m.body, m.compressed) {
        (None, _) => Err(format!(
            "a {}-byte message, over the tap's {}-byte cap: passed over, not kept",
            m.length,
            message::MESSAGE_CAP
        )),
        (Some(body), false) => Ok(body),
        (Some(body), true) => match contract::decompress(encoding, body, message::MESSAGE_CAP) {
            Ok(bytes) => {
                inflated = bytes;
                Ok(&inflated[..])
            }
            Err(why) => Err(why),
        },
    };
    let body = match (&bytes, descriptor) {
        (Err(why), _) => Body::NotDecoded(why.clone()),
        (Ok(bytes), Some(descriptor)) => match contract::decode(descriptor, bytes, options.text) {
            Ok(decoded) => {
                summary.binary_bytes += bytes.len() as u64;
                summary.json_bytes += decoded.json.len() as u64;
                Body::Decoded(decoded)
            }
            Err(why) => Body::NotDecoded(why),
        },
        (Ok(bytes), None) => match annotate::annotate(bytes, None) {
            Ok(fields) => Body::Schemaless(annotate::schemaless_text(&fields)),
            Err(why) => Body::NotDecoded(format!("not protobuf: {why}")),
        },
    };
    let fields = match (&bytes, options.bytes) {
        (Ok(bytes), true) => annotate::annotate(bytes, descriptor).ok(),
        _ => None,
    };
    Message {
        stream,
        compressed: m.compressed,
        length: m.length,
        frames: m.frames,
        type_name: descriptor.map(|d| d.full_name().to_owned()),
        body,
        fields,
    }
}

/// Which of a frame's bytes its record may keep.
enum Shown {
    /// All of them: no header block in it.
    All,
    /// All, but for the credentials' values in its header block, which
    /// starts `offset` bytes into the payload.
    Masked { offset: usize, secrets: Vec<Secret> },
    /// None: why.
    Withheld(&'static str),
}

const WITHHELD_SPLIT: &str =
    "not shown: the header block spans several frames, and a credential could lie across them";
const WITHHELD_UNDECODED: &str =
    "not shown: the header block was not decoded, so its credentials cannot be masked";

/// The frame's bytes, header first, at most [`RAW_CAP`] of them, each
/// credential's value masked; or why none are kept.
fn raw_bytes(header: &FrameHeader, payload: &[u8], shown: Shown) -> Raw {
    let (offset, secrets) = match shown {
        Shown::All => (0, Vec::new()),
        Shown::Masked { offset, secrets } => (offset, secrets),
        Shown::Withheld(why) => return Raw::Withheld(why),
    };
    let kept = payload.len().min(RAW_CAP - HEADER_LEN);
    let mut bytes = [&header.to_bytes()[..], &payload[..kept]].concat();
    let mut masked = Vec::new();
    for secret in secrets {
        let start = (HEADER_LEN + offset + secret.bytes.start).min(bytes.len());
        let end = (HEADER_LEN + offset + secret.bytes.end).min(bytes.len());
        if start < end {
            bytes[start..end].fill(credential::MASK_BYTE);
            masked.push(Secret {
                bytes: start..end,
                header: secret.header,
            });
        }
    }
    Raw::Bytes { bytes, masked }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::tests::frame;
    use crate::frame::PREFACE;
    use crate::message::framed;
    use messenger_lab::method_path;
    use messenger_lab::proto::messenger::{ResearchNote, StatusRequest};
    use protobuf::Message as _;

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    fn decoder() -> ConnectionDecoder {
        ConnectionDecoder::new(
            1,
            Arc::new(Contract::lab()),
            DecodeOptions {
                text: true,
                bytes: true,
                raw: true,
            },
        )
    }

    fn request_headers(path: &str) -> Vec<(&'static [u8], Vec<u8>)> {
        vec![
            (b":method", b"POST".to_vec()),
            (b":scheme", b"http".to_vec()),
            (b":path", path.as_bytes().to_vec()),
            (b":authority", b"127.0.0.1:50051".to_vec()),
            (b"content-type", b"application/grpc".to_vec()),
            (b"te", b"trailers".to_vec()),
            (b"grpc-timeout", b"5S".to_vec()),
            (b"x-lab-user", b"ada".to_vec()),
        ]
    }

    fn encode(encoder: &mut loona_hpack::Encoder<'_>, headers: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
        encoder.encode(headers.iter().map(|(n, v)| (*n, &v[..])))
    }

    /// The start of a client's side: preface and SETTINGS.
    fn client_start() -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(4, 0, 0, &[0, 4, 0, 0x40, 0, 0]));
        bytes
    }

    /// A client's first bytes up to the HEADERS of an upload on stream 1.
    fn upload_start() -> Vec<u8> {
        let mut encoder = loona_hpack::Encoder::new();
        let mut bytes = client_start();
        let block = encode(
            &mut encoder,
            &request_headers(method_path::SUBMIT_RESEARCH_NOTES),
        );
        bytes.extend(frame(1, END_HEADERS, 1, &block));
        bytes
    }

    fn messages(records: &[Record]) -> Vec<(u32, String)> {
        records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Message(m) => Some((
                    m.stream,
                    match &m.body {
                        Body::Decoded(d) => d.text.clone().unwrap_or_default(),
                        other => format!("{other:?}"),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    fn header_blocks(records: &[Record]) -> Vec<(u32, HeaderBlock)> {
        records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Frame(Frame {
                    stream,
                    detail: Detail::Headers(block),
                    ..
                }) => Some((*stream, block.clone())),
                _ => None,
            })
            .collect()
    }

    fn note(text: &str) -> Vec<u8> {
        ResearchNote {
            text: text.into(),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap()
    }

    #[test]
    fn a_message_split_across_data_frames_is_reassembled() {
        let mut bytes = upload_start();
        let message = framed(false, &note("a note split in three"));
        let (a, rest) = message.split_at(3);
        let (b, c) = rest.split_at(10);
        bytes.extend(frame(0, 0, 1, a));
        bytes.extend(frame(0, PADDED, 1, &[[2].as_slice(), b, &[0, 0]].concat()));
        bytes.extend(frame(0, END_STREAM, 1, c));
        let mut decoder = decoder();
        let mut records = Vec::new();
        // Fed in awkward pieces, as TCP may deliver them.
        for piece in bytes.chunks(7) {
            decoder.feed(C2S, piece, &mut records);
        }
        assert_eq!(
            messages(&records),
            [(1, "text: \"a note split in three\"".to_owned())]
        );
        let frames: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Frame(f) => Some(f.kind.name()),
                _ => None,
            })
            .collect();
        assert_eq!(frames, ["SETTINGS", "HEADERS", "DATA", "DATA", "DATA"]);
        // The message comes after the DATA frame that completes it.
        assert!(matches!(records.last().unwrap().event, Event::Message(_)));
        let Event::Message(m) = &records.last().unwrap().event else {
            unreachable!()
        };
        assert_eq!(m.type_name.as_deref(), Some("messenger.ResearchNote"));
        assert_eq!(m.frames, 3);
        assert_eq!(m.fields.as_ref().unwrap()[0].number, 1);
    }

    #[test]
    fn frames_keep_their_bytes_up_to_the_cap() {
        let mut note_bytes = framed(false, &note(&"a".repeat(2000)));
        let big = frame(0, 0, 1, &note_bytes);
        note_bytes = framed(false, &note("raw"));
        let data = frame(0, END_STREAM, 1, &note_bytes);
        let mut bytes = upload_start();
        bytes.extend(&big);
        bytes.extend(&data);
        let mut decoder = decoder();
        let mut records = Vec::new();
        decoder.feed(C2S, &bytes, &mut records);
        let raws: Vec<&[u8]> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Frame(f) => f.raw.as_ref().and_then(Raw::bytes),
                _ => None,
            })
            .collect();
        // SETTINGS and HEADERS whole, as upload_start made them; DATA up to the cap.
        let start = &upload_start()[PREFACE.len()..];
        assert_eq!(raws.len(), 4);
        assert_eq!([raws[0], raws[1]].concat(), start);
        assert_eq!(raws[2], &big[..RAW_CAP]);
        assert_eq!(raws[3], &data[..]);
    }

    #[test]
    fn several_messages_in_one_data_frame_come_out_one_by_one() {
        let mut bytes = upload_start();
        let mut data = Vec::new();
        for i in 1..=3 {
            data.extend(framed(false, &note(&format!("note {i}"))));
        }
        bytes.extend(frame(0, END_STREAM, 1, &data));
        let mut decoder = decoder();
        let mut records = Vec::new();
        decoder.feed(C2S, &bytes, &mut records);
        assert_eq!(
            messages(&records),
            [
                (1, "text: \"note 1\"".to_owned()),
                (1, "text: \"note 2\"".to_owned()),
                (1, "text: \"note 3\"".to_owned()),
            ]
        );
    }

    #[test]
    fn a_second_request_with_indexed_headers_decodes_as_the_first() {
        let mut encoder = loona_hpack::Encoder::new();
        let headers = request_headers(method_path::GET_LEARNING_STATUS);
        let first = encode(&mut encoder, &headers);
        let second = encode(&mut encoder, &headers);
        // The second block refers to the dynamic table: shorter.
        assert!(
            second.len() < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let mut bytes = client_start();
        let status = StatusRequest {
            user_id: "ada".into(),
            ..Default::default()
        };
        for (stream, block) in [(1, &first), (3, &second)] {
            // The block split over HEADERS (padded, with priority) and CONTINUATION.
            let (head, tail) = block.split_at(block.len() / 2);
            let mut payload = vec![4];
            payload.extend([0, 0, 0, 0, 15]);
            payload.extend(head);
            payload.extend([0; 4]);
            bytes.extend(frame(1, PADDED | PRIORITY, stream, &payload));
            bytes.extend(frame(9, END_HEADERS, stream, tail));
            bytes.extend(frame(
                0,
                END_STREAM,
                stream,
                &framed(false, &status.write_to_bytes().unwrap()),
            ));
        }
        let mut decoder = decoder();
        let mut records = Vec::new();
        decoder.feed(C2S, &bytes, &mut records);
        let blocks = header_blocks(&records);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].1.error, None);
        assert_eq!(blocks[0].1.role, HeaderRole::Request);
        assert_eq!(blocks[0].1.fields, blocks[1].1.fields);
        assert_eq!(
            blocks[1].1.get(":path"),
            Some(method_path::GET_LEARNING_STATUS)
        );
        assert_eq!(blocks[1].1.get("x-lab-user"), Some("ada"));
        assert_eq!(
            messages(&records),
            [
                (1, "user_id: \"ada\"".to_owned()),
                (3, "user_id: \"ada\"".to_owned())
            ]
        );
    }

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl";

    /// Every record rendered as each view renders it: text, JSON (which the
    /// web view's events carry), and Debug.
    fn every_view(records: &[Record]) -> String {
        let mut all = format!("{records:?}");
        for format in [crate::output::Format::Text, crate::output::Format::Json] {
            for record in records {
                let style = crate::output::Style {
                    format,
                    colour: false,
                };
                crate::output::render(record, style, &mut all);
            }
        }
        all
    }

    /// `secret` in `text` in any form a view could print it: as it is, in
    /// hex (either case), as decimal bytes (Debug), and in base64 (any
    /// alignment); each searched by pieces of 12 bytes, so a cut copy is found too.
    fn assert_not_shown(text: &str, secret: &[u8]) {
        use base64::Engine;
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for piece in secret.windows(12) {
            let decimal = format!("{piece:?}");
            let mut forms = vec![
                String::from_utf8_lossy(piece).into_owned(),
                annotate::hex(piece).replace(' ', ""),
                annotate::hex(piece).replace(' ', "").to_uppercase(),
                decimal[1..decimal.len() - 1].to_owned(),
            ];
            for engine in &engines {
                // The middle of its base64 does not depend on what surrounds it.
                let encoded = engine.encode(piece);
                forms.push(encoded[4..encoded.len() - 4].to_owned());
            }
            for form in forms {
                assert!(!text.contains(&form), "{form:?} of the secret is shown");
            }
        }
    }

    /// Requests with credentials, in every encoding: literal, Huffman-coded
    /// and never indexed, split across HEADERS and CONTINUATION, added to
    /// the dynamic table, then referred to by its index.
    #[test]
    fn no_view_shows_a_credential_s_bytes() {
        let bearer = format!("Bearer {TOKEN}");
        let mut headers = request_headers(method_path::GET_LEARNING_STATUS);
        headers.push((b"authorization", bearer.clone().into_bytes()));
        headers.push((b"cookie", b"session=s3cr3t-c00kie-value".to_vec()));
        headers.push((
            b"proxy-authorization",
            b"Basic cHJveHk6cGFzc3dvcmQ=".to_vec(),
        ));
        let mut encoder = loona_hpack::Encoder::new();
        let literal = encode(&mut encoder, &headers);
        // "Bearer <TOKEN>" Huffman-coded (by Python's hpack), never indexed
        // (name index 23: authorization).
        let huffman = (0..92)
            .step_by(2)
            .map(|i| u8::from_str_radix(&"ba51d85b142facb3c78886d46cbbb87bc81d26cafae5f597dc9cb21b51b2cffb8b01a5d8b9054551d384127e65a3"[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>();
        let mut huffman_block = vec![0x1f, 8, 0x80 | huffman.len() as u8];
        huffman_block.extend(&huffman);
        huffman_block.extend(encode(
            &mut encoder,
            &request_headers(method_path::GET_LEARNING_STATUS),
        ));
        let split = encode(
            &mut encoder,
            &[(
                b"authorization",
                b"Bearer another.split.token-value".to_vec(),
            )],
        );
        // By hand from here (the encoder's table no longer matches): POST,
        // http, the path, then authorization added to the dynamic table...
        let path = method_path::GET_LEARNING_STATUS.as_bytes();
        let mut start = vec![0x83, 0x86, 0x04, path.len() as u8];
        start.extend(path);
        let mut added = start.clone();
        added.extend([0x40 | 23, bearer.len() as u8]);
        added.extend(bearer.as_bytes());
        // ...and sent again as index 62, its place there.
        let mut indexed = start;
        indexed.push(0x80 | 62);
        let mut bytes = client_start();
        for (stream, block) in [(1, &literal), (3, &huffman_block)] {
            bytes.extend(frame(1, END_HEADERS | END_STREAM, stream, block));
        }
        let (head, tail) = split.split_at(20);
        bytes.extend(frame(1, END_STREAM, 5, head));
        bytes.extend(frame(9, END_HEADERS, 5, tail));
        for (stream, block) in [(7, &added), (9, &indexed)] {
            bytes.extend(frame(1, END_HEADERS | END_STREAM, stream, block));
        }
        let mut records = Vec::new();
        decoder().feed(C2S, &bytes, &mut records);
        let blocks = header_blocks(&records);
        assert_eq!(blocks.len(), 5);
        for (stream, block) in &blocks {
            assert_eq!(block.error, None);
            let expected = match stream {
                5 => "Bearer <32 bytes, masked>",
                _ => "Bearer <59 bytes, masked>",
            };
            assert_eq!(
                block.get("authorization"),
                Some(expected),
                "stream {stream}"
            );
        }
        assert_eq!(blocks[0].1.get("cookie"), Some("<27 bytes, masked>"));
        assert_eq!(
            blocks[0].1.get("proxy-authorization"),
            Some("Basic <26 bytes, masked>")
        );
        // The raw bytes: masked where a literal value was, whole otherwise.
        let raws: Vec<&Raw> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Frame(f) if f.kind != FrameType::Settings => f.raw.as_ref(),
                _ => None,
            })
            .collect();
        let masked: Vec<Vec<&str>> = raws
            .iter()
            .map(|raw| match raw {
                Raw::Bytes { masked, .. } => masked.iter().map(|m| m.header.as_str()).collect(),
                Raw::Withheld(_) => vec!["withheld"],
            })
            .collect();
        assert_eq!(
            masked,
            [
                vec!["authorization", "cookie", "proxy-authorization"],
                vec!["authorization"],
                vec!["withheld"],
                vec!["withheld"],
                vec!["authorization"],
                vec![],
            ]
        );
        let Raw::Bytes { bytes: raw, masked } = raws[0] else {
            unreachable!()
        };
        assert_eq!(raw.len(), HEADER_LEN + literal.len());
        for m in masked {
            assert!(raw[m.bytes.clone()].iter().all(|&b| b == b'*'));
        }
        let shown = every_view(&records);
        assert!(shown.contains("\"masked\":[{\"from\":"), "{shown}");
        for secret in [
            bearer.as_bytes(),
            &huffman,
            b"s3cr3t-c00kie-value",
            b"cHJveHk6cGFzc3dvcmQ=",
            b"another.split.token-value",
        ] {
            assert_not_shown(&shown, secret);
        }
        // What is not a credential is shown, as it was.
        assert!(shown.contains("x-lab-user: ada"), "{shown}");
    }

    #[test]
    fn responses_take_the_response_type_and_streams_are_dropped_when_done() {
        let mut client = loona_hpack::Encoder::new();
        let mut server = loona_hpack::Encoder::new();
        let mut decoder = decoder();
        let mut records = Vec::new();
        let mut up = client_start();
        up.extend(frame(
            1,
            END_HEADERS,
            1,
            &encode(
                &mut client,
                &request_headers(method_path::GET_LEARNING_STATUS),
            ),
        ));
        up.extend(frame(0, END_STREAM, 1, &framed(false, &[])));
        decoder.feed(C2S, &up, &mut records);
        assert_eq!(decoder.open_streams(), 1);
        let mut down = frame(4, 0, 0, &[]);
        down.extend(frame(
            1,
            END_HEADERS,
            1,
            &server.encode([
                (&b":status"[..], &b"200"[..]),
                (b"content-type", b"application/grpc"),
            ]),
        ));
        let response = messenger_lab::proto::messenger::StatusResponse {
            message: "ok".into(),
            active: true,
            ..Default::default()
        };
        down.extend(frame(
            0,
            0,
            1,
            &framed(false, &response.write_to_bytes().unwrap()),
        ));
        down.extend(frame(
            1,
            END_HEADERS | END_STREAM,
            1,
            &server.encode([(&b"grpc-status"[..], &b"0"[..])]),
        ));
        decoder.feed(S2C, &down, &mut records);
        assert_eq!(decoder.open_streams(), 0);
        let blocks = header_blocks(&records);
        let roles: Vec<_> = blocks.iter().map(|(_, b)| b.role).collect();
        assert_eq!(
            roles,
            [
                HeaderRole::Request,
                HeaderRole::Response,
                HeaderRole::Trailers
            ]
        );
        assert_eq!(
            messages(&records),
            [
                (1, String::new()),
                (1, "message: \"ok\" active: true".to_owned())
            ]
        );
        let summary = decoder.finish(&mut records);
        assert_eq!(summary.streams, 1);
        assert_eq!(summary.messages, [1, 1]);
        assert_eq!(summary.frames["HEADERS"], 3);
        assert!(summary.json_ratio().unwrap() > 1.0);
    }

    #[test]
    fn unknown_services_get_a_schemaless_dump() {
        let mut encoder = loona_hpack::Encoder::new();
        let mut bytes = client_start();
        bytes.extend(frame(
            1,
            END_HEADERS,
            1,
            &encode(&mut encoder, &request_headers("/other.Thing/Do")),
        ));
        bytes.extend(frame(0, 0, 1, &framed(false, &note("hi"))));
        bytes.extend(frame(0, 0, 1, &framed(false, &[0xff, 0xff])));
        let mut decoder = decoder();
        let mut records = Vec::new();
        decoder.feed(C2S, &bytes, &mut records);
        let bodies: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Message(m) => Some(m.body.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(bodies[0], Body::Schemaless("1: \"hi\"".into()));
        assert!(matches!(&bodies[1], Body::NotDecoded(why) if why.starts_with("not protobuf")));
    }

    #[test]
    fn trouble_is_one_notice_and_the_end_says_what_was_cut() {
        let mut decoder = decoder();
        let mut records = Vec::new();
        let mut bytes = client_start();
        bytes.extend(&frame(4, 0, 0, &[0; 12])[..12]);
        decoder.feed(C2S, &bytes, &mut records);
        decoder.feed(S2C, b"HTTP/1.1 400 Bad Request\r\n\r\n", &mut records);
        decoder.feed(S2C, b"more", &mut records);
        decoder.finish(&mut records);
        let notices: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Notice(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(
            notices[0].starts_with("not HTTP/2: the server's first frame"),
            "{notices:?}"
        );
        assert_eq!(
            notices[1],
            "truncated: the connection ended 3 of a 12-byte SETTINGS frame on stream 0"
        );
        assert!(matches!(records.last().unwrap().event, Event::Closed(_)));
    }

    #[test]
    fn resets_and_goaways_carry_their_error_names() {
        let mut decoder = decoder();
        let mut records = Vec::new();
        let mut bytes = upload_start();
        bytes.extend(frame(3, 0, 1, &8u32.to_be_bytes()));
        decoder.feed(C2S, &bytes, &mut records);
        assert_eq!(decoder.open_streams(), 0, "a reset stream is dropped");
        let mut goaway = 1u32.to_be_bytes().to_vec();
        goaway.extend(11u32.to_be_bytes());
        goaway.extend(b"calm down");
        let mut down = frame(4, 0, 0, &[]);
        down.extend(frame(7, 0, 0, &goaway));
        down.extend(frame(8, 0, 0, &[0x80, 0, 1, 0]));
        down.extend(frame(6, crate::frame::ACK, 0, &[7; 8]));
        decoder.feed(S2C, &down, &mut records);
        let details: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Frame(f) => Some(f.detail.clone()),
                _ => None,
            })
            .collect();
        assert!(details.contains(&Detail::RstStream(8)));
        assert!(details.contains(&Detail::GoAway {
            last_stream: 1,
            code: 11,
            debug: b"calm down".to_vec()
        }));
        // The reserved bit is not part of the increment.
        assert!(details.contains(&Detail::WindowUpdate(256)));
        assert!(details.contains(&Detail::Ping([7; 8])));
        let mut text = String::new();
        for record in &records {
            crate::output::render(
                record,
                crate::output::Style {
                    format: crate::output::Format::Text,
                    colour: false,
                },
                &mut text,
            );
        }
        assert!(
            text.contains("#1 0.000000 C→S stream 1 RST_STREAM len=4 error=CANCEL\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "GOAWAY len=17 last_stream=1 error=ENHANCE_YOUR_CALM debug=\"calm down\""
            ),
            "{text}"
        );
    }

    /// Well-framed nonsense: random types, flags, streams and payloads, in
    /// random chunks, both ways. Nothing panics, and the decoder says what
    /// it could not decode.
    #[test]
    fn random_frames_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for _ in 0..200 {
            let mut decoder = decoder();
            let mut records = Vec::new();
            let mut sides = [client_start(), frame(4, 0, 0, &[])];
            for _ in 0..40 {
                let side = next(2) as usize;
                let payload: Vec<u8> = (0..next(64)).map(|_| next(256) as u8).collect();
                let kind = next(11) as u8;
                let stream = next(4) as u32 * 2 + 1;
                sides[side].extend(frame(kind, next(256) as u8, stream, &payload));
            }
            for (direction, bytes) in Direction::BOTH.into_iter().zip(&sides) {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let (chunk, tail) = rest.split_at((next(50) as usize + 1).min(rest.len()));
                    decoder.feed(direction, chunk, &mut records);
                    rest = tail;
                }
            }
            decoder.finish(&mut records);
            for record in &records {
                for format in [crate::output::Format::Text, crate::output::Format::Json] {
                    let style = crate::output::Style {
                        format,
                        colour: true,
                    };
                    crate::output::render(record, style, &mut String::new());
                }
            }
        }
    }

    #[test]
    fn tls_is_one_notice_and_nothing_more() {
        let mut decoder = decoder();
        let mut records = Vec::new();
        decoder.feed(C2S, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], &mut records);
        decoder.feed(S2C, &[0x16, 0x03, 0x03, 0x00, 0x7a], &mut records);
        let summary = decoder.finish(&mut records);
        assert_eq!(records.len(), 2);
        assert!(matches!(&records[0].event, Event::Notice(t) if t.starts_with("TLS")));
        assert_eq!(summary.bytes, [6, 5]);
    }
}
