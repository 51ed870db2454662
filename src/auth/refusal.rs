//! Why a call was refused: its status (UNAUTHENTICATED when the caller is not
//! known, PERMISSION_DENIED when it may not do what it asked) with a message
//! that says what is wrong and never repeats the token, and the reason it is
//! counted under (`messenger_auth_refused_total{reason}`).

use grpcio::{RpcStatus, RpcStatusCode};

use crate::metrics::AuthMetrics;

/// Why a call was refused, as the metric's `reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No `authorization` header.
    Missing,
    /// Not `Bearer <JWT>`, not a JWT, or a JWT without the claims it needs.
    Malformed,
    /// Signed with an algorithm this server does not accept (`none`, HS256...).
    Algorithm,
    /// Signed with a key (`kid`) that is not in the JWKS.
    UnknownKey,
    /// The signature does not verify with the JWKS's keys.
    Signature,
    /// Its `exp` has passed.
    Expired,
    /// Its `nbf` is still to come.
    NotYetValid,
    /// Not from the issuer the server trusts (`--auth-issuer`).
    Issuer,
    /// Not for this server's audience (`--auth-audience`).
    Audience,
    /// A client certificate that names nobody.
    Certificate,
    /// A name (a token's claim, a certificate's) that breaks the rule of names.
    IdentityName,
    /// A room the caller may not join.
    Room,
    /// A name in a room that is not the caller's.
    Name,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::Algorithm,
        Reason::UnknownKey,
        Reason::Signature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Issuer,
        Reason::Audience,
        Reason::Certificate,
        Reason::IdentityName,
        Reason::Room,
        Reason::Name,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Missing => "missing_token",
            Reason::Malformed => "malformed_token",
            Reason::Algorithm => "wrong_algorithm",
            Reason::UnknownKey => "unknown_key",
            Reason::Signature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Issuer => "wrong_issuer",
            Reason::Audience => "wrong_audience",
            Reason::Certificate => "no_certificate_identity",
            Reason::IdentityName => "bad_identity_name",
            Reason::Room => "room_not_allowed",
            Reason::Name => "not_your_name",
        }
    }

    fn code(self) -> RpcStatusCode {
        match self {
            Reason::Room | Reason::Name => RpcStatusCode::PERMISSION_DENIED,
            _ => RpcStatusCode::UNAUTHENTICATED,
        }
    }
}

/// A refusal on its way to the caller.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) reason: Reason,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

/// Counts refusals by reason, when metrics are on.
#[derive(Clone, Default)]
pub(crate) struct Refusals(Option<AuthMetrics>);

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Refusals").field(&self.0.is_some()).finish()
    }
}

impl Refusals {
    /// Every reason's series starts at 0, so a dashboard sees it before the first refusal.
    pub(crate) fn new(metrics: Option<AuthMetrics>) -> Refusals {
        if let Some(metrics) = &metrics {
            for reason in Reason::ALL {
                metrics.refused.with_label_values(&[reason.label()]);
            }
        }
        Refusals(metrics)
    }

    /// Counts `refusal` and turns it into the status that ends the call.
    pub(crate) fn count(&self, refusal: Refusal) -> RpcStatus {
        if let Some(metrics) = &self.0 {
            metrics
                .refused
                .with_label_values(&[refusal.reason.label()])
                .inc();
        }
        RpcStatus::with_message(refusal.reason.code(), refusal.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_unknown_is_unauthenticated_and_who_may_not_is_denied() {
        for reason in Reason::ALL {
            let status = Refusals::default().count(Refusal::new(reason, "why"));
            let expected = match reason {
                Reason::Room | Reason::Name => RpcStatusCode::PERMISSION_DENIED,
                _ => RpcStatusCode::UNAUTHENTICATED,
            };
            assert_eq!(status.code(), expected, "{reason:?}");
            assert_eq!(status.message(), "why");
        }
        let labels: std::collections::HashSet<_> = Reason::ALL.map(Reason::label).into();
        assert_eq!(labels.len(), Reason::ALL.len(), "labels are unique");
    }
}
