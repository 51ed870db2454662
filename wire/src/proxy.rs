//! The tap itself: a TCP proxy that forwards every byte at once, unchanged,
//! both ways, and hands a copy of each chunk to the connection's decoder.
//! Each read is stamped (its place among both directions' reads, and its
//! time) the moment it returns, and its copy is queued before the bytes are
//! written on: a write that stalls (a peer that does not read) never lets
//! the other direction's later reads overtake it, and the decoder takes the
//! chunks in the order they were read, whatever order they reach it in. So
//! every view shows the frames in the order the tap read them. The decoder
//! runs as a task of its own, fed through a bounded queue of chunks (so a
//! tap's memory per connection is bounded, and a decoder far behind holds
//! the forwarding back). The records are printed, and with `web` sent to the
//! web view's pages.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::connection::{ConnectionDecoder, DecodeOptions};
use crate::contract::Contract;
use crate::event::{Direction, Event, Record};
use crate::output::{self, Format, Style};
use crate::web::{self, Feed};

/// One read's buffer: large, so a bulk upload moves in few system calls.
const READ_BUFFER: usize = 256 * 1024;
/// Chunks queued for one connection's decoder: with [`READ_BUFFER`], at most
/// 8 MiB a connection waits to be decoded before forwarding waits for it.
const CHUNKS_QUEUED: usize = 32;

/// What a tap forwards to and how it shows what passes.
#[derive(Clone, Debug)]
pub struct TapOptions {
    /// `HOST:PORT` of the gRPC server.
    pub upstream: String,
    pub format: Format,
    /// Colours (text on a terminal).
    pub colour: bool,
    /// Each message's annotated bytes.
    pub bytes: bool,
    /// Also serve the web view on this `HOST:PORT` (port 0: any free port).
    pub web: Option<String>,
}

impl TapOptions {
    fn style(&self) -> Style {
        Style {
            format: self.format,
            colour: self.colour && self.format == Format::Text,
        }
    }

    fn decode(&self, printed: bool) -> DecodeOptions {
        DecodeOptions {
            text: printed && self.format == Format::Text,
            bytes: self.bytes,
            raw: self.web.is_some(),
        }
    }
}

/// Where the records go: printed as whole lines, one connection's batch at
/// a time, and to the web view's pages.
pub struct Output {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
    style: Style,
    web: Option<Arc<Feed>>,
}

impl Output {
    pub fn new(
        sink: Option<Box<dyn Write + Send>>,
        style: Style,
        web: Option<Arc<Feed>>,
    ) -> Output {
        Output {
            sink: sink.map(Mutex::new),
            style,
            web,
        }
    }

    /// Prints `records` and sends them to the pages. A closed output (a
    /// reader that went away) does not stop the forwarding; the pages never
    /// hold it back.
    fn write(&self, records: &[Record], text: &mut String) {
        if let Some(web) = &self.web {
            web.publish(records);
        }
        let Some(sink) = &self.sink else {
            return;
        };
        text.clear();
        for record in records {
            output::render(record, self.style, text);
        }
        let mut sink = sink.lock();
        let _ = sink.write_all(text.as_bytes()).and_then(|()| sink.flush());
    }
}

struct Shared {
    decode: DecodeOptions,
    upstream: String,
    contract: Arc<Contract>,
    output: Output,
    next_conn: AtomicU64,
}

/// What the forwarders tell the decoder, and when they read it.
enum Chunk {
    Bytes(Direction, Bytes, Stamp),
    Notice(Direction, String, Stamp),
}

impl Chunk {
    fn stamp(&self) -> Stamp {
        match self {
            Chunk::Bytes(_, _, stamp) | Chunk::Notice(_, _, stamp) => *stamp,
        }
    }
}

/// A read's place among all of its connection's reads (both directions),
/// and when it returned.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    seq: u64,
    at: Instant,
}

/// Stamps one connection's reads. Both directions are read by one task
/// (`tap_connection` joins them), so stamps are taken one at a time and
/// their places and times agree.
#[derive(Default)]
struct ReadClock {
    next: AtomicU64,
}

impl ReadClock {
    fn stamp(&self) -> Stamp {
        Stamp {
            seq: self.next.fetch_add(1, Ordering::Relaxed),
            at: Instant::now(),
        }
    }
}

/// Hands out chunks in the order they were read (by [`Stamp::seq`]). One
/// can reach the decoder's queue after a later one; it is kept here until
/// the ones before it have come. Every stamp taken is sent (a chunk or a
/// notice), and sent before its bytes are written on, so the wait is short
/// and what is kept is bounded by the queue.
#[derive(Default)]
struct InReadOrder {
    next: u64,
    early: BTreeMap<u64, Chunk>,
}

impl InReadOrder {
    fn push(&mut self, chunk: Chunk) {
        self.early.insert(chunk.stamp().seq, chunk);
    }

    fn pop(&mut self) -> Option<Chunk> {
        let chunk = self.early.remove(&self.next)?;
        self.next += 1;
        Some(chunk)
    }

    /// What is still kept, in order, once no more can come.
    fn rest(self) -> impl Iterator<Item = Chunk> {
        self.early.into_values()
    }
}

/// The listeners of a tap: where clients connect, and the web view's.
pub struct Listeners {
    pub tap: TcpListener,
    pub web: Option<TcpListener>,
}

impl Listeners {
    /// Binds `listen`, and the web view's address if `options` has one.
    pub async fn bind(listen: &str, options: &TapOptions) -> Result<Listeners, String> {
        let tap = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let web = match &options.web {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot serve the web view on {addr}: {e}"))?,
            ),
            None => None,
        };
        Ok(Listeners { tap, web })
    }
}

/// Accepts connections and taps each until `stop` resolves; then waits up
/// to the grace it gives for the open ones to close. `sink`: where records
/// are printed (none: only to the web view).
pub async fn serve(
    listeners: Listeners,
    options: TapOptions,
    sink: Option<Box<dyn Write + Send>>,
    stop: impl Future<Output = Duration>,
) {
    let Listeners { tap: listener, web } = listeners;
    let feed = web.map(|web| {
        let feed = Arc::new(Feed::default());
        (feed.clone(), tokio::spawn(web::serve(web, feed)))
    });
    let shared = Arc::new(Shared {
        decode: options.decode(sink.is_some()),
        upstream: options.upstream.clone(),
        contract: Arc::new(Contract::lab()),
        output: Output::new(sink, options.style(), feed.as_ref().map(|(f, _)| f.clone())),
        next_conn: AtomicU64::new(1),
    });
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    let grace = loop {
        tokio::select! {
            grace = &mut stop => break grace,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                    let accepted = Instant::now();
                    connections.spawn(tap_connection(conn, accepted, client, peer, shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors, say: report, pause, go on serving.
                    notice(&shared, 0, Duration::ZERO, format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if let Some((_, server)) = feed {
        server.abort();
    }
}

fn notice(shared: &Shared, conn: u64, time: Duration, text: String) {
    let record = Record {
        conn,
        time,
        direction: None,
        event: Event::Notice(text),
    };
    shared.output.write(&[record], &mut String::new());
}

async fn tap_connection(
    conn: u64,
    accepted: Instant,
    client: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) {
    let upstream = shared.upstream.clone();
    let server = match TcpStream::connect(&upstream).await {
        Ok(server) => server,
        Err(e) => {
            notice(
                &shared,
                conn,
                accepted.elapsed(),
                format!("upstream {upstream} is unreachable ({e}): the client's connection from {peer} is closed"),
            );
            return;
        }
    };
    // Small frames (a ping-pong's) go at once, not after Nagle's delay.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (chunks, queue) = mpsc::channel(CHUNKS_QUEUED);
    let opened = Record {
        conn,
        time: accepted.elapsed(),
        direction: None,
        event: Event::Opened {
            client: peer.to_string(),
            upstream,
        },
    };
    let decoder = tokio::spawn(decode(conn, accepted, queue, shared.clone(), opened));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let clock = ReadClock::default();
    tokio::join!(
        forward(
            client_read,
            server_write,
            Direction::ClientToServer,
            chunks.clone(),
            &clock,
        ),
        forward(
            server_read,
            client_write,
            Direction::ServerToClient,
            chunks,
            &clock
        ),
    );
    let _ = decoder.await;
}

/// Copies `from` to `to` until the end, then passes the end on (a half
/// close). Each read is stamped as it returns and its copy queued for the
/// decoder before it is written on.
async fn forward(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: Direction,
    chunks: mpsc::Sender<Chunk>,
    clock: &ReadClock,
) {
    let mut buffer = vec![0u8; READ_BUFFER];
    let (reader, writer) = match direction {
        Direction::ClientToServer => ("client", "upstream"),
        Direction::ServerToClient => ("upstream", "client"),
    };
    loop {
        // A stamp taken is a chunk sent: the decoder waits for each in turn.
        let (n, stamp) = match from.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => (n, clock.stamp()),
            Err(e) => {
                let line = format!("reading from the {reader} failed: {e}");
                let _ = chunks
                    .send(Chunk::Notice(direction, line, clock.stamp()))
                    .await;
                break;
            }
        };
        // Queued first, forwarded after: the decoder has every read in
        // hand whatever a write waits for. A decoder that is gone (it
        // cannot be, short of a bug) costs the view, never the traffic.
        let copy = Bytes::copy_from_slice(&buffer[..n]);
        let _ = chunks.send(Chunk::Bytes(direction, copy, stamp)).await;
        if let Err(e) = to.write_all(&buffer[..n]).await {
            let line = format!("writing to the {writer} failed: {e}");
            let _ = chunks
                .send(Chunk::Notice(direction, line, clock.stamp()))
                .await;
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Decodes one connection's chunks in order and prints what they show.
async fn decode(
    conn: u64,
    accepted: Instant,
    mut queue: mpsc::Receiver<Chunk>,
    shared: Arc<Shared>,
    opened: Record,
) {
    let mut decoder = ConnectionDecoder::new(conn, shared.contract.clone(), shared.decode);
    let mut records = vec![opened];
    let mut text = String::new();
    let mut in_order = InReadOrder::default();
    let mut feed = |chunk, records: &mut Vec<Record>| match chunk {
        Chunk::Bytes(direction, bytes, stamp) => {
            decoder.set_time(stamp.at.duration_since(accepted));
            decoder.feed(direction, &bytes, records);
        }
        Chunk::Notice(direction, line, stamp) => {
            decoder.set_time(stamp.at.duration_since(accepted));
            decoder.notice(Some(direction), line, records);
        }
    };
    while let Some(chunk) = queue.recv().await {
        let mut next = Some(chunk);
        // What else is queued goes out in the same write.
        while let Some(chunk) = next {
            in_order.push(chunk);
            while let Some(chunk) = in_order.pop() {
                feed(chunk, &mut records);
            }
            next = if records.len() < 1024 {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        shared.output.write(&records, &mut text);
        records.clear();
    }
    // A forwarder stopped between a stamp and its send (the tap shutting
    // down): what was read after it is still shown, in order.
    for chunk in in_order.rest() {
        feed(chunk, &mut records);
    }
    decoder.set_time(accepted.elapsed());
    decoder.finish(&mut records);
    shared.output.write(&records, &mut text);
}

/// Binds `listen` and taps it until the process ends (`wiretap`); an error
/// is one line.
pub fn run(listen: &str, options: TapOptions, sink: Box<dyn Write + Send>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wiretap")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let listeners = Listeners::bind(listen, &options).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| format!("cannot listen: {e}"));
        let mut stderr = io::stderr();
        let _ = writeln!(
            stderr,
            "wiretap: listening on {}, forwarding to {}",
            local(&listeners.tap)?,
            options.upstream
        );
        if let Some(web) = &listeners.web {
            let _ = writeln!(
                stderr,
                "wiretap: the web view is at http://{}/",
                local(web)?
            );
        }
        serve(listeners, options, Some(sink), std::future::pending()).await;
        Ok(())
    })
}

/// A tap in a thread of this process, on 127.0.0.1 at a free port, for a
/// client to connect through (`client --show-wire`).
pub struct BackgroundTap {
    addr: SocketAddr,
    web_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<Duration>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundTap {
    /// `sink`: where records are printed (none: only to the web view).
    pub fn start(
        options: TapOptions,
        sink: Option<Box<dyn Write + Send>>,
    ) -> Result<BackgroundTap, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wiretap")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let listeners = runtime.block_on(Listeners::bind("127.0.0.1:0", &options))?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| format!("cannot listen: {e}"));
        let addr = local(&listeners.tap)?;
        let web_addr = listeners.web.as_ref().map(local).transpose()?;
        let (stop, stopped) = oneshot::channel::<Duration>();
        let thread = std::thread::Builder::new()
            .name("wiretap".into())
            .spawn(move || {
                let stop = async move { stopped.await.unwrap_or_default() };
                runtime.block_on(serve(listeners, options, sink, stop));
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(BackgroundTap {
            addr,
            web_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the client connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the web view's page is, if it has one.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// Stops accepting, and waits up to `grace` for the open connections
    /// to close (so their last frames and summaries are printed).
    pub fn stop(mut self, grace: Duration) {
        self.shut(grace);
    }

    fn shut(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundTap {
    fn drop(&mut self) {
        self.shut(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use serde_json::Value;
    use tokio::io::duplex;
    use tokio::sync::Notify;

    use super::*;
    use crate::frame::tests::frame;
    use crate::frame::PREFACE;

    /// A writer that takes nothing until it is opened: a peer that does not
    /// read. `tried` is told when the first write waits.
    #[derive(Clone, Default)]
    struct Shut {
        state: Arc<Mutex<(bool, Option<Waker>)>>,
        tried: Arc<Notify>,
    }

    impl Shut {
        fn open(&self) {
            let mut state = self.state.lock();
            state.0 = true;
            if let Some(waker) = state.1.take() {
                waker.wake();
            }
        }
    }

    impl AsyncWrite for Shut {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut state = self.state.lock();
            if state.0 {
                return Poll::Ready(Ok(buf.len()));
            }
            state.1 = Some(cx.waker().clone());
            self.tried.notify_one();
            Poll::Pending
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What the decoder printed, as JSON lines.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A tap's shared state, printing JSON lines to `lines`.
    fn shared(lines: &Lines) -> Arc<Shared> {
        Arc::new(Shared {
            decode: DecodeOptions::default(),
            upstream: "upstream".to_owned(),
            contract: Arc::new(Contract::lab()),
            output: Output::new(
                Some(Box::new(lines.clone())),
                Style {
                    format: Format::Json,
                    colour: false,
                },
                None,
            ),
            next_conn: AtomicU64::new(1),
        })
    }

    fn opened() -> Record {
        Record {
            conn: 1,
            time: Duration::ZERO,
            direction: None,
            event: Event::Notice("opened".to_owned()),
        }
    }

    /// (direction, event or frame type) of each record, in the order printed.
    fn seen(lines: &Lines) -> Vec<(String, String)> {
        let text = String::from_utf8(lines.0.lock().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|r| r["dir"].is_string())
            .map(|r| {
                let what = r["type"].as_str().or(r["event"].as_str()).unwrap_or("?");
                (r["dir"].as_str().unwrap().to_owned(), what.to_owned())
            })
            .collect()
    }

    /// The client's frames are read first; their write to the server
    /// stalls; the server's SETTINGS are read and forwarded meanwhile. The
    /// view shows the client's frames first, as they were read.
    #[tokio::test]
    async fn a_stalled_write_lets_no_later_read_overtake_it() {
        let lines = Lines::default();
        let (chunks, queue) = mpsc::channel(CHUNKS_QUEUED);
        let decoder = tokio::spawn(decode(1, Instant::now(), queue, shared(&lines), opened()));
        let (mut client, client_side) = duplex(1 << 16);
        let (mut server, server_side) = duplex(1 << 16);
        let (client_read, mut client_write) = tokio::io::split(client_side);
        let (server_read, _server_write) = tokio::io::split(server_side);
        let upstream = Shut::default();
        let (tried, stalled) = (upstream.tried.clone(), upstream.clone());
        let forwarding = tokio::spawn(async move {
            let clock = ReadClock::default();
            let server_chunks = chunks.clone();
            tokio::join!(
                forward(
                    client_read,
                    upstream,
                    Direction::ClientToServer,
                    chunks,
                    &clock
                ),
                forward(
                    server_read,
                    &mut client_write,
                    Direction::ServerToClient,
                    server_chunks,
                    &clock
                ),
            );
        });

        let ping = frame(6, 0, 0, &[7; 8]);
        client
            .write_all(&[&PREFACE[..], &frame(4, 0, 0, &[]), &ping].concat())
            .await
            .unwrap();
        tried.notified().await;
        let settings = frame(4, 0, 0, &[]);
        server.write_all(&settings).await.unwrap();
        let mut forwarded = vec![0; settings.len()];
        client.read_exact(&mut forwarded).await.unwrap();
        stalled.open();
        drop((client, server));
        forwarding.await.unwrap();
        decoder.await.unwrap();

        let c2s = |what: &str| ("client_to_server".to_owned(), what.to_owned());
        let s2c = |what: &str| ("server_to_client".to_owned(), what.to_owned());
        assert_eq!(
            seen(&lines),
            [
                c2s("preface"),
                c2s("SETTINGS"),
                c2s("PING"),
                s2c("SETTINGS")
            ]
        );
        let text = String::from_utf8(lines.0.lock().clone()).unwrap();
        let times: Vec<f64> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["time"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    /// The client half-closes; what the server sends after is still shown as it is read.
    #[tokio::test]
    async fn after_one_direction_ends_the_other_is_shown_as_it_is_read() {
        let lines = Lines::default();
        let (chunks, queue) = mpsc::channel(CHUNKS_QUEUED);
        let decoder = tokio::spawn(decode(1, Instant::now(), queue, shared(&lines), opened()));
        let (mut client, client_side) = duplex(1 << 16);
        let (mut server, server_side) = duplex(1 << 16);
        let (client_read, client_write) = tokio::io::split(client_side);
        let (server_read, server_write) = tokio::io::split(server_side);
        let forwarding = tokio::spawn(async move {
            let clock = ReadClock::default();
            let server_chunks = chunks.clone();
            tokio::join!(
                forward(
                    client_read,
                    server_write,
                    Direction::ClientToServer,
                    chunks,
                    &clock
                ),
                forward(
                    server_read,
                    client_write,
                    Direction::ServerToClient,
                    server_chunks,
                    &clock
                ),
            );
        });

        client
            .write_all(&[&PREFACE[..], &frame(4, 0, 0, &[])].concat())
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut upstream_got = Vec::new();
        server.read_to_end(&mut upstream_got).await.unwrap();
        server.write_all(&frame(4, 0, 0, &[])).await.unwrap();
        let shown = |lines: &Lines| seen(lines).len() == 3;
        for _ in 0..1000 {
            if shown(&lines) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(shown(&lines), "{:?}", seen(&lines));
        drop((client, server));
        forwarding.await.unwrap();
        decoder.await.unwrap();
    }

    #[test]
    fn chunks_that_reach_the_decoder_out_of_order_are_taken_in_read_order() {
        let clock = ReadClock::default();
        let chunk = |n: u8| {
            Chunk::Bytes(
                Direction::ClientToServer,
                Bytes::from(vec![n]),
                clock.stamp(),
            )
        };
        let (first, second, third) = (chunk(0), chunk(1), chunk(2));
        let mut in_order = InReadOrder::default();
        in_order.push(third);
        in_order.push(second);
        assert!(in_order.pop().is_none(), "the first read has not come");
        in_order.push(first);
        let bytes: Vec<u8> = std::iter::from_fn(|| in_order.pop())
            .map(|chunk| match chunk {
                Chunk::Bytes(_, bytes, _) => bytes[0],
                Chunk::Notice(..) => unreachable!(),
            })
            .collect();
        assert_eq!(bytes, [0, 1, 2]);
    }
}
