//! The client side: connecting to a server, reporting failures in one line,
//! and the demos and commands the `client` binary runs.

pub mod demo;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{Sink, SinkExt};
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
        .keepalive_timeout(KEEPALIVE_TIMEOUT);
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

    /// One line for the user: the target, the status code and its message.
    pub fn report(&self, target: &str) -> String {
        format!("error: {target}: {self}")
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
            ClientError::Setup(message) => write!(f, "{message}"),
        }
    }
}

/// Waits `delay` (no timer at all for zero).
pub async fn pause(delay: Duration) {
    if !delay.is_zero() {
        Delay::new(delay).await;
    }
}

/// Sends each item after a pause of `delay`, one write in flight at a time,
/// then half-closes the stream.
pub async fn send_paced<T, S, I>(sink: &mut S, items: I, delay: Duration) -> grpcio::Result<()>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
    I: IntoIterator<Item = T>,
{
    for item in items {
        pause(delay).await;
        sink.send((item, WriteFlags::default())).await?;
    }
    sink.close().await
}
