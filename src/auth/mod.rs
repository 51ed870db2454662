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

/// How callers are authenticated and what they may do: tokens are off
/// without a JWKS file; what fails closed opens only by a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Require a bearer token on every call, verified with these keys (a JWKS file).
    pub jwks: Option<PathBuf>,
    /// The `iss` a token must have, if any.
    pub issuer: Option<String>,
    /// The `aud` a token must have among its audiences; a server with a JWKS
    /// needs one, or `any_audience`.
    pub audience: Option<String>,
    /// Accept tokens for any audience (`--auth-any-audience`): any app's
    /// token from the same issuer then calls this server too.
    pub any_audience: bool,
    /// The claim whose value is the caller's name.
    pub name_claim: String,
    /// The claim listing the rooms the caller may join (`*` matches any run
    /// of characters).
    pub rooms_claim: String,
    /// A caller that nothing lists rooms for (a token without the rooms
    /// claim, a client certificate) may join any room (`--auth-open-rooms`);
    /// otherwise none.
    pub open_rooms: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwks: None,
            issuer: None,
            audience: None,
            any_audience: false,
            name_claim: DEFAULT_NAME_CLAIM.to_owned(),
            rooms_claim: DEFAULT_ROOMS_CLAIM.to_owned(),
            open_rooms: false,
        }
    }
}

impl AuthConfig {
    /// What can be checked before serving: the flags, and the JWKS file
    /// has keys we can use. `client_certificates`: the server requires
    /// them (mutual TLS).
    pub fn check(&self, client_certificates: bool) -> Result<(), String> {
        self.check_flags(client_certificates)?;
        match &self.jwks {
            Some(path) => jwks::load(path).map(drop),
            None => Ok(()),
        }
    }

    /// The flags agree, and nothing is left open by omission.
    fn check_flags(&self, client_certificates: bool) -> Result<(), String> {
        if self.jwks.is_none() {
            if self.issuer.is_some() || self.audience.is_some() || self.any_audience {
                return Err(
                    "--auth-issuer, --auth-audience and --auth-any-audience need --auth-jwks"
                        .to_owned(),
                );
            }
            if self.open_rooms && !client_certificates {
                return Err("--auth-open-rooms needs --auth-jwks or --tls-client-ca: \
                            without authentication anyone may join any room already"
                    .to_owned());
            }
            return Ok(());
        }
        match (&self.audience, self.any_audience) {
            (None, false) => Err("--auth-jwks needs --auth-audience AUD, the audience (aud) \
                                  this server is, so that a token the same issuer made for \
                                  another app is refused; or --auth-any-audience to accept \
                                  tokens for any audience"
                .to_owned()),
            (Some(_), true) => Err(
                "--auth-audience and --auth-any-audience contradict each other: give one"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// The rooms of a caller that nothing lists rooms for.
    pub(crate) fn unlisted_rooms(&self) -> RoomGrant {
        if self.open_rooms {
            RoomGrant::Any
        } else {
            RoomGrant::Unlisted
        }
    }
}

/// Decides who is calling, for every call of the services it is given to.
pub struct Authentication {
    tokens: Option<TokenVerifier>,
    /// What a client certificate may join.
    certificate_rooms: RoomGrant,
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
        config.check_flags(client_certificates)?;
        let tokens = match &config.jwks {
            Some(path) => Some(TokenVerifier::new(jwks::JwksFile::open(path)?, config)),
            None if client_certificates => None,
            None => return Ok(None),
        };
        Ok(Some(Arc::new(Authentication {
            tokens,
            certificate_rooms: config.unlisted_rooms(),
            refusals: Refusals::new(metrics),
        })))
    }

    /// The caller of the call `ctx`, or the status refusing it: UNAUTHENTICATED
    /// with what is wrong, never the token itself.
    pub(crate) fn caller(&self, ctx: &RpcContext<'_>) -> Result<Caller, RpcStatus> {
        let identity = match &self.tokens {
            Some(tokens) => tokens.verify(ctx.request_headers()),
            None => certificate::identity(ctx, &self.certificate_rooms),
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
