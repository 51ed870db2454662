//! What the client sends from outside: lines of a file or of standard input.
//!
//! Reading blocks, so it happens on a thread of its own, never on a gRPC
//! completion-queue thread nor in the future that drives a call. Lines are
//! handed over in batches through a bounded channel: at most a few batches
//! wait in memory, and when the call cannot keep up (HTTP/2 flow control),
//! the reader waits too. An input far larger than memory streams through.
//! A batch goes as soon as the input has nothing more ready, so a line typed
//! at a terminal is sent at once.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use futures::channel::mpsc;
use futures::{stream, SinkExt, Stream, StreamExt};

use super::ClientError;
use crate::proto::messenger::FeedUpdate;

/// The most lines handed over at once (one thread wake-up for many lines).
const LINES_PER_BATCH: usize = 256;
/// How many batches may wait between the reading thread and the call.
const BATCHES_IN_FLIGHT: usize = 4;
/// The longest line accepted: gRPC's default message limit, which a longer
/// note would exceed anyway.
const MAX_LINE_BYTES: usize = crate::transport::DEFAULT_MAX_MESSAGE_BYTES;

/// Where lines come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// `-` is standard input, anything else a file.
    pub fn from_arg(arg: &Path) -> Input {
        if arg == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(arg.to_owned())
        }
    }

    fn name(&self) -> String {
        match self {
            Input::Stdin => "standard input".to_owned(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// The lines of `input`, without their line endings, as they are read. A line
/// that cannot be read (not UTF-8, too long, an I/O error) ends the stream
/// with an error that says where.
pub fn lines(
    input: &Input,
) -> Result<impl Stream<Item = Result<String, ClientError>> + Unpin, ClientError> {
    let name = input.name();
    let source: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(path) => Box::new(
            File::open(path).map_err(|e| ClientError::Input(format!("cannot open {name}: {e}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    std::thread::Builder::new()
        .name("client-input".to_owned())
        .spawn(move || forward_lines(BufReader::with_capacity(64 * 1024, source), &name, tx))
        .map_err(|e| ClientError::Setup(format!("cannot start the input thread: {e}")))?;
    Ok(rx.flat_map(stream::iter))
}

type Batch = Vec<Result<String, ClientError>>;

/// Reads lines into `tx` until the input ends, a line fails, or the receiver
/// is gone (the call ended).
fn forward_lines(
    mut reader: BufReader<Box<dyn Read + Send>>,
    name: &str,
    mut tx: mpsc::Sender<Batch>,
) {
    let mut buf = Vec::new();
    let mut batch = Batch::new();
    for number in 1.. {
        let (line, last) = match read_line(&mut reader, &mut buf) {
            Ok(Some(line)) => (Ok(line), false),
            Ok(None) => break,
            Err(e) => (
                Err(ClientError::Input(format!("{name}: line {number}: {e}"))),
                true,
            ),
        };
        batch.push(line);
        // Hand over what we have before a read that may block.
        if last || batch.len() == LINES_PER_BATCH || reader.buffer().is_empty() {
            let full = std::mem::replace(&mut batch, Batch::with_capacity(LINES_PER_BATCH));
            if futures::executor::block_on(tx.send(full)).is_err() || last {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = futures::executor::block_on(tx.send(batch));
    }
}

/// The next line without its `\n` or `\r\n`, or `None` at the end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<String>> {
    buf.clear();
    // One byte over the limit tells a line of exactly the limit from a longer one.
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > MAX_LINE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    String::from_utf8(std::mem::take(buf))
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
}

/// A chat line as a FeedUpdate: `NAME: text` speaks as NAME (one word, no
/// spaces), any other line as `default_user`.
pub fn parse_chat_line(line: &str, default_user: &str) -> FeedUpdate {
    let (user, message) = match line.split_once(": ") {
        Some((name, text)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            (name, text)
        }
        _ => (default_user, line),
    };
    FeedUpdate {
        user: user.to_owned(),
        message: message.to_owned(),
        ..Default::default()
    }
}

/// The login name, from `$USER` or `$LOGNAME`.
pub fn login_name() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|name| !name.is_empty()))
        .unwrap_or_else(|| "anonymous".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<io::Result<Option<String>>> {
        let mut reader = bytes;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, &mut buf);
            let stop = !matches!(line, Ok(Some(_)));
            out.push(line);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn lines_lose_their_endings_and_a_missing_last_newline_is_fine() {
        let lines: Vec<_> = read_all(b"a\r\nb\n\nc")
            .into_iter()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                Some("a".into()),
                Some("b".into()),
                Some("".into()),
                Some("c".into()),
                None
            ]
        );
    }

    #[test]
    fn bad_lines_are_errors() {
        let last = read_all(b"ok\n\xff\xfe\n").pop().unwrap();
        assert_eq!(last.unwrap_err().to_string(), "not valid UTF-8");
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert!(read_all(&long).pop().unwrap().is_err());
        let mut exact = vec![b'x'; MAX_LINE_BYTES];
        exact.push(b'\n');
        assert_eq!(
            read_all(&exact)[0]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap()
                .len(),
            MAX_LINE_BYTES
        );
    }

    #[test]
    fn chat_lines_may_name_their_user() {
        let update = parse_chat_line("alice: hi: there", "me");
        assert_eq!(
            (update.user.as_str(), update.message.as_str()),
            ("alice", "hi: there")
        );
        let update = parse_chat_line("just words: not a name", "me");
        assert_eq!(
            (update.user.as_str(), update.message.as_str()),
            ("me", "just words: not a name")
        );
        assert_eq!(parse_chat_line(": x", "me").user, "me");
    }
}
