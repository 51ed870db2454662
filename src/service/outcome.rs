//! How the end of a call is logged: a client that went away is routine, not
//! a warning.

use std::future::Future;

use grpcio::RpcStatus;
use log::{debug, warn};

use crate::rpc::is_call_over;

/// Logs how a call ended.
pub(crate) fn log_outcome(method: &str, result: grpcio::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e) if is_call_over(&e) => debug!("{method}: the client ended the call"),
        Err(grpcio::Error::RpcFailure(status)) => debug!("{method}: call ended with {status:?}"),
        Err(e) => warn!("{method}: {e}"),
    }
}

/// Ends a call whose request stream failed: a refused request gets the status
/// saying why; a call the client already ended needs no answer.
pub(crate) async fn reject<F, Fut>(method: &str, error: grpcio::Error, fail: F)
where
    F: FnOnce(RpcStatus) -> Fut,
    Fut: Future<Output = grpcio::Result<()>>,
{
    match error {
        grpcio::Error::RpcFailure(status) => {
            warn!("{method}: refusing a request message: {}", status.message());
            log_outcome(method, fail(status).await);
        }
        other => log_outcome(method, Err(other)),
    }
}
