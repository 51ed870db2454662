//! The identity of a client certificate (mutual TLS), as C-core's TLS
//! handshake put it in the call's auth context: its first subject
//! alternative name, else its common name.

use grpcio::RpcContext;

use super::identity::{Identity, RoomGrant, Source};
use super::refusal::{Reason, Refusal};

/// C-core's auth-context property names (grpc_security_constants.h).
const SUBJECT_ALTERNATIVE_NAME: &str = "x509_subject_alternative_name";
const COMMON_NAME: &str = "x509_common_name";

/// The caller the call's client certificate names. A certificate grants
/// every room: who may hold one is the client CA's decision.
pub(crate) fn identity(ctx: &RpcContext<'_>) -> Result<Identity, Refusal> {
    let name = ctx.auth_context().and_then(|auth| {
        let first = |property: &str| {
            (&auth)
                .into_iter()
                .find(|found| found.name() == property)
                .and_then(|found| found.value_str().ok().map(str::to_owned))
                .filter(|name| !name.is_empty())
        };
        first(SUBJECT_ALTERNATIVE_NAME).or_else(|| first(COMMON_NAME))
    });
    match name {
        Some(name) => Ok(Identity::new(name, Source::Certificate, RoomGrant::Any)),
        None => Err(Refusal::new(
            Reason::Certificate,
            "the client certificate names nobody: no subject alternative name, no common name",
        )),
    }
}
