//! HTTP/2 framing (RFC 9113 §4, §6): the 9-byte frame header, the frame
//! types and their flags, the client's connection preface, and an incremental
//! reader that cuts one direction's bytes into frames as they arrive, in
//! chunks of any size.

/// What a client sends first on an HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's size.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE until a peer announces another (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// A TLS record's first byte (a handshake record: ClientHello).
pub const TLS_HANDSHAKE: u8 = 0x16;
/// The most of one frame's payload kept for decoding (DATA is streamed, not
/// kept); past it the frame is shown, its payload is not decoded.
pub const PAYLOAD_CAP: usize = 1 << 20;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

/// The frame types of RFC 9113 §6; others are legal and ignored by peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameType {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl FrameType {
    pub fn from_byte(byte: u8) -> FrameType {
        match byte {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::GoAway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            other => FrameType::Unknown(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            FrameType::Data => 0,
            FrameType::Headers => 1,
            FrameType::Priority => 2,
            FrameType::RstStream => 3,
            FrameType::Settings => 4,
            FrameType::PushPromise => 5,
            FrameType::Ping => 6,
            FrameType::GoAway => 7,
            FrameType::WindowUpdate => 8,
            FrameType::Continuation => 9,
            FrameType::Unknown(byte) => byte,
        }
    }

    /// The name RFC 9113 gives it (`UNKNOWN_0xNN` for others).
    pub fn name(self) -> String {
        match self {
            FrameType::Data => "DATA".into(),
            FrameType::Headers => "HEADERS".into(),
            FrameType::Priority => "PRIORITY".into(),
            FrameType::RstStream => "RST_STREAM".into(),
            FrameType::Settings => "SETTINGS".into(),
            FrameType::PushPromise => "PUSH_PROMISE".into(),
            FrameType::Ping => "PING".into(),
            FrameType::GoAway => "GOAWAY".into(),
            FrameType::WindowUpdate => "WINDOW_UPDATE".into(),
            FrameType::Continuation => "CONTINUATION".into(),
            FrameType::Unknown(byte) => format!("UNKNOWN_{byte:#04x}"),
        }
    }

    /// The names of the flags set in `flags` that this type defines.
    pub fn flag_names(self, flags: u8) -> Vec<&'static str> {
        let defined: &[(u8, &str)] = match self {
            FrameType::Data => &[(END_STREAM, "END_STREAM"), (PADDED, "PADDED")],
            FrameType::Headers => &[
                (END_STREAM, "END_STREAM"),
                (END_HEADERS, "END_HEADERS"),
                (PADDED, "PADDED"),
                (PRIORITY, "PRIORITY"),
            ],
            FrameType::Settings | FrameType::Ping => &[(ACK, "ACK")],
            FrameType::PushPromise => &[(END_HEADERS, "END_HEADERS"), (PADDED, "PADDED")],
            FrameType::Continuation => &[(END_HEADERS, "END_HEADERS")],
            _ => &[],
        };
        defined
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|&(_, name)| name)
            .collect()
    }
}

/// One frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub length: u32,
    pub kind: FrameType,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            length: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]),
            kind: FrameType::from_byte(bytes[3]),
            flags: bytes[4],
            // The top bit is reserved and ignored.
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The header as it goes on the wire (less the reserved bit, which
    /// senders leave unset).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let length = self.length.to_be_bytes();
        let stream = self.stream.to_be_bytes();
        [
            length[1],
            length[2],
            length[3],
            self.kind.to_byte(),
            self.flags,
            stream[0],
            stream[1],
            stream[2],
            stream[3],
        ]
    }
}

/// What the reader found, in the order of the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The client's connection preface, complete.
    Preface,
    /// A frame's header: every frame starts with one. `ahead` is as much of
    /// its payload as is already read (in the chunk being fed), all of it or less.
    Start {
        header: FrameHeader,
        ahead: &'a [u8],
    },
    /// Bytes of a DATA frame's data (padding left out), as they arrive.
    Data(&'a [u8]),
    /// The frame is complete. `payload` is the whole payload of a frame of
    /// another type than DATA (empty for DATA), unless `truncated`: longer
    /// than [`PAYLOAD_CAP`], and then empty.
    End {
        header: FrameHeader,
        payload: &'a [u8],
        truncated: bool,
    },
}

/// Why the bytes of one direction cannot be read as HTTP/2 any more: from
/// then on they are forwarded, not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The first byte opens a TLS record.
    Tls,
    /// The client's first bytes are not the preface.
    NotPreface { start: Vec<u8> },
    /// The server's first frame is not SETTINGS.
    NotSettingsFirst { header: FrameHeader },
    /// A frame longer than its receiver allows: garbage, or a broken peer.
    TooLong { header: FrameHeader, max: u32 },
    /// A padded frame whose padding is longer than the frame.
    BadPadding { header: FrameHeader },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Tls => write!(f, "TLS: the bytes are encrypted and cannot be decoded"),
            FrameError::NotPreface { start } => write!(
                f,
                "not HTTP/2: the client did not send the connection preface (it began {})",
                quoted(start)
            ),
            FrameError::NotSettingsFirst { header } => write!(
                f,
                "not HTTP/2: the server's first frame is {} of {} bytes, not SETTINGS",
                header.kind.name(),
                header.length
            ),
            FrameError::TooLong { header, max } => write!(
                f,
                "malformed: a {} frame of {} bytes on stream {}, longer than the {max} the receiver allows (garbage?)",
                header.kind.name(),
                header.length,
                header.stream
            ),
            FrameError::BadPadding { header } => write!(
                f,
                "malformed: a padded {} frame of {} bytes on stream {} with more padding than payload",
                header.kind.name(),
                header.length,
                header.stream
            ),
        }
    }
}

/// Bytes as a Rust-style escaped string: printable ASCII as it is.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// Which end sends the bytes a reader reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

#[derive(Debug)]
enum State {
    /// Client only: `matched` bytes of the preface seen.
    Preface { matched: usize },
    /// Between frames: `have` bytes of a header in `header`.
    Header { have: usize },
    /// Inside a DATA frame: the pad-length byte (if padded), data, then padding.
    Data {
        header: FrameHeader,
        pad_length_pending: bool,
        data_left: usize,
        padding_left: usize,
    },
    /// Inside another frame: its payload, kept up to the cap.
    Payload { header: FrameHeader, left: usize },
    /// Given up: everything from here is forwarded undecoded.
    Broken,
}

/// Reads one direction of a connection, chunk by chunk. It keeps at most one
/// frame header and one non-DATA payload (capped); DATA passes through.
#[derive(Debug)]
pub struct FrameReader {
    sender: Sender,
    state: State,
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
    /// The longest frame the receiver accepts (its SETTINGS_MAX_FRAME_SIZE).
    max_frame_size: u32,
    frames: u64,
}

impl FrameReader {
    pub fn new(sender: Sender) -> FrameReader {
        FrameReader {
            sender,
            state: match sender {
                Sender::Client => State::Preface { matched: 0 },
                Sender::Server => State::Header { have: 0 },
            },
            header: [0; HEADER_LEN],
            payload: Vec::new(),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            frames: 0,
        }
    }

    /// The receiver of these frames announced SETTINGS_MAX_FRAME_SIZE.
    pub fn set_max_frame_size(&mut self, size: u32) {
        self.max_frame_size = size;
    }

    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken)
    }

    /// Where the reader stands if the bytes stop here: `None` between frames,
    /// else what was cut short.
    pub fn unfinished(&self) -> Option<String> {
        match &self.state {
            State::Preface { matched: 0 } | State::Header { have: 0 } | State::Broken => None,
            State::Preface { matched } => Some(format!(
                "{matched} of the preface's {} bytes",
                PREFACE.len()
            )),
            State::Header { have } => {
                Some(format!("{have} of a frame header's {HEADER_LEN} bytes"))
            }
            State::Data {
                header,
                data_left,
                padding_left,
                ..
            } => Some(cut_short(header, data_left + padding_left)),
            State::Payload { header, left } => Some(cut_short(header, *left)),
        }
    }

    /// Reads `bytes`, handing each piece to `on` in order. After an error the
    /// reader is broken and ignores what follows.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        on: &mut impl FnMut(Piece<'_>),
    ) -> Result<(), FrameError> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Broken => return Ok(()),
                State::Preface { matched } => {
                    if *matched == 0 && bytes[0] == TLS_HANDSHAKE {
                        return Err(self.fail(FrameError::Tls));
                    }
                    let take = bytes.len().min(PREFACE.len() - *matched);
                    if bytes[..take] != PREFACE[*matched..*matched + take] {
                        let mut start = PREFACE[..*matched].to_vec();
                        start.extend_from_slice(&bytes[..bytes.len().min(24)]);
                        return Err(self.fail(FrameError::NotPreface { start }));
                    }
                    *matched += take;
                    bytes = &bytes[take..];
                    if *matched == PREFACE.len() {
                        self.state = State::Header { have: 0 };
                        on(Piece::Preface);
                    }
                }
                State::Header { have } => {
                    let take = bytes.len().min(HEADER_LEN - *have);
                    self.header[*have..*have + take].copy_from_slice(&bytes[..take]);
                    *have += take;
                    bytes = &bytes[take..];
                    if *have == HEADER_LEN {
                        let header = FrameHeader::parse(&self.header);
                        self.start_frame(header, bytes, on)?;
                    }
                }
                State::Data {
                    header,
                    pad_length_pending,
                    data_left,
                    padding_left,
                } => {
                    if *pad_length_pending {
                        let pad = usize::from(bytes[0]);
                        bytes = &bytes[1..];
                        *pad_length_pending = false;
                        if pad > *data_left {
                            let header = *header;
                            return Err(self.fail(FrameError::BadPadding { header }));
                        }
                        *data_left -= pad;
                        *padding_left = pad;
                    } else if *data_left > 0 {
                        let take = bytes.len().min(*data_left);
                        *data_left -= take;
                        on(Piece::Data(&bytes[..take]));
                        bytes = &bytes[take..];
                    } else {
                        let take = bytes.len().min(*padding_left);
                        *padding_left -= take;
                        bytes = &bytes[take..];
                    }
                    self.end_data_if_done(on);
                }
                State::Payload { header, left } => {
                    let take = bytes.len().min(*left);
                    *left -= take;
                    if header.length as usize <= PAYLOAD_CAP {
                        self.payload.extend_from_slice(&bytes[..take]);
                    }
                    bytes = &bytes[take..];
                    if *left == 0 {
                        let header = *header;
                        self.end_payload(header, on);
                    }
                }
            }
        }
        Ok(())
    }

    /// `rest`: the bytes read after the header, in this chunk.
    fn start_frame(
        &mut self,
        header: FrameHeader,
        rest: &[u8],
        on: &mut impl FnMut(Piece<'_>),
    ) -> Result<(), FrameError> {
        if self.sender == Sender::Server && self.frames == 0 && header.kind != FrameType::Settings {
            return Err(self.fail(FrameError::NotSettingsFirst { header }));
        }
        if header.length > self.max_frame_size {
            return Err(self.fail(FrameError::TooLong {
                header,
                max: self.max_frame_size,
            }));
        }
        self.frames += 1;
        let ahead = &rest[..rest.len().min(header.length as usize)];
        on(Piece::Start { header, ahead });
        let length = header.length as usize;
        if header.kind == FrameType::Data {
            let padded = header.has(PADDED);
            if padded && length == 0 {
                return Err(self.fail(FrameError::BadPadding { header }));
            }
            self.state = State::Data {
                header,
                pad_length_pending: padded,
                data_left: length - usize::from(padded),
                padding_left: 0,
            };
            self.end_data_if_done(on);
        } else {
            self.payload.clear();
            self.state = State::Payload {
                header,
                left: length,
            };
            if length == 0 {
                self.end_payload(header, on);
            }
        }
        Ok(())
    }

    fn end_data_if_done(&mut self, on: &mut impl FnMut(Piece<'_>)) {
        if let State::Data {
            header,
            pad_length_pending: false,
            data_left: 0,
            padding_left: 0,
        } = self.state
        {
            self.state = State::Header { have: 0 };
            on(Piece::End {
                header,
                payload: &[],
                truncated: false,
            });
        }
    }

    fn end_payload(&mut self, header: FrameHeader, on: &mut impl FnMut(Piece<'_>)) {
        self.state = State::Header { have: 0 };
        let truncated = header.length as usize > PAYLOAD_CAP;
        on(Piece::End {
            header,
            payload: &self.payload,
            truncated,
        });
        // A big payload's buffer is not kept for the rest of the connection.
        if self.payload.capacity() > 64 * 1024 {
            self.payload = Vec::new();
        }
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.state = State::Broken;
        self.payload = Vec::new();
        error
    }
}

fn cut_short(header: &FrameHeader, left: usize) -> String {
    format!(
        "{} of a {}-byte {} frame on stream {}",
        header.length as usize - left,
        header.length,
        header.kind.name(),
        header.stream
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A frame's bytes: header then payload.
    pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = payload.len() as u32;
        let mut bytes = length.to_be_bytes()[1..].to_vec();
        bytes.push(kind);
        bytes.push(flags);
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    /// Every piece of `bytes` fed in chunks of `chunk`, as owned values.
    fn pieces(sender: Sender, bytes: &[u8], chunk: usize) -> (Vec<String>, Result<(), FrameError>) {
        let mut reader = FrameReader::new(sender);
        let mut seen = Vec::new();
        let mut result = Ok(());
        for part in bytes.chunks(chunk) {
            result = reader.feed(part, &mut |piece| {
                seen.push(match piece {
                    Piece::Preface => "preface".to_owned(),
                    Piece::Start { header: h, .. } => {
                        format!("start {} {}", h.kind.name(), h.stream)
                    }
                    Piece::Data(d) => format!("data {}", String::from_utf8_lossy(d)),
                    Piece::End {
                        header, payload, ..
                    } => {
                        format!("end {} {:?}", header.kind.name(), payload)
                    }
                });
            });
            if result.is_err() {
                break;
            }
        }
        (seen, result)
    }

    fn merged_data(seen: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for piece in seen {
            match (out.last_mut(), piece.strip_prefix("data ")) {
                (Some(last), Some(more)) if last.starts_with("data ") => last.push_str(more),
                _ => out.push(piece.clone()),
            }
        }
        out
    }

    #[test]
    fn a_frame_starts_with_its_header_and_the_payload_in_hand() {
        let padded = frame(0, PADDED | END_STREAM, 5, &[2, b'h', b'i', 0, 0]);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(&padded);
        for (chunk, in_hand) in [
            (bytes.len(), 5),
            (PREFACE.len() + 9 + 3, 3),
            (PREFACE.len() + 9, 0),
        ] {
            let mut reader = FrameReader::new(Sender::Client);
            let mut starts = Vec::new();
            for part in bytes.chunks(chunk) {
                let fed = reader.feed(part, &mut |piece| {
                    if let Piece::Start { header, ahead } = piece {
                        starts.push([header.to_bytes().as_slice(), ahead].concat());
                    }
                });
                assert_eq!(fed, Ok(()));
            }
            // The wire's bytes, padding and all, as far as they were read.
            assert_eq!(
                starts,
                [padded[..9 + in_hand].to_vec()],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn frames_are_cut_the_same_whatever_the_chunks() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(4, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
        bytes.extend(frame(0, PADDED, 1, &[3, b'a', b'b', 0, 0, 0]));
        bytes.extend(frame(0, END_STREAM, 1, b"cd"));
        bytes.extend(frame(6, 0, 0, &[1; 8]));
        let expected = [
            "preface",
            "start SETTINGS 0",
            "end SETTINGS [0, 4, 0, 0, 255, 255]",
            "start DATA 1",
            "data ab",
            "end DATA []",
            "start DATA 1",
            "data cd",
            "end DATA []",
            "start PING 0",
            "end PING [1, 1, 1, 1, 1, 1, 1, 1]",
        ];
        for chunk in [1, 2, 5, 9, 1000] {
            let (seen, result) = pieces(Sender::Client, &bytes, chunk);
            assert_eq!(result, Ok(()));
            assert_eq!(merged_data(&seen), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn tls_and_other_protocols_are_told_apart() {
        let (_, tls) = pieces(Sender::Client, &[0x16, 3, 1, 0, 0xc8], 100);
        assert_eq!(tls, Err(FrameError::Tls));
        let (_, http1) = pieces(Sender::Client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 100);
        let error = http1.unwrap_err();
        assert!(error.to_string().starts_with("not HTTP/2"), "{error}");
        assert!(error.to_string().contains("GET / HTTP/1.1"), "{error}");
        let (_, server) = pieces(Sender::Server, b"HTTP/1.1 400 Bad Request\r\n", 100);
        assert!(matches!(
            server,
            Err(FrameError::TooLong { .. }) | Err(FrameError::NotSettingsFirst { .. })
        ));
    }

    #[test]
    fn garbage_after_the_preface_is_a_frame_too_long() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend([0xff; 32]);
        let (_, result) = pieces(Sender::Client, &bytes, 7);
        let error = result.unwrap_err();
        assert!(
            matches!(error, FrameError::TooLong { max: 16_384, .. }),
            "{error:?}"
        );
        assert!(error.to_string().starts_with("malformed"), "{error}");
    }

    #[test]
    fn a_cut_frame_is_reported_as_unfinished() {
        let mut reader = FrameReader::new(Sender::Server);
        let settings = frame(4, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0]);
        reader.feed(&settings[..15], &mut |_| {}).unwrap();
        assert_eq!(
            reader.unfinished().as_deref(),
            Some("6 of a 12-byte SETTINGS frame on stream 0")
        );
        reader.feed(&settings[15..], &mut |_| {}).unwrap();
        assert_eq!(reader.unfinished(), None);
    }
}
