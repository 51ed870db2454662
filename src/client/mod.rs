//! The client side: connecting to a server, reporting failures in one line,
//! and the demos and commands the `client` binary runs.
//!
//! - [`calls`]: one function per RPC, printing what comes back.
//! - [`demo`]: the seed's four demos, built on those calls.
//! - [`commands`]: the `client` commands, Ctrl-C and exit codes.
//! - [`input`]: lines of a file or of standard input, read on a thread of their own.
//! - [`output`]: the seed's lines (coloured on a terminal) or JSON.

pub mod calls;
pub mod commands;
pub mod demo;
pub mod input;
pub mod output;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt};
use futures::{Sink, SinkExt, Stream, StreamExt};
use futures_timer::Delay;
use grpcio::{CallOption, ChannelBuilder, ChannelCredentialsBuilder, EnvBuilder, RpcStatusCode, WriteFlags};

use crate::rpc::messenger::LearningMessengerClient;
use crate::server::{KEEPALIVE_TIME, KEEPALIVE_TIMEOUT};

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `HOST:PORT` of the server.
    pub target: String,
    /// A deadline for each call.
    pub timeout: Option<Duration>,
    /// Use TLS, trusting this CA certificate (PEM).
    pub tls_ca: Option<PathBuf>,
    /// The name expected in the server's certificate, if not the target's host.
    pub tls_server_name: Option<String>,
}

impl ConnectOptions {
    pub fn new(target: impl Into<String>) -> Self {
        ConnectOptions { target: target.into(), timeout: None, tls_ca: None, tls_server_name: None }
    }
}

/// Opens a channel to `options.target` (lazily: the first call connects).
pub fn connect(options: &ConnectOptions) -> Result<LearningMessengerClient, ClientError> {
    let env = Arc::new(EnvBuilder::new().cq_count(1).name_prefix("grpc-client").build());
    let mut builder = ChannelBuilder::new(env)
        .keepalive_time(KEEPALIVE_TIME)
        .keepalive_timeout(KEEPALIVE_TIMEOUT)
        // C-core otherwise stops pinging after two pings on a call that sends no
        // data (a long Watch or StreamLearnings), and a vanished server goes unseen.
        .http2_max_pings_without_data(0);
    if let Some(ca) = &options.tls_ca {
        let pem = std::fs::read(ca)
            .map_err(|e| ClientError::Setup(format!("cannot read TLS CA certificate {}: {e}", ca.display())))?;
        builder = builder.set_credentials(ChannelCredentialsBuilder::new().root_cert(pem).build());
        if let Some(name) = &options.tls_server_name {
            builder = builder.override_ssl_target(name.clone());
        }
    }
    let mut call_options = CallOption::default();
    if let Some(timeout) = options.timeout {
        call_options = call_options.timeout(timeout);
    }
    Ok(LearningMessengerClient::new(builder.connect(&options.target)).with_options(call_options))
}

/// Why a client command failed.
#[derive(Debug)]
pub enum ClientError {
    /// The call failed with this gRPC status (or the channel failed).
    Rpc(grpcio::Error),
    /// Reading input or writing output failed.
    Io(std::io::Error),
    /// Bad local set-up: unreadable file, bad option value.
    Setup(String),
    /// The input to send is unreadable: where, and why.
    Input(String),
    /// Ctrl-C (or SIGTERM) ended the command; its calls were cancelled.
    Interrupted,
}

/// The client's exit codes (clap's usage errors exit with [`exit::USAGE`]).
pub mod exit {
    /// A call failed: the server answered with an error status, was unreachable, or the deadline passed.
    pub const CALL_FAILED: u8 = 1;
    /// A bad flag or argument.
    pub const USAGE: u8 = 2;
    /// A local problem: an unreadable input or certificate file, or output that cannot be written.
    pub const LOCAL: u8 = 3;
    /// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

impl From<grpcio::Error> for ClientError {
    fn from(e: grpcio::Error) -> Self {
        ClientError::Rpc(e)
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The name of a status code as gRPC spells it, e.g. `UNAVAILABLE`.
pub fn code_name(code: RpcStatusCode) -> String {
    // grpcio's Debug form is "14-UNAVAILABLE".
    let debug = format!("{code:?}");
    debug.split_once('-').map_or(debug.clone(), |(_, name)| name.to_owned())
}

impl ClientError {
    /// The status code of a failed call, if it was one.
    pub fn code(&self) -> Option<RpcStatusCode> {
        match self {
            ClientError::Rpc(grpcio::Error::RpcFailure(status)) => Some(status.code()),
            ClientError::Rpc(grpcio::Error::RpcFinished(Some(status))) => Some(status.code()),
            _ => None,
        }
    }

    /// One line for the user: for a failed call the target, the status code
    /// and its message; for a local problem, what and where.
    pub fn report(&self, target: &str) -> String {
        match self {
            ClientError::Rpc(_) | ClientError::Interrupted => format!("error: {target}: {self}"),
            ClientError::Io(_) => format!("error: cannot write the output: {self}"),
            ClientError::Setup(_) | ClientError::Input(_) => format!("error: {self}"),
        }
    }

    /// The process exit code for this failure, one of [`exit`].
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Rpc(_) => exit::CALL_FAILED,
            ClientError::Interrupted => exit::INTERRUPTED,
            ClientError::Io(_) | ClientError::Setup(_) | ClientError::Input(_) => exit::LOCAL,
        }
    }

    /// Whether our output was closed by its reader (e.g. `client learn | head -1`):
    /// the reader chose to stop, so the client stops quietly.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, ClientError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Rpc(grpcio::Error::RpcFailure(status) | grpcio::Error::RpcFinished(Some(status))) => {
                let message = status.message().replace('\n', " ");
                if message.is_empty() {
                    write!(f, "{}", code_name(status.code()))
                } else {
                    write!(f, "{}: {message}", code_name(status.code()))
                }
            }
            ClientError::Rpc(e) => write!(f, "{e}"),
            ClientError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => write!(f, "output closed"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Setup(message) | ClientError::Input(message) => write!(f, "{message}"),
            ClientError::Interrupted => write!(f, "CANCELLED: interrupted"),
        }
    }
}

/// Waits `delay` (no timer at all for zero).
pub async fn pause(delay: Duration) {
    if !delay.is_zero() {
        Delay::new(delay).await;
    }
}

/// Sends each item of `items` after a pause of `delay`, then half-closes the
/// stream. One write is in flight at a time, so HTTP/2 flow control paces the
/// source; items that are ready together go out in one batch (the sink should
/// have `enhance_batch` on), and what is buffered is flushed before waiting.
pub async fn send_paced<T, S, I>(sink: &mut S, items: I, delay: Duration) -> Result<(), ClientError>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
    I: Stream<Item = Result<T, ClientError>>,
{
    futures::pin_mut!(items);
    loop {
        let next = match items.next().now_or_never() {
            Some(next) => next,
            None => {
                sink.flush().await?;
                items.next().await
            }
        };
        let Some(item) = next else { break };
        let item = item?;
        if !delay.is_zero() {
            sink.flush().await?;
            pause(delay).await;
        }
        sink.feed((item, WriteFlags::default())).await?;
    }
    sink.flush().await?;
    sink.close().await?;
    Ok(())
}

/// Runs [`send_paced`] on the channel's completion-queue thread, where each
/// write's completion resumes the sending at once, without a hop to another
/// thread (several times faster for a long stream). It never blocks that
/// thread: items come from memory or a channel, pauses are timers. The
/// returned future resolves with the outcome.
pub fn spawn_sender<T, S, I>(
    client: &LearningMessengerClient,
    mut sink: S,
    items: I,
    delay: Duration,
) -> impl Future<Output = Result<(), ClientError>>
where
    T: Send + 'static,
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin + Send + 'static,
    I: Stream<Item = Result<T, ClientError>> + Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel();
    client.spawn(async move {
        let _ = done_tx.send(send_paced(&mut sink, items, delay).await);
    });
    // Dropped unfinished (the queue shut down): the call is over, and its status says why.
    done_rx.map(|done| done.unwrap_or(Err(ClientError::Rpc(grpcio::Error::RpcFinished(None)))))
}

/// Runs the two halves of a streaming call together: `send` writes the
/// outgoing messages, `receive` reads what comes back. A failed write means
/// the call has ended, and `receive` then reports the status that says why. A
/// local failure (unreadable input) ends the call at once: dropping the
/// receiving half cancels it.
pub async fn send_and_receive<R>(
    send: impl Future<Output = Result<(), ClientError>>,
    receive: impl Future<Output = Result<R, ClientError>>,
) -> Result<R, ClientError> {
    futures::pin_mut!(send, receive);
    match future::select(send, receive).await {
        Either::Left((Ok(()), receive)) => receive.await,
        // A write refused because the call is over: its outcome is the status
        // the receiving half reads.
        Either::Left((Err(ClientError::Rpc(e)), receive)) if crate::rpc::call_already_over(&e) => receive.await,
        Either::Left((Err(failed), _)) => Err(failed),
        // The server ended the call before we finished sending.
        Either::Right((received, _)) => received,
    }
}
