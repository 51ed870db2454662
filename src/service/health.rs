//! The standard `grpc.health.v1.Health` service: what Kubernetes gRPC probes
//! and grpc_health_probe call. Check answers the current status; Watch sends
//! it, then every change. Shutdown is a terminal NOT_SERVING for all.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::{SinkExt, StreamExt};
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, WriteFlags};
use log::debug;

use super::in_flight::CallCounter;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::rpc::health::Health;
use crate::rpc::{call_ended, ServerStreamReply, UnaryReply};

/// Serving states by service name (`""` is the whole server), shared by the
/// handlers and the server that changes them.
#[derive(Clone, Debug, Default)]
pub struct HealthService {
    state: Arc<Mutex<HealthState>>,
    in_flight: CallCounter,
}

#[derive(Debug, Default)]
struct HealthState {
    statuses: HashMap<String, ServingStatus>,
    watchers: Vec<(String, mpsc::UnboundedSender<ServingStatus>)>,
    /// Set by shutdown: no status changes after it.
    terminal: bool,
}

impl HealthService {
    /// A health service reporting SERVING for each of `services`.
    pub fn serving(services: &[&str]) -> Self {
        let health = HealthService::default();
        for service in services {
            health.set_status(service, ServingStatus::SERVING);
        }
        health
    }

    /// Sets `service`'s status and tells its watchers.
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        let mut state = self.state.lock();
        if state.terminal {
            return;
        }
        state.statuses.insert(service.to_owned(), status);
        state
            .watchers
            .retain(|(name, tx)| name != service || tx.unbounded_send(status).is_ok());
    }

    /// Shutdown has begun: every service is NOT_SERVING from now on, watchers
    /// are told so and their streams end.
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        let HealthState {
            statuses,
            watchers,
            terminal,
        } = &mut *state;
        *terminal = true;
        for status in statuses.values_mut() {
            *status = ServingStatus::NOT_SERVING;
        }
        for (name, tx) in watchers.drain(..) {
            let status = if statuses.contains_key(&name) {
                ServingStatus::NOT_SERVING
            } else {
                ServingStatus::SERVICE_UNKNOWN
            };
            let _ = tx.unbounded_send(status);
        }
    }

    /// The current status of `service`, if it is known.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.state.lock().statuses.get(service).copied()
    }

    /// The current status (SERVICE_UNKNOWN if unknown) and a receiver of changes.
    fn subscribe(&self, service: &str) -> (ServingStatus, mpsc::UnboundedReceiver<ServingStatus>) {
        let mut state = self.state.lock();
        let (tx, rx) = mpsc::unbounded();
        let now = state
            .statuses
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::SERVICE_UNKNOWN);
        if !state.terminal {
            // Watches that ended dropped their receivers: forget them, or
            // clients that watch and cancel would grow this list for ever.
            state.watchers.retain(|(_, tx)| !tx.is_closed());
            state.watchers.push((service.to_owned(), tx));
        }
        (now, rx)
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
        ..Default::default()
    }
}

impl Health for HealthService {
    fn check(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        sink: UnaryReply<HealthCheckResponse>,
    ) {
        let reply = match self.status(&req.service) {
            Some(status) => sink.success(response(status)),
            None => sink.fail(RpcStatus::with_message(
                RpcStatusCode::NOT_FOUND,
                format!("unknown service {:?}", req.service),
            )),
        };
        self.in_flight.spawn(&ctx, async move {
            if let Err(e) = reply.await {
                debug!("Health.Check: {e}");
            }
        });
    }

    fn watch(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        mut sink: ServerStreamReply<HealthCheckResponse>,
    ) {
        let (now, mut changes) = self.subscribe(&req.service);
        self.in_flight.spawn(&ctx, async move {
            let mut last = now;
            if sink
                .send((response(now), WriteFlags::default()))
                .await
                .is_err()
            {
                return;
            }
            loop {
                // Wait for a change or for the client to go away, whichever comes first.
                let next = {
                    let ended = call_ended(&mut sink);
                    futures::pin_mut!(ended);
                    match future::select(changes.next(), ended).await {
                        Either::Left((next, _)) => next,
                        Either::Right(_) => return,
                    }
                };
                match next {
                    Some(status) if status == last => {}
                    Some(status) => {
                        last = status;
                        if sink
                            .send((response(status), WriteFlags::default()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    None => break,
                }
            }
            if let Err(e) = sink.close().await {
                debug!("Health.Watch: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn ended_watches_are_forgotten() {
        let health = HealthService::serving(&[""]);
        for _ in 0..100 {
            drop(health.subscribe(""));
        }
        let (_, _live) = health.subscribe("");
        assert_eq!(health.state.lock().watchers.len(), 1);
    }

    #[test]
    fn shutdown_is_terminal_and_ends_watches() {
        let health = HealthService::serving(&["", "a"]);
        let (now, mut changes) = health.subscribe("a");
        assert_eq!(now, ServingStatus::SERVING);
        health.shutdown();
        health.set_status("a", ServingStatus::SERVING);
        assert_eq!(health.status("a"), Some(ServingStatus::NOT_SERVING));
        assert_eq!(block_on(changes.next()), Some(ServingStatus::NOT_SERVING));
        assert_eq!(block_on(changes.next()), None);
    }
}
