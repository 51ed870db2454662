//! The call to the gRPC server: each gRPC request that tonic-web made of a
//! gRPC-Web one goes to the upstream over HTTP/2, and its answer comes back
//! as it streams. What the upstream cannot give becomes a status:
//! unreachable is UNAVAILABLE, a stream cut short is UNAVAILABLE in the
//! trailers. When the browser goes away, the answer is dropped, and with it
//! the upstream stream (hyper's h2 resets it with CANCEL), so the server's
//! handler is cancelled too.
//!
//! Each browser connection's calls go on an upstream connection of its own
//! ([`Upstream::proxy`]), opened at its first call and closed with it (or
//! after [`IDLE_UPSTREAM`] without a call). So the server's defences per
//! connection (the streams it may have open, the streams it may see reset
//! before their calls start, patch 0004's GOAWAY) weigh each browser
//! connection on its own, as if it had called directly: one that resets
//! streams in a loop is sent away alone, and every other browser's calls
//! go on.

use parking_lot::{Mutex, MutexGuard};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderMap, Request, Response, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use log::debug;
use tonic::body::Body;
use tonic::{Code, Status};
use tower_service::Service;

use crate::methods::Methods;

/// How long a connection to the upstream may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the rest of a refused or failed HTTP/1.1 request may take to
/// arrive before the answer goes out.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// How long a browser connection without a call in flight keeps its
/// upstream connection: browsers keep idle connections for minutes.
const IDLE_UPSTREAM: Duration = Duration::from_secs(30);

/// Headers of HTTP/1.1 that HTTP/2 forbids (RFC 9113 8.2.2); `host` becomes `:authority`.
const HOP_BY_HOP: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::HeaderName::from_static("keep-alive"),
    header::HeaderName::from_static("proxy-connection"),
];

/// The upstream gRPC server, `HOST:PORT`, reached over plaintext HTTP/2.
pub fn check_target(target: &str) -> Result<Authority, String> {
    let bad = || format!("'{target}' is not a gRPC server's HOST:PORT");
    let authority: Authority = target.parse().map_err(|_| bad())?;
    if authority.port_u16().is_none()
        || authority.host().is_empty()
        || authority.as_str().contains('@')
    {
        return Err(bad());
    }
    Ok(authority)
}

/// The upstream gRPC server, and each method's pattern.
pub struct Upstream {
    authority: Authority,
    methods: Methods,
}

impl Upstream {
    /// The upstream at `target` (`HOST:PORT`), not connected yet.
    pub fn new(target: &str) -> Result<Arc<Upstream>, String> {
        Ok(Arc::new(Upstream {
            authority: check_target(target)?,
            methods: Methods::known(),
        }))
    }

    /// The proxy for one browser connection: its calls, and only its, go
    /// on one HTTP/2 connection to the upstream, opened at the first call,
    /// opened again if the upstream closed it, and closed once the proxy
    /// (with every clone) is dropped or after [`IDLE_UPSTREAM`] unused.
    pub fn proxy(self: &Arc<Upstream>) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_UPSTREAM)
            .build(connector);
        Proxy {
            client,
            upstream: self.clone(),
            refuse_streamed_requests: true,
        }
    }
}

/// A tower service sending each gRPC call of one browser connection to the
/// upstream, refusing the methods gRPC-Web cannot carry first.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, SharedBody>,
    upstream: Arc<Upstream>,
    /// Whether calls whose requests stream are refused (gRPC-Web over
    /// fetch cannot carry them) or carried (over a WebSocket).
    refuse_streamed_requests: bool,
}

impl Proxy {
    /// The same proxy (the same upstream connection), carrying every
    /// pattern: for calls over a WebSocket, whose client messages stream.
    pub fn carrying_streamed_requests(&self) -> Proxy {
        Proxy {
            refuse_streamed_requests: false,
            ..self.clone()
        }
    }

    /// The request for the upstream: its URI, HTTP/2, no HTTP/1.1 connection
    /// headers; and its body, still ours to read if the call fails.
    fn upstream_request(
        &self,
        request: Request<Body>,
    ) -> Result<(Request<SharedBody>, SharedBody), Status> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.upstream.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| Status::internal(format!("cannot address the upstream: {e}")))?;
        parts.version = Version::HTTP_2;
        for name in &HOP_BY_HOP {
            parts.headers.remove(name);
        }
        let body = SharedBody::new(body);
        Ok((Request::from_parts(parts, body.clone()), body))
    }
}

impl Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let version = request.version();
        let (request, unread) = match self.upstream_request(request) {
            Ok(request) => request,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let refusal = self
            .upstream
            .methods
            .refusal(&path)
            .filter(|_| self.refuse_streamed_requests);
        let client = self.client.clone();
        let upstream = self.upstream.authority.to_string();
        Box::pin(async move {
            let status = match refusal {
                Some(refusal) => {
                    debug!("{path}: refused, its requests stream");
                    Status::unimplemented(refusal)
                }
                None => match client.request(request).await {
                    Ok(response) => {
                        debug!("{path}: upstream answered {}", response.status());
                        // A status in the headers ends the call, maybe before
                        // its request was read whole (the server refuses a
                        // message at its length prefix): over HTTP/1.1 the
                        // rest is read first, as for a failed call.
                        if version < Version::HTTP_2
                            && response.headers().contains_key("grpc-status")
                        {
                            unread.drain().await;
                        }
                        return Ok(answer(response));
                    }
                    Err(e) => {
                        debug!("{path}: upstream {upstream}: {e:?}");
                        let reason = if e.is_connect() {
                            "is unreachable"
                        } else {
                            "failed"
                        };
                        Status::unavailable(format!(
                            "upstream {upstream} {reason}: {}",
                            root_cause(&e)
                        ))
                    }
                },
            };
            // HTTP/1.1 cannot answer before the request is read: the
            // connection would close on a client still sending it.
            if version < Version::HTTP_2 {
                unread.drain().await;
            }
            Ok(status.into_http())
        })
    }
}

/// The upstream's answer, its body ending with a status whatever happens.
fn answer(response: Response<Incoming>) -> Response<Body> {
    let status_in_headers = response.headers().contains_key("grpc-status");
    response.map(|body| {
        Body::new(UpstreamBody {
            inner: body,
            ended: status_in_headers,
        })
    })
}

/// A request body shared between the upstream call and the gateway, so that
/// what a failed call left unread can still be read to its end.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Option<Body>>>);

impl SharedBody {
    fn new(body: Body) -> SharedBody {
        SharedBody(Arc::new(Mutex::new(Some(body))))
    }

    fn slot(&self) -> MutexGuard<'_, Option<Body>> {
        self.0.lock()
    }

    /// Reads what is left to its end, for at most [`DRAIN_LIMIT`].
    async fn drain(self) {
        let Some(mut body) = self.slot().take() else {
            return;
        };
        let _ = tokio::time::timeout(DRAIN_LIMIT, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.slot().as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.slot().as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.slot()
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |body| body.size_hint())
    }
}

/// The innermost error, which names what went wrong ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The upstream's answer body, ending with a status whatever happens: a
/// stream cut short (the upstream reset it or its connection died) ends
/// with UNAVAILABLE trailers, one that ended without any with INTERNAL, so
/// the browser gets a status rather than a broken response.
struct UpstreamBody {
    inner: Incoming,
    /// Trailers were sent (or the status came in the headers).
    ended: bool,
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.ended && self.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                if frame.is_trailers() {
                    self.ended = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) if !self.ended => {
                self.ended = true;
                let message = format!("the upstream stream broke off: {}", root_cause(&e));
                Poll::Ready(Some(Ok(Frame::trailers(status_trailers(
                    Code::Unavailable,
                    &message,
                )))))
            }
            None if !self.ended => {
                self.ended = true;
                let message = "the upstream ended the call without a status";
                Poll::Ready(Some(Ok(Frame::trailers(status_trailers(
                    Code::Internal,
                    message,
                )))))
            }
            Some(Err(_)) | None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// `grpc-status` and `grpc-message` as trailers.
fn status_trailers(code: Code, message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    // Only details or metadata that are not valid headers fail; ours have none.
    let _ = Status::new(code, message).add_header(&mut trailers);
    trailers
}
