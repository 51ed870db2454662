//! Connecting to a server: the target in gRPC's name syntax, how calls are
//! spread over its addresses and retried (the channel's service config), a
//! deadline for each call, TLS (and mutual TLS), and the keepalive that
//! notices a vanished server.

use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{CallOption, Channel, ChannelBuilder, ConnectivityState, EnvBuilder, MetadataBuilder};
use messenger_lab::method_path;
use serde_json::json;

use super::error::ClientError;
use super::target::check_target;
use super::token::{check_transport, BearerToken};
use crate::compression::Compression;
use crate::rpc::messenger::LearningMessengerClient;
use crate::tls::TlsIdentity;
use crate::transport::{KEEPALIVE_TIME, KEEPALIVE_TIMEOUT};

/// How a channel picks, among the target's addresses, where each call goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LbPolicy {
    /// The first address that connects takes every call (gRPC's default).
    #[default]
    PickFirst,
    /// Calls go to each ready address in turn; with health checking, a
    /// replica that reports NOT_SERVING (draining) gets none.
    RoundRobin,
}

impl LbPolicy {
    /// The policy's name in a service config and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LbPolicy::PickFirst => "pick_first",
            LbPolicy::RoundRobin => "round_robin",
        }
    }
}

impl FromStr for LbPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "pick_first" => Ok(LbPolicy::PickFirst),
            "round_robin" => Ok(LbPolicy::RoundRobin),
            other => Err(format!(
                "unknown load-balancing policy {other:?} (use pick_first or round_robin)"
            )),
        }
    }
}

impl fmt::Display for LbPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The most attempts of one call C-core makes (it caps a retry policy's maxAttempts at 5).
pub const MAX_ATTEMPTS_LIMIT: u32 = 5;

/// How a channel spreads calls over the target's addresses and retries
/// them: the JSON service config it is given (`grpc.service_config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balancing {
    pub lb: LbPolicy,
    /// Attempts of a GetLearningStatus call (the idempotent one) that ends
    /// UNAVAILABLE, 1 to [`MAX_ATTEMPTS_LIMIT`]; 1: no retries.
    pub max_attempts: u32,
    /// A whole service config instead of the one built from the above.
    pub service_config: Option<String>,
}

impl Balancing {
    /// pick_first, no retries: gRPC's defaults.
    pub fn new() -> Self {
        Balancing {
            lb: LbPolicy::PickFirst,
            max_attempts: 1,
            service_config: None,
        }
    }

    /// The service config JSON: the given one, or the policy, health
    /// checking with round_robin (replicas that report NOT_SERVING get no
    /// calls) and, with more than one attempt, a retry policy for
    /// GetLearningStatus on UNAVAILABLE with exponential backoff.
    pub fn service_config(&self) -> String {
        if let Some(config) = &self.service_config {
            return config.clone();
        }
        let mut config = json!({ "loadBalancingConfig": [{ self.lb.name(): {} }] });
        if self.lb == LbPolicy::RoundRobin {
            config["healthCheckConfig"] = json!({ "serviceName": method_path::LEARNING_MESSENGER });
        }
        if self.max_attempts > 1 {
            let method = method_path::GET_LEARNING_STATUS
                .rsplit('/')
                .next()
                .expect("a method path");
            config["methodConfig"] = json!([{
                "name": [{ "service": method_path::LEARNING_MESSENGER, "method": method }],
                "retryPolicy": {
                    "maxAttempts": self.max_attempts.min(MAX_ATTEMPTS_LIMIT),
                    "initialBackoff": RETRY_INITIAL_BACKOFF,
                    "maxBackoff": RETRY_MAX_BACKOFF,
                    "backoffMultiplier": RETRY_BACKOFF_MULTIPLIER,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }]);
        }
        config.to_string()
    }

    /// `builder` with this service config, which nothing the resolver finds
    /// (DNS TXT records) replaces, and with retries on.
    fn apply(&self, builder: ChannelBuilder) -> ChannelBuilder {
        let config = CString::new(self.service_config())
            .unwrap_or_else(|_| CString::from(c"not JSON: a NUL byte"));
        builder
            .raw_cfg_string(CString::from(c"grpc.service_config"), config)
            .raw_cfg_int(CString::from(c"grpc.service_config_disable_resolution"), 1)
            .enable_retry(true)
    }
}

impl Default for Balancing {
    fn default() -> Self {
        Balancing::new()
    }
}

/// A retry's first pause (then jittered by C-core, as every backoff)...
const RETRY_INITIAL_BACKOFF: &str = "0.1s";
/// ...the longest pause...
const RETRY_MAX_BACKOFF: &str = "1s";
/// ...and how much each pause grows.
const RETRY_BACKOFF_MULTIPLIER: f64 = 2.0;

/// Creates the channel `builder` describes to `target`, once the target is
/// checked. C-core turns a channel it cannot create (a service config it
/// refuses) into a "lame" one that fails every call with no word on why:
/// that is told here, in one line, before any call.
pub fn open_channel(
    builder: ChannelBuilder,
    target: &str,
    balancing: &Balancing,
) -> Result<Channel, ClientError> {
    check_target(target).map_err(ClientError::Usage)?;
    let given = balancing.service_config.is_some();
    if let Some(config) = &balancing.service_config {
        serde_json::from_str::<serde_json::Value>(config)
            .map_err(|e| ClientError::Usage(format!("the service config is not JSON: {e}")))?;
    }
    let channel = balancing.apply(builder).connect(target);
    // A new channel is IDLE until asked to connect; only a lame one has
    // failed already. The config we build is valid: a given one is to blame.
    if given && channel.check_connectivity_state(false) != ConnectivityState::GRPC_CHANNEL_IDLE {
        return Err(ClientError::Usage(
            "gRPC refused to create the channel: the service config is not valid (see gRPC's doc/service_config.md)"
                .to_owned(),
        ));
    }
    Ok(channel)
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The server, in gRPC's name syntax (see [`super::target`]).
    pub target: String,
    /// How calls are spread over the target's addresses and retried.
    pub balancing: Balancing,
    /// Calls wait for a connection (until their deadline) instead of failing
    /// at once while the target is unreachable.
    pub wait_for_ready: bool,
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
    /// The `:authority` of every call, if not the target's: a tap in front
    /// of the server (`--show-wire`) passes the server's on.
    pub authority: Option<String>,
    /// A bearer token sent on every call (over TLS, or to this machine only).
    pub token: Option<BearerToken>,
}

impl ConnectOptions {
    pub fn new(target: impl Into<String>) -> Self {
        ConnectOptions {
            target: target.into(),
            balancing: Balancing::new(),
            wait_for_ready: false,
            timeout: None,
            tls_ca: None,
            tls_server_name: None,
            tls_identity: None,
            compression: Compression::None,
            authority: None,
            token: None,
        }
    }
}

/// Opens a channel to `options.target` (lazily: the first call connects), or
/// says why it cannot: a token is never sent in plaintext off this machine.
pub fn connect(options: &ConnectOptions) -> Result<LearningMessengerClient, ClientError> {
    if options.token.is_some() {
        check_transport(&options.target, options.tls_ca.is_some())?;
    }
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
    if let Some(authority) = &options.authority {
        builder = builder.default_authority(authority.clone());
    }
    if let Some(ca) = &options.tls_ca {
        let credentials = crate::tls::client_credentials(ca, options.tls_identity.as_ref())
            .map_err(ClientError::Setup)?;
        builder = builder.set_credentials(credentials);
        if let Some(name) = &options.tls_server_name {
            builder = builder.override_ssl_target(name.clone());
        }
    }
    let mut call_options = CallOption::default().wait_for_ready(options.wait_for_ready);
    if let Some(timeout) = options.timeout {
        call_options = call_options.timeout(timeout);
    }
    if let Some(token) = &options.token {
        let mut headers = MetadataBuilder::new();
        token.add_to(&mut headers)?;
        call_options = call_options.headers(headers.build());
    }
    let channel = open_channel(builder, &options.target, &options.balancing)?;
    Ok(LearningMessengerClient::new(channel).with_options(call_options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn config(balancing: &Balancing) -> Value {
        serde_json::from_str(&balancing.service_config()).unwrap()
    }

    #[test]
    fn the_default_config_is_grpcs_default() {
        assert_eq!(
            config(&Balancing::default()),
            json!({ "loadBalancingConfig": [{ "pick_first": {} }] })
        );
    }

    #[test]
    fn round_robin_health_checks_and_retries_are_in_the_config() {
        let balancing = Balancing {
            lb: LbPolicy::RoundRobin,
            max_attempts: 3,
            service_config: None,
        };
        assert_eq!(
            config(&balancing),
            json!({
                "loadBalancingConfig": [{ "round_robin": {} }],
                "healthCheckConfig": { "serviceName": "messenger.LearningMessenger" },
                "methodConfig": [{
                    "name": [{ "service": "messenger.LearningMessenger", "method": "GetLearningStatus" }],
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2.0,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }],
            })
        );
        let given = Balancing {
            service_config: Some("{}".to_owned()),
            ..balancing
        };
        assert_eq!(given.service_config(), "{}");
    }

    #[test]
    fn policies_parse_by_their_grpc_names() {
        for lb in [LbPolicy::PickFirst, LbPolicy::RoundRobin] {
            assert_eq!(lb.to_string().parse::<LbPolicy>(), Ok(lb));
        }
        assert!("grpclb"
            .parse::<LbPolicy>()
            .unwrap_err()
            .contains("pick_first or round_robin"));
    }
}
