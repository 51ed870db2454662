//! Where a byte stream stands among gRPC (and gRPC-Web) frames: each is a
//! flag byte, a 4-byte big-endian length, then that many bytes of message.
//! Followed as the bytes pass, without keeping them, to refuse a message
//! over the size limit before it is sent on, and to know where a frame ends.

/// A frame's prefix: its flag byte and its length.
pub const PREFIX_BYTES: usize = 5;

/// Why the stream is not one the gateway passes on.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A message of this many bytes, over the limit.
    TooLarge(u64),
    /// A flag byte other than 0 (plain) or 1 (compressed).
    BadFlag(u8),
}

/// The position in a stream of frames.
#[derive(Debug)]
pub struct FrameReader {
    prefix: [u8; PREFIX_BYTES],
    /// Bytes of the current prefix seen so far.
    prefix_seen: usize,
    /// Bytes of the current message still to come.
    message_left: u64,
    max_message_bytes: u64,
}

impl FrameReader {
    pub fn new(max_message_bytes: usize) -> FrameReader {
        FrameReader {
            prefix: [0; PREFIX_BYTES],
            prefix_seen: 0,
            message_left: 0,
            max_message_bytes: u64::try_from(max_message_bytes).unwrap_or(u64::MAX),
        }
    }

    /// Follows `bytes`, the next of the stream.
    pub fn follow(&mut self, mut bytes: &[u8]) -> Result<(), FrameError> {
        while !bytes.is_empty() {
            if self.message_left > 0 {
                let take = bytes
                    .len()
                    .min(usize::try_from(self.message_left).unwrap_or(usize::MAX));
                self.message_left -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            let take = bytes.len().min(PREFIX_BYTES - self.prefix_seen);
            self.prefix[self.prefix_seen..self.prefix_seen + take].copy_from_slice(&bytes[..take]);
            self.prefix_seen += take;
            bytes = &bytes[take..];
            if self.prefix_seen == PREFIX_BYTES {
                self.prefix_seen = 0;
                let flag = self.prefix[0];
                if flag > 1 {
                    return Err(FrameError::BadFlag(flag));
                }
                let length = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
                if length > self.max_message_bytes {
                    return Err(FrameError::TooLarge(length));
                }
                self.message_left = length;
            }
        }
        Ok(())
    }

    /// Whether the stream so far is whole frames.
    pub fn at_boundary(&self) -> bool {
        self.prefix_seen == 0 && self.message_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut bytes = vec![flag];
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(message);
        bytes
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        let stream = [frame(0, b"hello"), frame(1, b""), frame(0, &[7; 300])].concat();
        for cut in 0..stream.len() {
            let mut reader = FrameReader::new(300);
            reader.follow(&stream[..cut]).unwrap();
            reader.follow(&stream[cut..]).unwrap();
            assert!(reader.at_boundary(), "cut at {cut}");
        }
        let mut reader = FrameReader::new(300);
        reader.follow(&stream[..8]).unwrap();
        assert!(!reader.at_boundary());
    }

    #[test]
    fn too_large_and_bad_flags_are_refused() {
        let mut reader = FrameReader::new(4);
        assert_eq!(
            reader.follow(&frame(0, b"12345")[..5]),
            Err(FrameError::TooLarge(5))
        );
        let mut reader = FrameReader::new(4);
        assert_eq!(
            reader.follow(&frame(0x80, b"")),
            Err(FrameError::BadFlag(0x80))
        );
        let mut reader = FrameReader::new(4);
        assert_eq!(reader.follow(&frame(0, b"1234")), Ok(()));
    }
}
