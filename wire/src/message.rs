//! gRPC messages inside DATA frames (gRPC over HTTP/2, "Length-Prefixed-Message"):
//! a 5-byte prefix (a compressed flag, then the length, big-endian) and the
//! message. One message may span several frames and one frame may hold
//! several messages, so one direction of a stream is reassembled here.

/// The prefix before every message.
pub const PREFIX_LEN: usize = 5;
/// The largest message kept whole for decoding: gRPC's default limit. A
/// longer one is shown (prefix and length) but passed over, not kept.
pub const MESSAGE_CAP: usize = 4 << 20;

/// One whole message: `body` is `None` when it was longer than [`MESSAGE_CAP`].
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub compressed: bool,
    pub length: u32,
    pub body: Option<&'a [u8]>,
    /// The DATA frames it was carried in (more than one: it was split).
    pub frames: u32,
}

/// One direction of one stream, between messages or inside one.
#[derive(Debug, Default)]
pub struct Reassembler {
    prefix: [u8; PREFIX_LEN],
    prefix_have: usize,
    /// The message being read, once its prefix is complete.
    body: Vec<u8>,
    body_left: usize,
    in_body: bool,
    frames: u32,
}

impl Reassembler {
    /// Reads DATA bytes, handing each message to `on` as soon as it is whole.
    /// A message that lies whole in `bytes` is not copied.
    pub fn feed(&mut self, mut bytes: &[u8], on: &mut impl FnMut(Message<'_>)) {
        while !bytes.is_empty() {
            if !self.in_body {
                if self.prefix_have == 0 {
                    self.frames = 1;
                }
                let take = bytes.len().min(PREFIX_LEN - self.prefix_have);
                self.prefix[self.prefix_have..self.prefix_have + take]
                    .copy_from_slice(&bytes[..take]);
                self.prefix_have += take;
                bytes = &bytes[take..];
                if self.prefix_have < PREFIX_LEN {
                    return;
                }
                self.in_body = true;
                self.body_left = self.length() as usize;
                self.body.clear();
                if self.body_left <= bytes.len() && self.body_left <= MESSAGE_CAP {
                    let (whole, rest) = bytes.split_at(self.body_left);
                    self.finish(Some(whole), on);
                    bytes = rest;
                    continue;
                }
            }
            let take = bytes.len().min(self.body_left);
            if self.length() as usize <= MESSAGE_CAP {
                self.body.extend_from_slice(&bytes[..take]);
            }
            self.body_left -= take;
            bytes = &bytes[take..];
            if self.body_left == 0 {
                let body = std::mem::take(&mut self.body);
                let kept = (self.length() as usize <= MESSAGE_CAP).then_some(&body[..]);
                self.finish(kept, on);
                // A large message's buffer is not kept for the rest of the stream.
                if body.capacity() <= 64 * 1024 {
                    self.body = body;
                }
            }
        }
    }

    /// A new DATA frame of this stream begins: a message under way spans it.
    pub fn frame_started(&mut self) {
        if self.in_body || self.prefix_have > 0 {
            self.frames += 1;
        }
    }

    /// How a message was cut short if the stream ends here.
    pub fn unfinished(&self) -> Option<String> {
        if self.in_body {
            Some(format!(
                "{} of a {}-byte message",
                self.length() as usize - self.body_left,
                self.length()
            ))
        } else if self.prefix_have > 0 {
            Some(format!(
                "{} of a message prefix's {PREFIX_LEN} bytes",
                self.prefix_have
            ))
        } else {
            None
        }
    }

    fn length(&self) -> u32 {
        u32::from_be_bytes([
            self.prefix[1],
            self.prefix[2],
            self.prefix[3],
            self.prefix[4],
        ])
    }

    fn finish(&mut self, body: Option<&[u8]>, on: &mut impl FnMut(Message<'_>)) {
        on(Message {
            compressed: self.prefix[0] & 1 != 0,
            length: self.length(),
            body,
            frames: self.frames,
        });
        self.in_body = false;
        self.prefix_have = 0;
    }
}

/// `body` with its gRPC prefix, as a sender frames it.
pub fn framed(compressed: bool, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PREFIX_LEN + body.len());
    bytes.push(u8::from(compressed));
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (compressed, length, body) of each message.
    type Seen = Vec<(bool, u32, Option<Vec<u8>>)>;

    fn messages(parts: &[&[u8]]) -> (Seen, Option<String>) {
        let mut reassembler = Reassembler::default();
        let mut seen = Vec::new();
        for part in parts {
            reassembler.feed(part, &mut |m| {
                seen.push((m.compressed, m.length, m.body.map(<[u8]>::to_vec)))
            });
        }
        (seen, reassembler.unfinished())
    }

    #[test]
    fn one_message_split_anywhere_comes_out_whole() {
        let bytes = framed(false, b"hello, wire");
        for cut in 1..bytes.len() {
            let (seen, left) = messages(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(
                seen,
                [(false, 11, Some(b"hello, wire".to_vec()))],
                "cut at {cut}"
            );
            assert_eq!(left, None);
        }
    }

    #[test]
    fn several_messages_in_one_chunk_come_out_one_by_one() {
        let mut bytes = framed(false, b"a");
        bytes.extend(framed(true, b""));
        bytes.extend(framed(false, b"ccc"));
        let (seen, left) = messages(&[&bytes]);
        assert_eq!(
            seen,
            [
                (false, 1, Some(b"a".to_vec())),
                (true, 0, Some(vec![])),
                (false, 3, Some(b"ccc".to_vec())),
            ]
        );
        assert_eq!(left, None);
    }

    #[test]
    fn a_message_over_the_cap_is_passed_over_not_kept() {
        let length = MESSAGE_CAP as u32 + 1;
        let mut prefix = vec![0];
        prefix.extend(length.to_be_bytes());
        let chunk = vec![7u8; 1 << 20];
        let mut reassembler = Reassembler::default();
        let mut seen = Vec::new();
        reassembler.feed(&prefix, &mut |_| unreachable!());
        for _ in 0..4 {
            reassembler.feed(&chunk, &mut |_| unreachable!());
            assert!(reassembler.body.capacity() == 0, "the body was kept");
        }
        let mut last = vec![7u8];
        last.extend(framed(false, b"next"));
        reassembler.feed(&last, &mut |m| {
            seen.push((m.length, m.body.map(<[u8]>::to_vec)))
        });
        assert_eq!(seen, [(length, None), (4, Some(b"next".to_vec()))]);
    }

    #[test]
    fn a_message_knows_how_many_frames_carried_it() {
        let bytes = framed(false, b"abcdef");
        let mut reassembler = Reassembler::default();
        let mut frames = Vec::new();
        for part in [&bytes[..2], &bytes[2..7], &bytes[7..]] {
            reassembler.frame_started();
            reassembler.feed(part, &mut |m| frames.push(m.frames));
        }
        reassembler.frame_started();
        reassembler.feed(&framed(false, b"x"), &mut |m| frames.push(m.frames));
        assert_eq!(frames, [3, 1]);
    }

    #[test]
    fn a_cut_message_is_reported() {
        let bytes = framed(false, b"abcdef");
        assert_eq!(
            messages(&[&bytes[..3]]).1.as_deref(),
            Some("3 of a message prefix's 5 bytes")
        );
        assert_eq!(
            messages(&[&bytes[..8]]).1.as_deref(),
            Some("3 of a 6-byte message")
        );
    }
}
