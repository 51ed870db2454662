//! gRPC-Web over a WebSocket, as improbable-eng's grpc-web speaks it
//! (`grpcwebproxy --use_websockets`, the `WebsocketTransport` of
//! `@improbable-eng/grpc-web`), for the calls whose requests stream: a
//! browser's `fetch` cannot send a request body as it goes, a WebSocket can.
//!
//! One socket is one call, `GET /package.Service/Method` upgraded with the
//! subprotocol `grpc-websockets`:
//! - the client's first message is its request headers, as HTTP/1 header
//!   lines (`name: value\r\n`): the call's metadata (`authorization`,
//!   `room`, `user`, `room-since`, `grpc-timeout`), since a browser cannot
//!   set headers on a WebSocket;
//! - then each of its messages is one byte of type, 0, then gRPC-Web frames
//!   (flag, 4-byte length, message); the single byte 1 half-closes its side;
//! - the gateway answers with gRPC-Web frames: a header frame (flag 0x80,
//!   the response headers as header lines), the messages, a trailer frame
//!   (flag 0x80, `grpc-status`, `grpc-message`), then a normal close.
//!
//! Each socket is one call upstream on the gateway's HTTP/2 client
//! ([`Proxy`]); the client closing its socket before the trailers cancels
//! it (the upstream stream is reset with CANCEL). Bytes in flight are
//! bounded both ways: a client message waits in a queue of one until the
//! upstream takes it (HTTP/2 flow control), and an answer's next chunk is
//! read from the upstream only once the last was written to the socket, so
//! a page that stops reading stalls its call upstream (where the server's
//! room rules, `--room-lag-ms`, deal with it) instead of filling the gateway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use log::debug;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tonic::Status;
use tower_service::Service;

use crate::grpc_frame::{self, FrameError, FrameReader};
use crate::origin::Origins;
use crate::page::plain;
use crate::upstream::Proxy;

/// The subprotocol of improbable-eng's WebSocket transport.
pub const SUBPROTOCOL: &str = "grpc-websockets";

/// A client message's first byte: what follows is gRPC-Web frames.
const DATA: u8 = 0;
/// A client message of this single byte: the client has sent all it will.
const HALF_CLOSE: u8 = 1;

/// How long a new socket may take to send its request headers.
const HEADERS_WAIT: Duration = Duration::from_secs(10);

/// How long one write to the socket may take: a page that reads nothing for
/// this long has its call ended (its call upstream was already held back by
/// flow control; the server's room rules act sooner).
const WRITE_STALL: Duration = Duration::from_secs(30);

/// After the trailers and the close, how long the client may take to answer
/// the close before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The request headers' size limit, as HTTP servers' (16 KiB is nginx's default buffer).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Whether `request` asks for a gRPC-Web WebSocket (an upgrade offering
/// [`SUBPROTOCOL`]); any other upgrade is refused.
pub fn is_upgrade(request: &Request<Incoming>) -> bool {
    request.method() == Method::GET
        && request
            .headers()
            .get(header::UPGRADE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn offers_subprotocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

/// What every socket of one gateway shares.
#[derive(Clone)]
pub struct Sockets {
    proxy: Proxy,
    origins: Arc<Origins>,
    max_message_bytes: usize,
    open: OpenSockets,
}

/// The gateway's open sockets: an upgraded connection leaves hyper's
/// graceful shutdown, so the gateway tracks them itself, and on a stop
/// ends each call still open with UNAVAILABLE, trailers and a close,
/// rather than dropping its connection.
#[derive(Clone, Default)]
pub struct OpenSockets {
    tasks: TaskTracker,
    stopping: CancellationToken,
}

impl OpenSockets {
    /// Waits until every socket has closed.
    pub async fn all_closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Ends every call still open with UNAVAILABLE, and waits for their
    /// sockets to close (each client has CLOSE_WAIT to answer the close).
    pub async fn stop(&self) {
        self.stopping.cancel();
        let wait = 2 * CLOSE_WAIT;
        if tokio::time::timeout(wait, self.all_closed()).await.is_err() {
            debug!("stopping: WebSockets still open after {wait:?} are dropped");
        }
    }
}

impl Sockets {
    /// `proxy` carries every pattern; `origins` decides who may open a
    /// socket; `open` tracks them, for the gateway's stop.
    pub fn new(
        proxy: Proxy,
        origins: Arc<Origins>,
        max_message_bytes: usize,
        open: OpenSockets,
    ) -> Sockets {
        Sockets {
            proxy,
            origins,
            max_message_bytes,
            open,
        }
    }

    /// Answers an upgrade request: 101 and the call on its own task, or a
    /// refusal (403 for a foreign origin, cross-site WebSocket hijacking;
    /// 400 for a malformed handshake or another subprotocol).
    pub fn accept(&self, mut request: Request<Incoming>) -> Response<Body> {
        if let Err(refusal) = self.origins.check_upgrade(request.headers()) {
            debug!("WebSocket {}: {refusal}", request.uri().path());
            return plain(StatusCode::FORBIDDEN, refusal + "\n");
        }
        let headers = request.headers();
        if !offers_subprotocol(headers) {
            return plain(
                StatusCode::BAD_REQUEST,
                format!(
                    "this gateway's WebSockets speak gRPC-Web: offer the subprotocol {SUBPROTOCOL}\n"
                ),
            );
        }
        let version_13 = headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|version| version == "13");
        let Some(key) = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|_| version_13)
        else {
            return plain(
                StatusCode::BAD_REQUEST,
                "not a WebSocket handshake (Sec-WebSocket-Key and Sec-WebSocket-Version: 13)\n",
            );
        };
        let accept_key = derive_accept_key(key.as_bytes());
        let path = request.uri().path().to_owned();
        let upgrade = hyper::upgrade::on(&mut request);
        let sockets = self.clone();
        self.open.tasks.spawn(async move {
            match upgrade.await {
                Ok(upgraded) => sockets.serve(upgraded, path).await,
                Err(e) => debug!("WebSocket {path}: the upgrade failed: {e}"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Ok(accept_key) = HeaderValue::from_str(&accept_key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key);
        }
        response
    }

    fn config(&self) -> WebSocketConfig {
        // One client message: its type byte, a frame's 5-byte prefix and
        // the largest message allowed; a bigger one is refused by tungstenite
        // before it is buffered.
        let max_message = self
            .max_message_bytes
            .saturating_add(1 + grpc_frame::PREFIX_BYTES);
        WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message))
            // Each answer chunk is flushed before the next is read, so the
            // write buffer holds at most one chunk.
            .write_buffer_size(0)
    }

    /// One call over an upgraded connection, until its trailers are sent or
    /// either side ends it.
    async fn serve(self, upgraded: Upgraded, path: String) {
        let socket = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(self.config()),
        )
        .await;
        let (sink, mut stream) = socket.split();
        let mut writer = Writer::new(sink);
        let stopping = self.open.stopping.clone();
        let ending = tokio::select! {
            ending = self.run(&path, &mut stream, &mut writer) => ending,
            () = stopping.cancelled() => Ending::Fail(Status::unavailable(
                "the gateway is stopping: call again (another replica, or this one once it is back)",
            )),
        };
        match ending {
            Ending::Done => debug!("WebSocket {path}: the call ended"),
            Ending::Gone => {
                debug!("WebSocket {path}: the client went away; the call is cancelled");
                return;
            }
            Ending::Fail(status) => {
                debug!(
                    "WebSocket {path}: {:?}: {}",
                    status.code(),
                    status.message()
                );
                if writer.status(&status).await.is_err() {
                    return;
                }
            }
        }
        // The trailers are out: close, and give the client a moment to answer.
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        if writer.send(close).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(message)) = stream.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
    }

    /// The request headers, then the call.
    async fn run(&self, path: &str, stream: &mut Incoming_, writer: &mut Writer) -> Ending {
        match tokio::time::timeout(HEADERS_WAIT, stream.next()).await {
            Err(_) => Ending::Fail(Status::deadline_exceeded(format!(
                "no request headers within {HEADERS_WAIT:?} of the WebSocket opening"
            ))),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => Ending::Gone,
            Ok(Some(Ok(first))) => match request_headers(&first) {
                Ok(headers) => self.call(path, headers, stream, writer).await,
                Err(status) => Ending::Fail(status),
            },
        }
    }

    /// The call upstream, fed from the socket while its answer is relayed.
    async fn call(
        &self,
        path: &str,
        headers: HeaderMap,
        stream: &mut Incoming_,
        writer: &mut Writer,
    ) -> Ending {
        let (sender, receiver) = mpsc::channel(1);
        let mut request = Request::new(Body::new(ClientMessages {
            receiver,
            ended: false,
        }));
        *request.method_mut() = Method::POST;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = match Uri::builder().path_and_query(path).build() {
            Ok(uri) => uri,
            Err(_) => {
                return Ending::Fail(Status::invalid_argument(format!(
                    "'{path}' is not a method's path"
                )))
            }
        };
        *request.headers_mut() = upstream_headers(headers);
        let answer = self.proxy.clone().call(request);
        let mut inbound = std::pin::pin!(inbound(stream, sender, self.max_message_bytes));
        let mut relayed = std::pin::pin!(relay(answer, writer));
        tokio::select! {
            ending = &mut inbound => ending,
            relayed = &mut relayed => match relayed {
                Ok(()) => Ending::Done,
                Err(Gone) => Ending::Gone,
            },
        }
    }
}

/// How a call over a socket ended.
enum Ending {
    /// Its trailers were sent.
    Done,
    /// The client closed the socket, or it broke: nothing more to send.
    Gone,
    /// The gateway ends the call with this status.
    Fail(Status),
}

/// The socket is closed, broken, or has not been read for [`WRITE_STALL`].
struct Gone;

type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Incoming_ = futures::stream::SplitStream<Socket>;
type Outgoing = futures::stream::SplitSink<Socket, Message>;

/// The client's messages, read as the upstream takes them: each data
/// message's frames go on (after a check of their sizes), a half-close
/// ends the request; after it, the socket is read only for its close.
/// Ends when the socket closes, or with the status for a client that broke
/// the protocol or sent a message over the limit.
async fn inbound(
    stream: &mut Incoming_,
    sender: mpsc::Sender<Inbound>,
    max_message_bytes: usize,
) -> Ending {
    let mut frames = FrameReader::new(max_message_bytes);
    let mut sender = Some(sender);
    loop {
        let bytes = match stream.next().await {
            None | Some(Ok(Message::Close(_))) => return Ending::Gone,
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Text(_))) => {
                return Ending::Fail(Status::invalid_argument(
                    "gRPC-Web over WebSocket takes binary messages only",
                ))
            }
            Some(Ok(_)) => continue, // ping, pong: tungstenite answers pings itself
            Some(Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong {
                size, ..
            }))) => {
                // Less its type byte and its frame's prefix.
                let length = size.saturating_sub(1 + grpc_frame::PREFIX_BYTES);
                return Ending::Fail(too_large(length as u64, max_message_bytes));
            }
            Some(Err(tungstenite::Error::Capacity(e))) => {
                return Ending::Fail(Status::resource_exhausted(format!("{e}")))
            }
            Some(Err(e)) => {
                debug!("WebSocket read: {e}");
                return Ending::Gone;
            }
        };
        match (bytes.first(), bytes.len()) {
            (Some(&DATA), _) => {
                let Some(open) = sender.as_ref() else {
                    return Ending::Fail(Status::invalid_argument(
                        "a message after the client half-closed the call",
                    ));
                };
                match frames.follow(&bytes[1..]) {
                    Ok(()) => {}
                    Err(FrameError::TooLarge(length)) => {
                        return Ending::Fail(too_large(length, max_message_bytes))
                    }
                    Err(FrameError::BadFlag(flag)) => {
                        return Ending::Fail(Status::invalid_argument(format!(
                            "a gRPC-Web frame with flag {flag:#04x}: a client sends messages only (flag 0, or 1 compressed)"
                        )))
                    }
                }
                // A closed queue: the call upstream has ended, its status is on its way.
                if bytes.len() > 1 && open.send(Inbound::Data(bytes.slice(1..))).await.is_err() {
                    sender = None;
                }
            }
            (Some(&HALF_CLOSE), 1) => {
                if !frames.at_boundary() {
                    return Ending::Fail(Status::invalid_argument(
                        "the client half-closed the call in the middle of a message",
                    ));
                }
                if let Some(open) = sender.take() {
                    let _ = open.send(Inbound::End).await;
                }
            }
            _ => {
                return Ending::Fail(Status::invalid_argument(
                    "a WebSocket message that is neither data (first byte 0) nor a half-close (the single byte 1)",
                ))
            }
        }
    }
}

/// RESOURCE_EXHAUSTED for a client message of `length` bytes, as the server words its own.
fn too_large(length: u64, max_message_bytes: usize) -> Status {
    Status::resource_exhausted(format!(
        "a message of {length} bytes is larger than the gateway's limit of {max_message_bytes} \
         (--max-message-bytes); it was not sent on"
    ))
}

/// The upstream's answer, to the socket: its headers as a header frame, its
/// messages as they come, each written before the next is read, and its
/// trailers as a trailer frame.
async fn relay(
    answer: impl Future<Output = Result<Response<Body>, std::convert::Infallible>>,
    writer: &mut Writer,
) -> Result<(), Gone> {
    let Ok(answer) = answer.await;
    let (parts, mut body) = answer.into_parts();
    writer.headers(&parts.headers).await?;
    if parts.headers.contains_key("grpc-status") {
        // Trailers-only: the status came in the headers.
        return Ok(());
    }
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(status) => return writer.status(&status).await,
        };
        match frame.into_data() {
            Ok(data) => writer.data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return writer.trailers(&trailers).await;
                }
            }
        }
    }
    let status = Status::internal("the upstream ended the call without a status");
    writer.status(&status).await
}

/// The socket's sending side, and how far the answer has come.
struct Writer {
    sink: Outgoing,
    headers_sent: bool,
    /// Where the relayed messages stand, so that a status never lands inside one.
    frames: FrameReader,
}

impl Writer {
    fn new(sink: Outgoing) -> Writer {
        Writer {
            sink,
            headers_sent: false,
            frames: FrameReader::new(usize::MAX),
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), Gone> {
        match tokio::time::timeout(WRITE_STALL, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!("WebSocket write: {e}");
                Err(Gone)
            }
            Err(_) => {
                debug!("WebSocket write: not read for {WRITE_STALL:?}; the call is ended");
                Err(Gone)
            }
        }
    }

    async fn headers(&mut self, headers: &HeaderMap) -> Result<(), Gone> {
        let mut headers = headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web+proto"),
        );
        self.headers_sent = true;
        self.send(Message::Binary(header_frame(&headers))).await
    }

    async fn data(&mut self, data: Bytes) -> Result<(), Gone> {
        // The upstream's frames are gRPC's, which are gRPC-Web's.
        let _ = self.frames.follow(&data);
        self.send(Message::Binary(data)).await
    }

    async fn trailers(&mut self, trailers: &HeaderMap) -> Result<(), Gone> {
        self.send(Message::Binary(header_frame(trailers))).await
    }

    /// Ends the call with `status`: in the headers if none were sent
    /// (trailers-only), else as the trailers, or, in the middle of a
    /// message, as the reason of an abnormal close.
    async fn status(&mut self, status: &Status) -> Result<(), Gone> {
        let mut trailers = HeaderMap::new();
        // Only details or metadata that are not valid headers fail; ours have none.
        let _ = Status::new(status.code(), status.message()).add_header(&mut trailers);
        if !self.headers_sent {
            return self.headers(&trailers).await;
        }
        if self.frames.at_boundary() {
            return self.trailers(&trailers).await;
        }
        let mut reason = format!("{:?}: {}", status.code(), status.message());
        reason.truncate(120); // a close frame's reason is at most 123 bytes
        let _ = self
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Error,
                reason: reason.into(),
            })))
            .await;
        Err(Gone)
    }
}

/// A gRPC-Web header or trailer frame: flag 0x80, the length, then the
/// headers as `name: value\r\n` lines.
fn header_frame(headers: &HeaderMap) -> Bytes {
    let mut block = BytesMut::new();
    for (name, value) in headers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(grpc_frame::PREFIX_BYTES + block.len());
    frame.put_u8(0x80);
    frame.put_u32(u32::try_from(block.len()).unwrap_or(u32::MAX));
    frame.put_slice(&block);
    frame.freeze()
}

/// The request headers of the first message: `name: value` lines, names
/// lowercased, a name given twice keeping both values.
fn request_headers(first: &Message) -> Result<HeaderMap, Status> {
    let Message::Binary(bytes) = first else {
        return Err(Status::invalid_argument(
            "the first WebSocket message must be the request headers, as a binary message",
        ));
    };
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(Status::resource_exhausted(format!(
            "request headers of {} bytes; at most {MAX_HEADER_BYTES}",
            bytes.len()
        )));
    }
    let mut headers = HeaderMap::new();
    for line in bytes.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = || {
            Status::invalid_argument(format!(
                "not a request header line (name: value): '{}'",
                String::from_utf8_lossy(line)
            ))
        };
        let colon = line.iter().position(|&byte| byte == b':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(line[..colon].trim_ascii()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).map_err(|_| bad())?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// What the client's headers become upstream: gRPC's content type and
/// `te: trailers` in place of gRPC-Web's; the metadata as it came.
fn upstream_headers(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::CONTENT_LENGTH,
        header::ACCEPT,
        HeaderName::from_static("x-grpc-web"),
    ] {
        headers.remove(name);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers
}

/// What the socket gives the call upstream.
enum Inbound {
    /// gRPC frames (or part of them).
    Data(Bytes),
    /// The client half-closed.
    End,
}

/// The request body upstream: the client's frames as they come. If the
/// socket goes before a half-close, the body fails with CANCEL, which hyper
/// sends upstream as RST_STREAM(CANCEL): the call is cancelled, not ended.
struct ClientMessages {
    receiver: mpsc::Receiver<Inbound>,
    ended: bool,
}

impl http_body::Body for ClientMessages {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.receiver.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Inbound::Data(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Poll::Ready(Some(Inbound::End)) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(h2::Reason::CANCEL.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn request_headers_are_header_lines() {
        let first = Message::Binary(Bytes::from_static(
            b"content-type: application/grpc-web+proto\r\nRoom: lab\r\nuser:  ada \r\nx-a: 1, 2\r\n",
        ));
        let headers = request_headers(&first).unwrap();
        assert_eq!(headers["room"], "lab");
        assert_eq!(headers["user"], "ada");
        assert_eq!(headers["x-a"], "1, 2");
        let upstream = upstream_headers(headers);
        assert_eq!(upstream[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(upstream[header::TE], "trailers");
        for bad in [&b"no colon\r\n"[..], b"bad name: x\r\n", b"x: \x01\r\n"] {
            let status =
                request_headers(&Message::Binary(Bytes::copy_from_slice(bad))).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        }
        let text = request_headers(&Message::text("room: lab")).unwrap_err();
        assert!(text.message().contains("binary"), "{}", text.message());
    }

    #[test]
    fn header_frames_are_flagged_header_lines() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static(""));
        let frame = header_frame(&trailers);
        assert_eq!(&frame[..5], &[0x80, 0, 0, 0, 32]);
        assert_eq!(&frame[5..], b"grpc-status: 0\r\ngrpc-message: \r\n");
    }
}
