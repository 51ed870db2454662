//! Connecting to a server: the target, a deadline for each call, TLS (and
//! mutual TLS), and the keepalive that notices a vanished server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{CallOption, ChannelBuilder, EnvBuilder};

use super::error::ClientError;
use crate::compression::Compression;
use crate::rpc::messenger::LearningMessengerClient;
use crate::server::TlsIdentity;
use crate::transport::{KEEPALIVE_TIME, KEEPALIVE_TIMEOUT};

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
    /// With `tls_ca`: the certificate and key this client presents (mutual TLS).
    pub tls_identity: Option<TlsIdentity>,
    /// What this client's requests are compressed with.
    pub compression: Compression,
}

impl ConnectOptions {
    pub fn new(target: impl Into<String>) -> Self {
        ConnectOptions {
            target: target.into(),
            timeout: None,
            tls_ca: None,
            tls_server_name: None,
            tls_identity: None,
            compression: Compression::None,
        }
    }
}

/// Opens a channel to `options.target` (lazily: the first call connects).
pub fn connect(options: &ConnectOptions) -> Result<LearningMessengerClient, ClientError> {
    let env = Arc::new(
        EnvBuilder::new()
            .cq_count(1)
            .name_prefix("grpc-client")
            .build(),
    );
    let mut builder = ChannelBuilder::new(env)
        .keepalive_time(KEEPALIVE_TIME)
        .keepalive_timeout(KEEPALIVE_TIMEOUT)
        // C-core otherwise stops pinging after two pings on a call that sends no
        // data (a long Watch or StreamLearnings), and a vanished server goes unseen.
        .http2_max_pings_without_data(0);
    builder = options.compression.for_requests(builder);
    if let Some(ca) = &options.tls_ca {
        let credentials = crate::tls::client_credentials(ca, options.tls_identity.as_ref())
            .map_err(ClientError::Setup)?;
        builder = builder.set_credentials(credentials);
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
