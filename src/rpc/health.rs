//! `grpc.health.v1.Health`: descriptors, client stub, service trait and
//! registration for the standard health protocol in `proto/health.proto`.

use grpcio::{
    CallOption, Channel, ClientSStreamReceiver, ClientUnaryReceiver, Method, MethodType, Result,
    RpcContext, Service, ServiceBuilder,
};

use messenger_lab::method_path;

use super::blocking::BlockingResponses;
use super::handler::{self, ServiceOptions};
use super::method::{protobuf_method, server_side};
use super::{ServerStreamReply, UnaryReply};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};

/// The service's full name, as gRPC routes it.
pub const SERVICE_NAME: &str = method_path::HEALTH;

pub mod method {
    use super::*;

    pub const CHECK: Method<HealthCheckRequest, HealthCheckResponse> =
        protobuf_method(MethodType::Unary, method_path::HEALTH_CHECK);

    pub const WATCH: Method<HealthCheckRequest, HealthCheckResponse> =
        protobuf_method(MethodType::ServerStreaming, method_path::HEALTH_WATCH);
}

/// The typed client stub. Every call carries `options` (deadline, headers).
#[derive(Clone)]
pub struct HealthClient {
    client: grpcio::Client,
    options: CallOption,
}

impl HealthClient {
    pub fn new(channel: Channel) -> Self {
        HealthClient {
            client: grpcio::Client::new(channel),
            options: CallOption::default(),
        }
    }

    pub fn with_options(mut self, options: CallOption) -> Self {
        self.options = options;
        self
    }

    /// Unary, blocking.
    pub fn check(&self, req: &HealthCheckRequest) -> Result<HealthCheckResponse> {
        self.client
            .unary_call(&method::CHECK, req, self.options.clone())
    }

    /// Unary, async.
    pub fn check_async(
        &self,
        req: &HealthCheckRequest,
    ) -> Result<ClientUnaryReceiver<HealthCheckResponse>> {
        self.client
            .unary_call_async(&method::CHECK, req, self.options.clone())
    }

    /// Server streaming, blocking: the status now, then each change.
    pub fn watch(
        &self,
        req: &HealthCheckRequest,
    ) -> Result<BlockingResponses<ClientSStreamReceiver<HealthCheckResponse>>> {
        Ok(BlockingResponses::new(
            self.watch_async(req)?,
            self.client.channel(),
        ))
    }

    /// Server streaming, async.
    pub fn watch_async(
        &self,
        req: &HealthCheckRequest,
    ) -> Result<ClientSStreamReceiver<HealthCheckResponse>> {
        self.client
            .server_streaming(&method::WATCH, req, self.options.clone())
    }
}

/// What a health server implements.
pub trait Health {
    fn check(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        reply: UnaryReply<HealthCheckResponse>,
    );
    fn watch(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        changes: ServerStreamReply<HealthCheckResponse>,
    );
}

/// Registers an implementation: the `Service` to hand to `ServerBuilder::register_service`.
/// Every call goes through `options` (its size limit, its metrics), but
/// Watch's long-lived streams through `watches`, with a limit of their own.
pub fn create_health<S: Health + Send + Clone + 'static>(
    service: S,
    options: &ServiceOptions,
    watches: &ServiceOptions,
) -> Service {
    let (check, watch) = (service.clone(), service);
    ServiceBuilder::new()
        .add_unary_handler(
            &server_side(&method::CHECK),
            handler::unary(options, &method::CHECK, {
                let mut service = check;
                move |ctx, _caller, req, reply| service.check(ctx, req, reply)
            }),
        )
        .add_server_streaming_handler(
            &server_side(&method::WATCH),
            handler::server_streaming(watches, &method::WATCH, {
                let mut service = watch;
                move |ctx, _caller, req, changes| service.watch(ctx, req, changes)
            }),
        )
        .build()
}
