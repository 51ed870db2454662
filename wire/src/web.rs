//! The web view (`wiretap --web`, `client --show-wire=web`): a page that
//! draws every connection as a timeline, one lane per HTTP/2 stream, fed by
//! server-sent events that carry the records as docs/wiretap.md's JSON.
//!
//! The proxy never waits for a browser: records go into a bounded history,
//! which each page reads at its own pace from where it stands (from the
//! oldest, for a page that opens late); a page that falls further behind
//! than the history reaches misses records and is told how many.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame as BodyFrame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::event::{Body as MessageBody, Detail, Event, Frame, Message, Record};
use crate::output::{self, Format, Style};

/// Records the tap keeps, for pages that open late or read slowly (the page
/// keeps as many frames).
pub const HISTORY_RECORDS: usize = 10_000;
/// And at most this many bytes of them.
pub const HISTORY_BYTES: usize = 32 << 20;
/// A record longer than this as JSON is sent without its message or header
/// block (the tap's `--json` output has them).
pub const RECORD_CAP: usize = 64 << 10;
/// One chunk of events is at most about this long.
const CHUNK: usize = 64 << 10;
/// Chunks of events written ahead to one page's connection.
const PAGE_QUEUE: usize = 8;
/// A comment every so often, so a page that went away is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/timeline.js");
const STYLE: &str = include_str!("../web/timeline.css");

/// What the pages are sent: every record, as it is decoded.
pub struct Feed {
    history: Mutex<History>,
    /// How many records were ever published: pages wait for it to change.
    published: watch::Sender<u64>,
}

#[derive(Default)]
struct History {
    records: VecDeque<Arc<str>>,
    bytes: usize,
    /// The number of the oldest record kept (records are numbered from 0):
    /// as many were pushed out by newer ones.
    first: u64,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            history: Mutex::default(),
            published: watch::Sender::new(0),
        }
    }
}

/// What a page reads next.
struct Read {
    /// Records it missed: pushed out of the history before it read them.
    skipped: u64,
    lines: Vec<Arc<str>>,
    /// The number of the record after these.
    next: u64,
}

impl Feed {
    /// Keeps `records` for the pages, and wakes the ones waiting. Never waits
    /// for a page.
    pub fn publish(&self, records: &[Record]) {
        let lines: Vec<Arc<str>> = records.iter().map(|r| Arc::from(record_json(r))).collect();
        let published = {
            let mut history = self.history.lock();
            for line in lines {
                history.bytes += line.len();
                history.records.push_back(line);
            }
            while history.records.len() > HISTORY_RECORDS || history.bytes > HISTORY_BYTES {
                let Some(old) = history.records.pop_front() else {
                    break;
                };
                history.bytes -= old.len();
                history.first += 1;
            }
            history.first + history.records.len() as u64
        };
        self.published.send_replace(published);
    }

    /// The records from number `from` on, about [`CHUNK`] bytes of them.
    fn read(&self, from: u64) -> Read {
        let history = self.history.lock();
        let start = from.max(history.first);
        let mut lines = Vec::new();
        let mut bytes = 0;
        for line in history
            .records
            .iter()
            .skip((start - history.first) as usize)
        {
            if bytes >= CHUNK {
                break;
            }
            bytes += line.len();
            lines.push(line.clone());
        }
        Read {
            skipped: start - from,
            next: start + lines.len() as u64,
            lines,
        }
    }

    /// The number of the oldest record kept.
    fn first(&self) -> u64 {
        self.history.lock().first
    }
}

/// `record` as the JSON of `--json`, made smaller if it is over [`RECORD_CAP`].
fn record_json(record: &Record) -> String {
    let style = Style {
        format: Format::Json,
        colour: false,
    };
    let mut line = String::new();
    output::render(record, style, &mut line);
    if line.len() > RECORD_CAP {
        if let Some(smaller) = shrunk(record, line.len()) {
            line.clear();
            output::render(&smaller, style, &mut line);
        }
    }
    line.truncate(line.trim_end().len());
    line
}

fn shrunk(record: &Record, size: usize) -> Option<Record> {
    let why = format!(
        "a {size}-byte record, over the web view's {RECORD_CAP}-byte cap: the tap's --json output has it"
    );
    let event = match &record.event {
        Event::Message(m) => Event::Message(Message {
            stream: m.stream,
            compressed: m.compressed,
            length: m.length,
            frames: m.frames,
            type_name: m.type_name.clone(),
            body: MessageBody::NotDecoded(why),
            fields: None,
        }),
        Event::Frame(f) => Event::Frame(Frame {
            stream: f.stream,
            kind: f.kind,
            flags: f.flags,
            length: f.length,
            detail: Detail::Malformed(why),
            raw: f.raw.clone(),
        }),
        _ => return None,
    };
    Some(Record {
        conn: record.conn,
        time: record.time,
        direction: record.direction,
        event,
    })
}

/// Serves the page and its events on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, feed: Arc<Feed>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: the tap goes on; so does the page, later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let feed = feed.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let feed = feed.clone();
                async move { Ok::<_, Infallible>(respond(&request, &feed)) }
            });
            // A page that goes away ends its connection; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(request: &Request<Incoming>, feed: &Arc<Feed>) -> Response<PageBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    if !local_host(request) {
        return plain(
            StatusCode::FORBIDDEN,
            "the web view answers to an IP address or localhost only\n",
        );
    }
    let (content_type, text) = match request.uri().path() {
        "/" | "/index.html" => ("text/html; charset=utf-8", PAGE),
        "/timeline.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/timeline.css" => ("text/css; charset=utf-8", STYLE),
        "/events" => return events(feed.clone()),
        _ => return plain(StatusCode::NOT_FOUND, "not found: the page is at /\n"),
    };
    let mut response = Response::new(PageBody::Whole(Some(Bytes::from_static(text.as_bytes()))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What to tell whoever starts a page on `addr` that is not a loopback
/// address: the page shows every call that passes (credentials masked, the
/// rest as it is) to anyone who can reach it, and asks no password.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "warning: the web view on {addr} is not on a loopback address: \
             its page shows the traffic that passes (headers, messages) to whoever reaches it"
        )
    })
}

/// Whether the request names the tap by an IP address or `localhost`: a
/// page of another site whose name was pointed at 127.0.0.1 (DNS
/// rebinding) must not read the calls that pass.
fn local_host(request: &Request<Incoming>) -> bool {
    let Some(host) = request.headers().get(hyper::header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn plain(status: StatusCode, text: &'static str) -> Response<PageBody> {
    let mut response = Response::new(PageBody::Whole(Some(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `/events`: a `reset` event (what the history holds), the history, then
/// each record as it comes; `lagged` when this page missed some.
fn events(feed: Arc<Feed>) -> Response<PageBody> {
    let (chunks, body) = mpsc::channel(PAGE_QUEUE);
    tokio::spawn(send_events(feed, chunks));
    let mut response = Response::new(PageBody::Events(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One page's events: from the oldest record kept, then each as it comes.
async fn send_events(feed: Arc<Feed>, chunks: mpsc::Sender<Bytes>) {
    let mut published = feed.published.subscribe();
    let mut next = feed.first();
    let info = json!({
        "history_cap": HISTORY_RECORDS,
        "history_bytes": HISTORY_BYTES,
        "dropped": next,
    });
    let mut chunk = String::new();
    push_event(&mut chunk, Some("reset"), &info.to_string());
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        // Seen before reading: what is published after it wakes us below.
        published.borrow_and_update();
        let read = feed.read(next);
        if read.skipped > 0 {
            let skipped = json!({"skipped": read.skipped}).to_string();
            push_event(&mut chunk, Some("lagged"), &skipped);
        }
        for line in &read.lines {
            push_event(&mut chunk, None, line);
        }
        next = read.next;
        if read.lines.is_empty() && chunk.is_empty() {
            tokio::select! {
                changed = published.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = keep_alive.tick() => chunk.push_str(": keep-alive\n\n"),
            }
        }
        // A page that reads slowly holds only itself back here.
        if !send(&chunks, &mut chunk).await {
            return;
        }
    }
}

/// Sends `chunk` and empties it; false when the page has gone.
async fn send(chunks: &mpsc::Sender<Bytes>, chunk: &mut String) -> bool {
    if chunk.is_empty() {
        return true;
    }
    chunks
        .send(Bytes::from(std::mem::take(chunk)))
        .await
        .is_ok()
}

/// One server-sent event: `data` is one line of JSON.
fn push_event(out: &mut String, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    // JSON escapes line breaks inside strings; this keeps any other one legal.
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// A whole file, or the events as they come.
enum PageBody {
    Whole(Option<Bytes>),
    Events(mpsc::Receiver<Bytes>),
}

impl Body for PageBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        match self.get_mut() {
            PageBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(BodyFrame::data(b)))),
            PageBody::Events(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(BodyFrame::data(b)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Direction;
    use crate::frame::FrameType;

    fn notice(conn: u64, text: &str) -> Record {
        Record {
            conn,
            time: Duration::from_millis(1),
            direction: None,
            event: Event::Notice(text.to_owned()),
        }
    }

    /// Everything a page at `from` can read now, chunk by chunk.
    fn read_all(feed: &Feed, mut from: u64) -> (u64, Vec<Arc<str>>) {
        let (mut skipped, mut lines) = (0, Vec::new());
        loop {
            let read = feed.read(from);
            if read.lines.is_empty() {
                return (skipped, lines);
            }
            assert!(read.lines.len() < HISTORY_RECORDS, "a chunk is bounded");
            skipped += read.skipped;
            lines.extend(read.lines);
            from = read.next;
        }
    }

    #[test]
    fn the_history_keeps_the_newest_records_and_counts_the_others() {
        let feed = Feed::default();
        let records: Vec<Record> = (0..HISTORY_RECORDS as u64 + 5)
            .map(|i| notice(i, "x"))
            .collect();
        feed.publish(&records);
        assert_eq!(*feed.published.borrow(), HISTORY_RECORDS as u64 + 5);
        assert_eq!(feed.first(), 5);
        let (skipped, history) = read_all(&feed, feed.first());
        assert_eq!((skipped, history.len()), (0, HISTORY_RECORDS));
        assert!(history[0].starts_with("{\"conn\":5,"), "{}", history[0]);
        // So are bytes: a few big records push out many small ones.
        let big = "y".repeat(RECORD_CAP / 2);
        let bigs: Vec<Record> = (0..HISTORY_BYTES / big.len())
            .map(|i| notice(i as u64, &big))
            .collect();
        feed.publish(&bigs);
        let (_, history) = read_all(&feed, feed.first());
        let bytes: usize = history.iter().map(|r| r.len()).sum();
        assert!(bytes <= HISTORY_BYTES, "{bytes}");
        assert!(history.iter().all(|r| r.len() > big.len()));
    }

    #[test]
    fn a_page_that_falls_behind_misses_records_and_is_told_how_many() {
        let feed = Feed::default();
        // A page that read 10 records, then nothing while 2 histories' worth came.
        let records: Vec<Record> = (0..2 * HISTORY_RECORDS as u64)
            .map(|i| notice(i, "x"))
            .collect();
        feed.publish(&records);
        let (skipped, lines) = read_all(&feed, 10);
        assert_eq!(skipped, HISTORY_RECORDS as u64 - 10);
        assert_eq!(lines.len(), HISTORY_RECORDS);
        // One that kept up misses nothing, from where it stands.
        let (skipped, lines) = read_all(&feed, 2 * HISTORY_RECORDS as u64 - 3);
        assert_eq!((skipped, lines.len()), (0, 3));
    }

    #[test]
    fn a_record_over_the_cap_goes_without_its_payload() {
        let frame = Record {
            conn: 1,
            time: Duration::ZERO,
            direction: Some(Direction::ClientToServer),
            event: Event::Frame(Frame {
                stream: 0,
                kind: FrameType::GoAway,
                flags: 0,
                length: 70_000,
                detail: Detail::GoAway {
                    last_stream: 0,
                    code: 0,
                    debug: vec![b'a'; 70_000],
                },
                raw: Some(crate::event::Raw::Bytes {
                    bytes: vec![0; 9],
                    masked: Vec::new(),
                }),
            }),
        };
        let line = record_json(&frame);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(line.len() < 1024, "{line}");
        assert_eq!(value["type"], "GOAWAY");
        assert_eq!(value["raw"], "000000000000000000");
        let why = value["malformed"].as_str().unwrap();
        assert!(why.contains("over the web view's 65536-byte cap"), "{why}");
    }

    #[test]
    fn a_page_off_loopback_is_warned_about() {
        for quiet in ["127.0.0.1:1", "127.0.0.9:1", "[::1]:1"] {
            assert_eq!(exposure_warning(quiet.parse().unwrap()), None, "{quiet}");
        }
        for open in ["0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080"] {
            let warning = exposure_warning(open.parse().unwrap()).unwrap();
            assert!(warning.contains("to whoever reaches it"), "{warning}");
            assert!(warning.contains(open), "{warning}");
        }
    }

    #[test]
    fn events_are_lines_of_data() {
        let mut out = String::new();
        push_event(&mut out, Some("lagged"), "{\"skipped\":3}");
        push_event(&mut out, None, "a\nb");
        assert_eq!(
            out,
            "event: lagged\ndata: {\"skipped\":3}\n\ndata: a\ndata: b\n\n"
        );
    }
}
