//! The tap itself: a TCP proxy that forwards every byte at once, unchanged,
//! both ways, and hands a copy of each chunk to the connection's decoder.
//! The copy is taken after the bytes are written on, so decoding never holds
//! them back; the decoder runs as a task of its own, fed through a bounded
//! queue of chunks (so a tap's memory per connection is bounded too).
//! The records are printed, and with `web` sent to the web view's pages.

use parking_lot::Mutex;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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
    Bytes(Direction, Bytes, Instant),
    Notice(Direction, String, Instant),
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
    tokio::join!(
        forward(
            client_read,
            server_write,
            Direction::ClientToServer,
            chunks.clone()
        ),
        forward(server_read, client_write, Direction::ServerToClient, chunks),
    );
    let _ = decoder.await;
}

/// Copies `from` to `to` until the end, then passes the end on (a half close).
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    chunks: mpsc::Sender<Chunk>,
) {
    let mut buffer = vec![0u8; READ_BUFFER];
    let (reader, writer) = match direction {
        Direction::ClientToServer => ("client", "upstream"),
        Direction::ServerToClient => ("upstream", "client"),
    };
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = chunks
                    .send(Chunk::Notice(
                        direction,
                        format!("reading from the {reader} failed: {e}"),
                        Instant::now(),
                    ))
                    .await;
                break;
            }
        };
        let read_at = Instant::now();
        if let Err(e) = to.write_all(&buffer[..n]).await {
            let _ = chunks
                .send(Chunk::Notice(
                    direction,
                    format!("writing to the {writer} failed: {e}"),
                    Instant::now(),
                ))
                .await;
            break;
        }
        // Forwarded first, observed after. A decoder that is gone (it
        // cannot be, short of a bug) costs the view, never the traffic.
        let _ = chunks
            .send(Chunk::Bytes(
                direction,
                Bytes::copy_from_slice(&buffer[..n]),
                read_at,
            ))
            .await;
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
    while let Some(chunk) = queue.recv().await {
        let mut next = Some(chunk);
        // What else is queued goes out in the same write.
        while let Some(chunk) = next {
            match chunk {
                Chunk::Bytes(direction, bytes, at) => {
                    decoder.set_time(at.duration_since(accepted));
                    decoder.feed(direction, &bytes, &mut records);
                }
                Chunk::Notice(direction, line, at) => {
                    decoder.set_time(at.duration_since(accepted));
                    decoder.notice(Some(direction), line, &mut records);
                }
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
            let addr = local(web)?;
            let _ = writeln!(stderr, "wiretap: the web view is at http://{addr}/");
            if let Some(warning) = web::exposure_warning(addr) {
                let _ = writeln!(stderr, "wiretap: {warning}");
            }
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
