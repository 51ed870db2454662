//! `grpc.reflection.v1.ServerReflection` and `grpc.reflection.v1alpha.ServerReflection`:
//! descriptors, client stub, service trait and registration for server
//! reflection (`proto/reflection_v1.proto`, `proto/reflection_v1alpha.proto`).
//!
//! The two packages declare the same messages, which encode the same on the
//! wire: an implementation answers v1 only, and a v1alpha call is bridged to
//! it by re-encoding each request and each answer ([`SameWire`]).

use grpcio::{
    CallOption, Channel, ClientDuplexReceiver, ClientDuplexSender, Method, MethodType, Result,
    RpcContext, Service, ServiceBuilder,
};
use protobuf::Message;

use messenger_lab::method_path;

use super::handler::{self, ServiceOptions};
use super::method::{protobuf_method, server_side};
use super::{DuplexReply, Requests};
use crate::proto::{reflection_v1 as v1, reflection_v1alpha as v1alpha};

/// The services' full names, as gRPC routes them.
pub const SERVICE_NAME_V1: &str = method_path::REFLECTION_V1;
pub const SERVICE_NAME_V1ALPHA: &str = method_path::REFLECTION_V1ALPHA;

pub mod method {
    use super::*;

    pub const SERVER_REFLECTION_INFO_V1: Method<
        v1::ServerReflectionRequest,
        v1::ServerReflectionResponse,
    > = protobuf_method(MethodType::Duplex, method_path::REFLECTION_V1_INFO);

    pub const SERVER_REFLECTION_INFO_V1ALPHA: Method<
        v1alpha::ServerReflectionRequest,
        v1alpha::ServerReflectionResponse,
    > = protobuf_method(MethodType::Duplex, method_path::REFLECTION_V1ALPHA_INFO);
}

/// A message as its v1 counterpart, which encodes the same: v1's own
/// messages as they are, v1alpha's re-encoded.
pub trait SameWire<V1>: Sized {
    fn into_v1(self) -> Result<V1>;
    fn from_v1(v1: V1) -> Result<Self>;
}

impl<T> SameWire<T> for T {
    fn into_v1(self) -> Result<T> {
        Ok(self)
    }

    fn from_v1(v1: T) -> Result<T> {
        Ok(v1)
    }
}

impl SameWire<v1::ServerReflectionRequest> for v1alpha::ServerReflectionRequest {
    fn into_v1(self) -> Result<v1::ServerReflectionRequest> {
        reencode(&self)
    }

    fn from_v1(v1: v1::ServerReflectionRequest) -> Result<Self> {
        reencode(&v1)
    }
}

impl SameWire<v1::ServerReflectionResponse> for v1alpha::ServerReflectionResponse {
    fn into_v1(self) -> Result<v1::ServerReflectionResponse> {
        reencode(&self)
    }

    fn from_v1(v1: v1::ServerReflectionResponse) -> Result<Self> {
        reencode(&v1)
    }
}

/// `message` as the other package's message of the same wire format.
fn reencode<A: Message, B: Message>(message: &A) -> Result<B> {
    let bytes = message.write_to_bytes()?;
    Ok(B::parse_from_bytes(&bytes)?)
}

/// The typed client stub, for either version. Every call carries `options`.
#[derive(Clone)]
pub struct ServerReflectionClient {
    client: grpcio::Client,
    options: CallOption,
}

impl ServerReflectionClient {
    pub fn new(channel: Channel) -> Self {
        ServerReflectionClient {
            client: grpcio::Client::new(channel),
            options: CallOption::default(),
        }
    }

    pub fn with_options(mut self, options: CallOption) -> Self {
        self.options = options;
        self
    }

    /// Bidi, async, `grpc.reflection.v1alpha`.
    pub fn server_reflection_info_v1alpha_async(
        &self,
    ) -> Result<(
        ClientDuplexSender<v1alpha::ServerReflectionRequest>,
        ClientDuplexReceiver<v1alpha::ServerReflectionResponse>,
    )> {
        self.client.duplex_streaming(
            &method::SERVER_REFLECTION_INFO_V1ALPHA,
            self.options.clone(),
        )
    }

    /// Runs `f` on the channel's completion-queue thread (keep it light).
    pub fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.client.spawn(f)
    }
}

/// What a reflection server implements, once for both versions: `Req` and
/// `Resp` are v1's messages or v1alpha's, bridged with [`SameWire`].
pub trait ServerReflection {
    fn server_reflection_info<Req, Resp>(
        &mut self,
        ctx: RpcContext<'_>,
        requests: Requests<Req>,
        sink: DuplexReply<Resp>,
    ) where
        Req: SameWire<v1::ServerReflectionRequest> + Message,
        Resp: SameWire<v1::ServerReflectionResponse> + Message;
}

/// Registers an implementation as `grpc.reflection.v1.ServerReflection`.
/// Every call goes through `options`: its size limit and its metrics.
pub fn create_server_reflection_v1<S>(service: S, options: &ServiceOptions) -> Service
where
    S: ServerReflection + Send + Clone + 'static,
{
    let mut service = service;
    let method = &method::SERVER_REFLECTION_INFO_V1;
    ServiceBuilder::new()
        .add_duplex_streaming_handler(
            &server_side(method),
            handler::duplex(options, method, move |ctx, _caller, requests, sink| {
                service
                    .server_reflection_info::<v1::ServerReflectionRequest, _>(ctx, requests, sink)
            }),
        )
        .build()
}

/// Registers an implementation as `grpc.reflection.v1alpha.ServerReflection`.
pub fn create_server_reflection_v1alpha<S>(service: S, options: &ServiceOptions) -> Service
where
    S: ServerReflection + Send + Clone + 'static,
{
    let mut service = service;
    let method = &method::SERVER_REFLECTION_INFO_V1ALPHA;
    ServiceBuilder::new()
        .add_duplex_streaming_handler(
            &server_side(method),
            handler::duplex(options, method, move |ctx, _caller, requests, sink| {
                service.server_reflection_info::<v1alpha::ServerReflectionRequest, _>(
                    ctx, requests, sink,
                )
            }),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1alpha_messages_bridge_to_v1_and_back() {
        let mut req = v1alpha::ServerReflectionRequest::new();
        req.host = "h".into();
        req.set_file_containing_symbol("messenger.FeedUpdate".into());
        let as_v1: v1::ServerReflectionRequest = req.clone().into_v1().unwrap();
        assert_eq!(as_v1.host, "h");
        assert_eq!(as_v1.file_containing_symbol(), "messenger.FeedUpdate");
        let back = v1alpha::ServerReflectionRequest::from_v1(as_v1).unwrap();
        assert_eq!(back, req);

        let mut resp = v1::ServerReflectionResponse::new();
        resp.mut_error_response().error_code = 5;
        let alpha = v1alpha::ServerReflectionResponse::from_v1(resp).unwrap();
        assert_eq!(alpha.error_response().error_code, 5);
    }
}
