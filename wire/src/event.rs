//! What the tap shows: one record per frame, per gRPC message, per notice
//! (TLS, malformed traffic, an upstream that is down) and per closed
//! connection. The decoder makes them; `output` prints them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::annotate::Field;
use crate::contract::Decoded;
use crate::credential::Secret;
use crate::frame::{FrameType, Sender};

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    pub fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }

    pub fn sender(self) -> Sender {
        match self {
            Direction::ClientToServer => Sender::Client,
            Direction::ServerToClient => Sender::Server,
        }
    }

    pub fn other(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    /// `C→S` or `S→C`, for text.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ClientToServer => "C→S",
            Direction::ServerToClient => "S→C",
        }
    }

    /// `client_to_server` or `server_to_client`, for JSON.
    pub fn key(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
}

/// One thing seen on connection `conn`, in `direction` (none for the
/// connection as a whole).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub conn: u64,
    /// When the tap read the bytes it comes from, since it accepted the connection.
    pub time: Duration,
    pub direction: Option<Direction>,
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A client connected and the tap reached the upstream for it.
    Opened {
        client: String,
        upstream: String,
    },
    /// The client's connection preface.
    Preface,
    Frame(Frame),
    Message(Message),
    /// Something the tap could not decode, or a connection's trouble: one line.
    Notice(String),
    /// The connection is closed: its summary.
    Closed(Summary),
}

/// One HTTP/2 frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub stream: u32,
    pub kind: FrameType,
    pub flags: u8,
    pub length: u32,
    pub detail: Detail,
    /// The frame's bytes, with [`crate::connection::DecodeOptions::raw`]
    /// (the web view).
    pub raw: Option<Raw>,
}

/// A frame's own bytes, as far as a view may show them: never a credential's.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    /// Header first, at most [`crate::connection::RAW_CAP`] of them (DATA:
    /// as far as they were read when it began); the bytes of each credential's
    /// value in a header block, `masked`, are [`crate::credential::MASK_BYTE`].
    Bytes { bytes: Vec<u8>, masked: Vec<Secret> },
    /// None are shown: why.
    Withheld(&'static str),
}

impl Raw {
    /// The bytes, if any are shown.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Raw::Bytes { bytes, .. } => Some(bytes),
            Raw::Withheld(_) => None,
        }
    }
}

/// What a frame's payload says, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    None,
    /// (identifier, value) pairs.
    Settings(Vec<(u16, u32)>),
    WindowUpdate(u32),
    Ping([u8; 8]),
    RstStream(u32),
    GoAway {
        last_stream: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// The header block ends in this frame (HEADERS, CONTINUATION or PUSH_PROMISE).
    Headers(HeaderBlock),
    /// The header block goes on in CONTINUATION frames.
    HeadersContinue,
    /// The payload does not fit its type, or was too long to keep.
    Malformed(String),
}

/// Which header block of a stream this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderRole {
    Request,
    Response,
    Trailers,
    PushPromise,
}

impl HeaderRole {
    pub fn name(self) -> &'static str {
        match self {
            HeaderRole::Request => "request",
            HeaderRole::Response => "response",
            HeaderRole::Trailers => "trailers",
            HeaderRole::PushPromise => "push_promise",
        }
    }
}

/// A decoded header block, in order; `error` if HPACK could not decode it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderBlock {
    pub role: HeaderRole,
    pub fields: Vec<(String, String)>,
    pub error: Option<String>,
}

impl HeaderBlock {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One gRPC message, reassembled from DATA frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub stream: u32,
    /// The prefix: compressed flag and length.
    pub compressed: bool,
    pub length: u32,
    /// The DATA frames that carried it: more than one when it was split.
    pub frames: u32,
    /// The message type, when the stream's `:path` is a method of the contract.
    pub type_name: Option<String>,
    pub body: Body,
    /// With `--bytes`: the fields as they lie on the wire.
    pub fields: Option<Vec<Field>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Decoded(Decoded),
    /// A service the contract does not know: fields by number.
    Schemaless(String),
    /// Why it is not shown.
    NotDecoded(String),
}

/// A closed connection, in numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Streams the client opened.
    pub streams: u64,
    /// Frames by type name, both directions.
    pub frames: BTreeMap<String, u64>,
    /// Bytes each way, by [`Direction::index`].
    pub bytes: [u64; 2],
    /// gRPC messages each way.
    pub messages: [u64; 2],
    /// Of the decoded messages: their binary size and their JSON size.
    pub binary_bytes: u64,
    pub json_bytes: u64,
}

impl Summary {
    /// How many times larger the JSON of the decoded messages is.
    pub fn json_ratio(&self) -> Option<f64> {
        (self.binary_bytes > 0).then(|| self.json_bytes as f64 / self.binary_bytes as f64)
    }
}
