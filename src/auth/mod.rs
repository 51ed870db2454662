//! Who is calling, opt-in: with a JWKS file, every LearningMessenger call
//! must carry `authorization: Bearer <JWT>`, verified offline against its
//! keys; with a client CA (mutual TLS) and no JWKS, the client certificate
//! names the caller. Health and reflection stay open: the server gives them
//! no [`Authentication`]. Without either, every caller is
//! [`Caller::Anonymous`] and everything works as in the lab.
//!
//! The glue every handler goes through (`rpc::handler`) asks
//! [`Authentication::caller`] before a handler sees the call, and hands the
//! handler the caller it found; no handler can forget to ask.
//!
//! - [`identity`]: the caller and what it may do (its rooms).
//! - [`room_access`]: who a caller is in a feed room, and which rooms it may join.
//! - `token`: a bearer token, verified (`jsonwebtoken`).
//! - `jwks`: the keys tokens are verified with, from a JWKS file.
//! - `certificate`: the identity of a client certificate.
//! - `refusal`: why a call was refused, as its status and the metric's reason.

mod certificate;
pub mod identity;
mod jwks;
mod refusal;
pub mod room_access;
mod token;

use std::path::PathBuf;
use std::sync::Arc;

use grpcio::{RpcContext, RpcStatus};
use log::debug;

use crate::metrics::AuthMetrics;
pub use identity::{Caller, Identity, RoomGrant, Source};
pub use jwks::RELOAD_CHECK;
pub use refusal::Reason;
use refusal::Refusals;
use token::TokenVerifier;
pub use token::AUTHORIZATION;

/// The claim that names the caller unless told otherwise (`--auth-name-claim`).
pub const DEFAULT_NAME_CLAIM: &str = "sub";
/// The claim that lists the rooms a caller may join (`--auth-rooms-claim`).
pub const DEFAULT_ROOMS_CLAIM: &str = "rooms";

/// How bearer tokens are checked: off without a JWKS file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Require a bearer token on every call, verified with these keys (a JWKS file).
    pub jwks: Option<PathBuf>,
    /// The `iss` a token must have, if any.
    pub issuer: Option<String>,
    /// The `aud` a token must have among its audiences, if any.
    pub audience: Option<String>,
    /// The claim whose value is the caller's name.
    pub name_claim: String,
    /// The claim listing the rooms the caller may join (`*` matches any run
    /// of characters); a token without it may join any room.
    pub rooms_claim: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwks: None,
            issuer: None,
            audience: None,
            name_claim: DEFAULT_NAME_CLAIM.to_owned(),
            rooms_claim: DEFAULT_ROOMS_CLAIM.to_owned(),
        }
    }
}

impl AuthConfig {
    /// What can be checked before serving: the JWKS file has keys we can use.
    pub fn check(&self) -> Result<(), String> {
        match &self.jwks {
            Some(path) => jwks::load(path).map(drop),
            None if self.issuer.is_some() || self.audience.is_some() => {
                Err("--auth-issuer and --auth-audience need --auth-jwks".to_owned())
            }
            None => Ok(()),
        }
    }
}

/// Decides who is calling, for every call of the services it is given to.
pub struct Authentication {
    tokens: Option<TokenVerifier>,
    refusals: Refusals,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("tokens", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl Authentication {
    /// The authentication `config` asks for: tokens with a JWKS file, else
    /// client certificates when the server requires them
    /// (`client_certificates`), else none. Refusals are counted in `metrics`.
    pub fn new(
        config: &AuthConfig,
        client_certificates: bool,
        metrics: Option<AuthMetrics>,
    ) -> Result<Option<Arc<Authentication>>, String> {
        let tokens = match &config.jwks {
            Some(path) => Some(TokenVerifier::new(jwks::JwksFile::open(path)?, config)),
            None => {
                config.check()?;
                if !client_certificates {
                    return Ok(None);
                }
                None
            }
        };
        Ok(Some(Arc::new(Authentication {
            tokens,
            refusals: Refusals::new(metrics),
        })))
    }

    /// The caller of the call `ctx`, or the status refusing it: UNAUTHENTICATED
    /// with what is wrong, never the token itself.
    pub(crate) fn caller(&self, ctx: &RpcContext<'_>) -> Result<Caller, RpcStatus> {
        let identity = match &self.tokens {
            Some(tokens) => tokens.verify(ctx.request_headers()),
            None => certificate::identity(ctx),
        };
        match identity {
            Ok(mut identity) => {
                identity.refusals = self.refusals.clone();
                Ok(Caller::Authenticated(Arc::new(identity)))
            }
            Err(refusal) => {
                debug!(
                    "{}: refused ({}) from {}: {}",
                    String::from_utf8_lossy(ctx.method()),
                    refusal.reason.label(),
                    ctx.peer(),
                    refusal.message
                );
                Err(self.refusals.count(refusal))
            }
        }
    }
}
