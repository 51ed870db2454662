//! The gateway: an HTTP server (HTTP/1.1, as browsers speak to a plain
//! `http://` address, and HTTP/2) on a tokio runtime of its own. A request
//! that names it by a name it does not answer to gets 403 ([`AllowedHosts`]);
//! a WebSocket upgrade carries one call ([`websocket`]); GET and HEAD get
//! the page; gRPC-Web calls go through CORS, tonic-web's
//! translation and the connection's [`Proxy`] to the upstream; anything
//! else gets 415.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use log::debug;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower_http::cors::{Cors, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::hosts::AllowedHosts;
use crate::origin::Origins;
use crate::upstream::{self, Proxy, Upstream};
use crate::websocket::{self, OpenSockets, Sockets};
use crate::{cors, page};

/// Worker threads of the gateway's runtime: it only moves bytes.
const WORKER_THREADS: usize = 2;

/// On a stop, how long calls in flight may take to relay the rest of their
/// answers before their connections are closed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the gateway serves.
#[derive(Clone, Debug, Default)]
pub struct GatewayOptions {
    /// The gRPC server, `HOST:PORT` (plaintext HTTP/2).
    pub upstream: String,
    /// Other origins whose pages may call (CORS), `scheme://host[:port]` or
    /// `*`; the gateway's own page needs none.
    pub allowed_origins: Vec<String>,
    /// Names the gateway answers to besides IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// The largest message a WebSocket's client may send: larger ones are
    /// refused with RESOURCE_EXHAUSTED before they are sent on (gRPC-Web
    /// over fetch leaves the check to the upstream, which gets the bytes).
    pub max_message_bytes: usize,
}

/// gRPC's default message limit, as the server's `--max-message-bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl GatewayOptions {
    /// Checks the upstream's and the origins' form, without connecting.
    pub fn check(&self) -> Result<(), String> {
        upstream::check_target(&self.upstream).map_err(|e| format!("upstream: {e}"))?;
        cors::check_origins(&self.allowed_origins).map_err(|e| format!("allowed origin: {e}"))?;
        AllowedHosts::new(&self.allowed_hosts).map_err(|e| format!("allowed host: {e}"))?;
        if self.max_message_bytes == 0 {
            return Err("the message limit must be at least 1 byte".into());
        }
        Ok(())
    }
}

/// A running gateway; stopped by [`Gateway::stop`] or on drop.
pub struct Gateway {
    runtime: Option<Runtime>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// The accept loop, which ends once the connections have closed.
    served: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Listens on `listen` (`HOST:PORT`, port 0 for any free one) and serves
    /// until stopped, or says in one line why it cannot.
    pub fn start(listen: &str, options: &GatewayOptions) -> Result<Gateway, String> {
        options.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("webgate")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gateway's runtime: {e}"))?;
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let shared = Arc::new(Shared::new(options)?);
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?
        };
        let (stop, stopped) = oneshot::channel();
        let served = runtime.spawn(serve(listener, shared, stopped));
        Ok(Gateway {
            runtime: Some(runtime),
            local_addr,
            stop: Some(stop),
            served: Some(served),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Where a browser opens the page: the address bound, `localhost` for a wildcard.
    pub fn page_url(&self) -> String {
        if self.local_addr.ip().is_unspecified() {
            format!("http://localhost:{}/", self.port())
        } else {
            format!("http://{}/", self.local_addr)
        }
    }

    /// Stops listening, lets the calls in flight finish for up to
    /// [`STOP_GRACE`], then ends the rest (their upstream streams are reset).
    /// Blocks the calling thread, which must not be a tokio runtime's.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            if let Some(served) = self.served.take() {
                let _ = runtime.block_on(served);
            }
            runtime.shutdown_background();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Accepts connections until `stopped`, each served on its own task; then
/// waits for them to close, each after its last answer, for [`STOP_GRACE`].
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let connections = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    debug!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(Router::new(&shared));
        let connection = connections
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    // Upgraded connections (WebSockets) are out of hyper's graceful
    // shutdown: their calls get the same grace, then UNAVAILABLE.
    let settled = async { tokio::join!(graceful.shutdown(), shared.sockets.all_closed()) };
    if tokio::time::timeout(STOP_GRACE, settled).await.is_err() {
        debug!("stopping: calls still in flight after {STOP_GRACE:?} are ended");
    }
    shared.sockets.stop().await;
}

/// The gRPC-Web stack: CORS outside, tonic-web's translation, the proxy inside.
type GrpcWeb = Cors<GrpcWebService<Proxy>>;

/// What every connection's [`Router`] shares.
struct Shared {
    cors: CorsLayer,
    upstream: Arc<Upstream>,
    /// The upstream's `HOST:PORT`, for the page.
    target: String,
    hosts: AllowedHosts,
    /// Who may open a WebSocket.
    origins: Arc<Origins>,
    max_message_bytes: usize,
    sockets: OpenSockets,
}

impl Shared {
    fn new(options: &GatewayOptions) -> Result<Shared, String> {
        Ok(Shared {
            cors: cors::layer(&options.allowed_origins)?,
            upstream: Upstream::new(&options.upstream)?,
            target: options.upstream.clone(),
            hosts: AllowedHosts::new(&options.allowed_hosts)?,
            origins: Arc::new(Origins::new(&options.allowed_origins)?),
            max_message_bytes: options.max_message_bytes,
            sockets: OpenSockets::default(),
        })
    }
}

/// One browser connection's service: it routes each request to a
/// WebSocket, the page, a gRPC-Web call (on the connection's own upstream
/// connection, the WebSocket's too), or 415.
#[derive(Clone)]
struct Router {
    shared: Arc<Shared>,
    grpc_web: GrpcWeb,
    sockets: Sockets,
}

impl Router {
    fn new(shared: &Arc<Shared>) -> Router {
        let proxy = shared.upstream.proxy();
        let sockets = Sockets::new(
            proxy.carrying_streamed_requests(),
            shared.origins.clone(),
            shared.max_message_bytes,
            shared.sockets.clone(),
        );
        Router {
            grpc_web: shared.cors.clone().layer(GrpcWebLayer::new().layer(proxy)),
            shared: shared.clone(),
            sockets,
        }
    }
}

/// gRPC-Web's content types: `application/grpc-web[-text][+proto]`.
fn is_grpc_web(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc-web"))
}

impl Service<Request<Incoming>> for Router {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        if !self.shared.hosts.allows(&request) {
            return Box::pin(async move { Ok(page::foreign_host()) });
        }
        if websocket::is_upgrade(&request) {
            let response = self.sockets.accept(request);
            return Box::pin(async move { Ok(response) });
        }
        let method = request.method().clone();
        if method == Method::GET || method == Method::HEAD {
            let response = page::respond(&method, request.uri().path(), &self.shared.target);
            return Box::pin(async move { Ok(response) });
        }
        // OPTIONS: a CORS preflight, which the CORS layer answers.
        if method == Method::OPTIONS || is_grpc_web(&request) {
            let mut grpc_web = self.grpc_web.clone();
            return Box::pin(async move { grpc_web.call(request).await });
        }
        Box::pin(async move { Ok(page::not_grpc_web()) })
    }
}
