//! An independent load generator for LearningMessenger servers. gRPC is framed
//! by hand over the `h2` crate (HTTP/2 only, no grpcio), so many messages share
//! one DATA frame and the client's cost per message stays far below a
//! server's: the figures are the server's. Messages are the project's own
//! (rust-protobuf), and every answer is checked as `bench` checks it.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use messenger_lab::answers::learning_contents;
use messenger_lab::demo::TOPIC;
use messenger_lab::method_path;
use messenger_lab::proto::messenger::{
    FeedUpdate, LearningUpdate, StatusRequest, StatusResponse, SummaryResponse, TopicRequest,
};
use messenger_testkit::checks::{
    check_echo, check_learning_update, check_status, check_summary, numbered_note, numbered_update,
};
use messenger_testkit::closed_loop::{self, Tally, Window};
use messenger_testkit::report::{latency_histogram, per_second, record_latency, Latency};
use protobuf::Message;
use tokio::net::TcpStream;

/// Bytes of messages encoded before they are handed to HTTP/2 in one piece.
const CHUNK_BYTES: usize = 64 * 1024;

pub type Result<T> = std::result::Result<T, String>;

/// One HTTP/2 connection to the server under test.
#[derive(Clone)]
pub struct Connection {
    target: String,
    requests: SendRequest<Bytes>,
}

impl Connection {
    /// Connects with large flow-control windows, so the server is never kept
    /// waiting for this client's window updates.
    pub async fn open(target: &str) -> Result<Connection> {
        let tcp = TcpStream::connect(target)
            .await
            .map_err(|e| format!("cannot reach {target}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("{target}: {e}"))?;
        let (requests, connection) = h2::client::Builder::new()
            .initial_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .max_frame_size(1 << 20)
            .handshake(tcp)
            .await
            .map_err(|e| format!("{target}: HTTP/2 handshake failed: {e}"))?;
        // The connection is driven by its own task; its error reaches the calls.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            target: target.to_owned(),
            requests,
        })
    }

    /// Starts a call to the method at `path`: its request body and its response.
    async fn call(&self, path: &str) -> Result<(SendStream<Bytes>, h2::client::ResponseFuture)> {
        let method = method_name(path);
        let request = http::Request::post(format!("http://{}{path}", self.target))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| e.to_string())?;
        let mut requests = self
            .requests
            .clone()
            .ready()
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        let (response, body) = requests
            .send_request(request, false)
            .map_err(|e| format!("{method}: {e}"))?;
        Ok((body, response))
    }
}

/// The method's name, the last part of its path, for messages.
fn method_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Appends `message` to `out` as one gRPC length-prefixed message.
pub fn encode(message: &impl Message, scratch: &mut Vec<u8>, out: &mut BytesMut) -> Result<()> {
    scratch.clear();
    message.write_to_vec(scratch).map_err(|e| e.to_string())?;
    out.put_u8(0);
    out.put_u32(u32::try_from(scratch.len()).map_err(|_| "message over 4 GiB".to_owned())?);
    out.put_slice(scratch);
    Ok(())
}

/// Splits a response body into gRPC messages, however its DATA frames fall.
#[derive(Default)]
pub struct Decoder {
    pending: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Bytes>> {
        if self.pending.len() < 5 {
            return Ok(None);
        }
        if self.pending[0] != 0 {
            return Err(
                "the server sent a compressed message; this client asks for none".to_owned(),
            );
        }
        let length = u32::from_be_bytes([
            self.pending[1],
            self.pending[2],
            self.pending[3],
            self.pending[4],
        ]) as usize;
        if self.pending.len() < 5 + length {
            return Ok(None);
        }
        let mut frame = self.pending.split_to(5 + length);
        Ok(Some(frame.split_off(5).freeze()))
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A call's response: its messages in order, then its status.
pub struct Response {
    head: http::response::Parts,
    body: RecvStream,
    decoder: Decoder,
}

impl Response {
    async fn of(method: &str, response: h2::client::ResponseFuture) -> Result<Response> {
        let (head, body) = response
            .await
            .map_err(|e| format!("{method}: {e}"))?
            .into_parts();
        if head.status != http::StatusCode::OK {
            return Err(format!("{method}: HTTP status {}", head.status));
        }
        Ok(Response {
            head,
            body,
            decoder: Decoder::default(),
        })
    }

    /// The next message, decoded; None once the server ended its messages.
    pub async fn next<M: Message>(&mut self) -> Result<Option<M>> {
        loop {
            if let Some(bytes) = self.decoder.next_message()? {
                return M::parse_from_bytes(&bytes)
                    .map(Some)
                    .map_err(|e| format!("a response does not parse: {e}"));
            }
            match self.body.data().await {
                Some(Ok(data)) => {
                    // Hand the window back at once: only the server should limit the pace.
                    let _ = self.body.flow_control().release_capacity(data.len());
                    self.decoder.push(&data);
                }
                Some(Err(e)) => return Err(format!("the response stream failed: {e}")),
                None if self.decoder.is_empty() => return Ok(None),
                None => return Err("the response ended inside a message".to_owned()),
            }
        }
    }

    /// The one answer of a call with one, after its status.
    pub async fn single<M: Message>(mut self, method: &str) -> Result<M> {
        let answer = self.next().await?;
        self.finish().await.map_err(|e| format!("{method}: {e}"))?;
        answer.ok_or_else(|| format!("{method}: the call succeeded without an answer"))
    }

    /// The call's gRPC status: Ok for OK, else the code and message.
    pub async fn finish(mut self) -> Result<()> {
        let trailers = match self.head.headers.contains_key("grpc-status") {
            true => self.head.headers,
            false => self
                .body
                .trailers()
                .await
                .map_err(|e| format!("no trailers: {e}"))?
                .unwrap_or_default(),
        };
        let text = |name: &str| {
            trailers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        match text("grpc-status").as_str() {
            "0" => Ok(()),
            "" => Err("the call ended without a grpc-status".to_owned()),
            code => Err(format!(
                "the call failed: status {code}: {}",
                text("grpc-message")
            )),
        }
    }
}

/// Sends `count` messages made by `make`, encoded a chunk at a time (memory
/// stays flat however long the stream), then ends the request stream.
async fn send_lazily<M: Message>(
    body: &mut SendStream<Bytes>,
    count: u64,
    make: impl Fn(u64) -> M,
) -> Result<()> {
    let (mut scratch, mut chunk) = (Vec::new(), BytesMut::with_capacity(CHUNK_BYTES + 1024));
    let mut i = 0;
    while i < count {
        while i < count && chunk.len() < CHUNK_BYTES {
            encode(&make(i), &mut scratch, &mut chunk)?;
            i += 1;
        }
        send_data(body, chunk.split().freeze()).await?;
    }
    body.send_data(Bytes::new(), true)
        .map_err(|e| format!("cannot end the request stream: {e}"))
}

/// Sends `data` as the server's flow-control window allows.
async fn send_data(body: &mut SendStream<Bytes>, mut data: Bytes) -> Result<()> {
    while !data.is_empty() {
        body.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| body.poll_capacity(cx)).await {
            Some(Ok(granted)) => granted,
            Some(Err(e)) => return Err(format!("the request stream failed: {e}")),
            None => return Err("the server closed the request stream".to_owned()),
        };
        body.send_data(data.split_to(granted.min(data.len())), false)
            .map_err(|e| format!("the request stream failed: {e}"))?;
    }
    Ok(())
}

/// One request message, then the end of the request stream.
async fn send_one(body: &mut SendStream<Bytes>, message: &impl Message) -> Result<()> {
    let mut frame = BytesMut::new();
    encode(message, &mut Vec::new(), &mut frame)?;
    body.send_data(frame.freeze(), true)
        .map_err(|e| format!("cannot send the request: {e}"))
}

/// How a closed-loop run went: calls in the measured window and their latencies.
pub struct ClosedLoop {
    pub calls: u64,
    pub elapsed: Duration,
    pub latency: Option<Latency>,
}

impl ClosedLoop {
    pub fn calls_per_second(&self) -> f64 {
        per_second(self.calls, self.elapsed)
    }
}

/// Closed-loop calls: `concurrency` workers over `connections`, each starting
/// its next call when its last one ends; calls that start inside the window
/// (after `warmup`, for `duration`) are counted and timed.
async fn closed_loop<F, Fut>(
    connections: &[Connection],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    call: F,
) -> Result<ClosedLoop>
where
    F: Fn(Connection, usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    if connections.is_empty() || concurrency == 0 {
        return Err("need at least one connection and one call in flight".to_owned());
    }
    let window = Window::starting_now(warmup, duration);
    let worker = |index: usize| {
        let (connection, call) = (&connections[index % connections.len()], &call);
        closed_loop::worker(window, move || call(connection.clone(), index))
    };
    // One thread polls every worker: no cross-thread wake-ups in the client.
    let tallies = futures::future::join_all((0..concurrency).map(worker)).await;
    let tallies = tallies.into_iter().collect::<Result<Vec<Tally>>>()?;
    let (tally, elapsed) = Tally::merge(tallies, &window);
    if tally.calls == 0 {
        return Err("no call completed in the measured window".to_owned());
    }
    Ok(ClosedLoop {
        calls: tally.calls,
        elapsed,
        latency: Latency::from_histogram(&tally.latencies),
    })
}

/// Closed-loop GetLearningStatus, each answer checked.
pub async fn unary(
    connections: &[Connection],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<ClosedLoop> {
    closed_loop(
        connections,
        concurrency,
        warmup,
        duration,
        |connection, index| {
            let request = StatusRequest {
                user_id: format!("loadgen-{index}"),
                ..Default::default()
            };
            async move {
                let (mut body, response) =
                    connection.call(method_path::GET_LEARNING_STATUS).await?;
                send_one(&mut body, &request).await?;
                let status: StatusResponse = Response::of("GetLearningStatus", response)
                    .await?
                    .single("GetLearningStatus")
                    .await?;
                check_status(&status).map_err(|what| format!("GetLearningStatus: {what}"))
            }
        },
    )
    .await
}

/// Closed-loop StreamLearnings (start the server with `--delay-ms 0`), every update checked.
pub async fn server_stream(
    connections: &[Connection],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<ClosedLoop> {
    closed_loop(
        connections,
        concurrency,
        warmup,
        duration,
        |connection, _| async move {
            let (mut body, response) = connection.call(method_path::STREAM_LEARNINGS).await?;
            send_one(
                &mut body,
                &TopicRequest {
                    topic: TOPIC.to_owned(),
                    ..Default::default()
                },
            )
            .await?;
            let mut response = Response::of("StreamLearnings", response).await?;
            let mut index = 0;
            while let Some(update) = response.next::<LearningUpdate>().await? {
                check_learning_update(TOPIC, index, &update)
                    .map_err(|what| format!("StreamLearnings: {what}"))?;
                index += 1;
            }
            response
                .finish()
                .await
                .map_err(|e| format!("StreamLearnings: {e}"))?;
            if index != updates_per_call() {
                return Err(format!(
                    "StreamLearnings: {index} updates, expected {}",
                    updates_per_call()
                ));
            }
            Ok(())
        },
    )
    .await
}

/// Updates in one StreamLearnings answer.
pub fn updates_per_call() -> usize {
    learning_contents(TOPIC).len()
}

/// One SubmitResearchNotes call of `count` notes; the summary is checked.
/// Returns the time from the first note to the summary.
pub async fn client_stream(connection: &Connection, count: u64) -> Result<Duration> {
    let started = Instant::now();
    let (mut body, response) = connection.call(method_path::SUBMIT_RESEARCH_NOTES).await?;
    send_lazily(&mut body, count, numbered_note).await?;
    let summary: SummaryResponse = Response::of("SubmitResearchNotes", response)
        .await?
        .single("SubmitResearchNotes")
        .await?;
    let elapsed = started.elapsed();
    check_summary(count, &summary).map_err(|what| format!("SubmitResearchNotes: {what}"))?;
    Ok(elapsed)
}

/// One CollaborativeFeed of `count` updates, echoes read while updates are
/// still being sent; every echo is checked. Returns the time to the last echo.
pub async fn bidi(connection: &Connection, count: u64) -> Result<Duration> {
    let started = Instant::now();
    let (mut body, response) = connection.call(method_path::COLLABORATIVE_FEED).await?;
    let send = send_lazily(&mut body, count, numbered_update);
    let receive = async {
        let mut response = Response::of("CollaborativeFeed", response).await?;
        let (mut received, mut expected) = (0, String::new());
        while let Some(echo) = response.next::<FeedUpdate>().await? {
            check_echo(received, &echo, &mut expected)
                .map_err(|what| format!("CollaborativeFeed: {what}"))?;
            received += 1;
        }
        response
            .finish()
            .await
            .map_err(|e| format!("CollaborativeFeed: {e}"))?;
        if received != count {
            return Err(format!(
                "CollaborativeFeed: {received} echoes for {count} updates"
            ));
        }
        Ok(())
    };
    futures::future::try_join(send, receive).await?;
    Ok(started.elapsed())
}

/// Lock-step CollaborativeFeed: each update waits for its echo. Latencies of
/// `count` round trips after `warmup` unmeasured ones.
pub async fn ping_pong(connection: &Connection, warmup: u64, count: u64) -> Result<Latency> {
    let (mut body, response_head) = connection.call(method_path::COLLABORATIVE_FEED).await?;
    // The server answers with headers only when it sends the first echo.
    let mut response_head = Some(response_head);
    let mut response: Option<Response> = None;
    let (mut scratch, mut frame, mut expected, mut histogram) = (
        Vec::new(),
        BytesMut::new(),
        String::new(),
        latency_histogram(),
    );
    for i in 0..warmup + count {
        let started = Instant::now();
        encode(&numbered_update(i), &mut scratch, &mut frame)?;
        body.send_data(frame.split().freeze(), false)
            .map_err(|e| format!("the request stream failed: {e}"))?;
        let stream = match response.as_mut() {
            Some(stream) => stream,
            None => {
                let head = response_head
                    .take()
                    .ok_or("CollaborativeFeed: no response")?;
                response.insert(Response::of("CollaborativeFeed", head).await?)
            }
        };
        let Some(echo) = stream.next::<FeedUpdate>().await? else {
            return match response.take() {
                Some(stream) => stream
                    .finish()
                    .await
                    .and(Err(format!("CollaborativeFeed: ended after {i} echoes"))),
                None => Err("CollaborativeFeed: no response".to_owned()),
            };
        };
        check_echo(i, &echo, &mut expected).map_err(|what| format!("CollaborativeFeed: {what}"))?;
        if i >= warmup {
            record_latency(&mut histogram, started.elapsed());
        }
    }
    body.send_data(Bytes::new(), true)
        .map_err(|e| format!("cannot end the request stream: {e}"))?;
    if let Some(mut stream) = response {
        if stream.next::<FeedUpdate>().await?.is_some() {
            return Err("CollaborativeFeed: an echo for no update".to_owned());
        }
        stream.finish().await?;
    }
    Latency::from_histogram(&histogram).ok_or_else(|| "no round trip was measured".to_owned())
}
