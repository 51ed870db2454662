//! A health probe, like grpc_health_probe: Check a service once and exit 0
//! only when it is SERVING, or Watch it and print each change. Container
//! health checks and scripts can use the `client` binary itself.

use std::io::Write;

use futures::TryStreamExt;
use grpcio::RpcStatusCode;

use super::calls::served_by;
use super::output::{Printer, Received};
use super::ClientError;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::rpc::health::HealthClient;
use crate::rpc::messenger::LearningMessengerClient;

/// Checks (or with `watch`, follows) `service` (`""` is the whole server) on
/// `client`'s channel. Ends well only if the last status is SERVING.
pub async fn probe<W: Write>(
    client: &LearningMessengerClient,
    service: &str,
    watch: bool,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    let health = HealthClient::new(client.channel().clone()).with_options(client.options());
    let request = HealthCheckRequest {
        service: service.to_owned(),
        ..Default::default()
    };
    let unknown = |e: grpcio::Error| match e {
        grpcio::Error::RpcFailure(status) if status.code() == RpcStatusCode::NOT_FOUND => {
            ClientError::UnknownService(service.to_owned())
        }
        other => ClientError::Rpc(other),
    };
    let mut last = None;
    if watch {
        let mut changes = health.watch_async(&request).map_err(unknown)?;
        if printer.shows_replica() {
            let headers = changes.headers().await.map_err(unknown)?;
            printer.replica("grpc.health.v1.Health", served_by(headers))?;
        }
        while let Some(response) = changes.try_next().await.map_err(unknown)? {
            printer.received(Received::Health(&response))?;
            last = Some(response);
        }
    } else {
        let mut call = health.check_async(&request).map_err(unknown)?;
        if printer.shows_replica() {
            let headers = call.headers().await.map_err(unknown)?;
            printer.replica("grpc.health.v1.Health", served_by(headers))?;
        }
        let response = call.message().await.map_err(unknown)?;
        printer.received(Received::Health(&response))?;
        last = Some(response);
    }
    verdict(service, last.as_ref())
}

/// SERVING is healthy; anything else says why not.
fn verdict(service: &str, last: Option<&HealthCheckResponse>) -> Result<(), ClientError> {
    match last.map(|response| response.status.enum_value_or_default()) {
        Some(ServingStatus::SERVING) => Ok(()),
        Some(ServingStatus::SERVICE_UNKNOWN) => {
            Err(ClientError::UnknownService(service.to_owned()))
        }
        Some(status) => Err(ClientError::NotServing(format!("{status:?}"))),
        None => Err(ClientError::NotServing("no status".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: ServingStatus) -> HealthCheckResponse {
        HealthCheckResponse {
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_serving_is_healthy() {
        assert!(verdict("", Some(&response(ServingStatus::SERVING))).is_ok());
        let not = verdict("", Some(&response(ServingStatus::NOT_SERVING))).unwrap_err();
        assert_eq!(not.exit_code(), super::super::exit::NOT_SERVING);
        let unknown = verdict("x", Some(&response(ServingStatus::SERVICE_UNKNOWN))).unwrap_err();
        assert_eq!(unknown.exit_code(), super::super::exit::UNKNOWN_SERVICE);
        assert!(verdict("", None).is_err());
    }
}
