//! The identity of a client certificate (mutual TLS), as C-core's TLS
//! handshake put it in the call's auth context: its first subject
//! alternative name, else its common name.

use grpcio::RpcContext;

use super::identity::{Identity, RoomGrant, Source};
use super::refusal::{Reason, Refusal};

/// C-core's auth-context property names (grpc_security_constants.h).
const SUBJECT_ALTERNATIVE_NAME: &str = "x509_subject_alternative_name";
const COMMON_NAME: &str = "x509_common_name";

/// The caller the call's client certificate names, who may join `rooms`:
/// who may hold a certificate is the client CA's decision, which rooms it
/// may join the server's (`--auth-open-rooms`).
pub(crate) fn identity(ctx: &RpcContext<'_>, rooms: &RoomGrant) -> Result<Identity, Refusal> {
    let name = ctx.auth_context().and_then(|auth| {
        let first = |property: &str| {
            (&auth)
                .into_iter()
                .find(|found| found.name() == property)
                .map(|found| String::from_utf8_lossy(found.value()).into_owned())
                .filter(|name| !name.is_empty())
        };
        first(SUBJECT_ALTERNATIVE_NAME)
            .map(|name| (name, "the client certificate's subject alternative name"))
            .or_else(|| {
                first(COMMON_NAME).map(|name| (name, "the client certificate's common name"))
            })
    });
    match name {
        Some((name, whence)) => Identity::new(&name, whence, Source::Certificate, rooms.clone()),
        None => Err(Refusal::new(
            Reason::Certificate,
            "the client certificate names nobody: no subject alternative name, no common name",
        )),
    }
}
