//! `messenger.LearningMessenger`: descriptors, client stub, service trait and
//! registration for the contract in `proto/messenger.proto`.

use grpcio::{
    CallOption, Channel, ClientCStreamReceiver, ClientCStreamSender, ClientDuplexReceiver,
    ClientDuplexSender, ClientSStreamReceiver, ClientUnaryReceiver, Method, MethodType, Result,
    RpcContext, Service, ServiceBuilder,
};

use messenger_lab::method_path;

use super::blocking::{send_blocking, BlockingResponses};
use super::handler::{self, ServiceOptions};
use super::method::{protobuf_method, server_side};
use super::{
    ok_if_call_over, ClientStreamReply, DuplexReply, Requests, ServerStreamReply, UnaryReply,
};
use crate::auth::Caller;
use crate::proto::messenger::{
    FeedUpdate, LearningUpdate, ResearchNote, StatusRequest, StatusResponse, SummaryResponse,
    TopicRequest,
};

/// The service's full name, as gRPC routes it.
pub const SERVICE_NAME: &str = method_path::LEARNING_MESSENGER;

/// One descriptor per RPC: full name, pattern and the protobuf marshallers.
pub mod method {
    use super::*;

    pub const GET_LEARNING_STATUS: Method<StatusRequest, StatusResponse> =
        protobuf_method(MethodType::Unary, method_path::GET_LEARNING_STATUS);

    pub const STREAM_LEARNINGS: Method<TopicRequest, LearningUpdate> =
        protobuf_method(MethodType::ServerStreaming, method_path::STREAM_LEARNINGS);

    pub const SUBMIT_RESEARCH_NOTES: Method<ResearchNote, SummaryResponse> = protobuf_method(
        MethodType::ClientStreaming,
        method_path::SUBMIT_RESEARCH_NOTES,
    );

    pub const COLLABORATIVE_FEED: Method<FeedUpdate, FeedUpdate> =
        protobuf_method(MethodType::Duplex, method_path::COLLABORATIVE_FEED);
}

/// The typed client stub. Every call carries `options` (deadline, headers).
#[derive(Clone)]
pub struct LearningMessengerClient {
    client: grpcio::Client,
    options: CallOption,
}

impl LearningMessengerClient {
    pub fn new(channel: Channel) -> Self {
        LearningMessengerClient {
            client: grpcio::Client::new(channel),
            options: CallOption::default(),
        }
    }

    /// The options every call of this stub carries.
    pub fn options(&self) -> CallOption {
        self.options.clone()
    }

    /// The same stub, with these options on every call it makes.
    pub fn with_options(mut self, options: CallOption) -> Self {
        self.options = options;
        self
    }

    pub fn channel(&self) -> &Channel {
        self.client.channel()
    }

    /// Unary, blocking.
    pub fn get_learning_status(&self, req: &StatusRequest) -> Result<StatusResponse> {
        self.client
            .unary_call(&method::GET_LEARNING_STATUS, req, self.options.clone())
    }

    /// Unary, async: the receiver is a future of the response. Like every
    /// `_async` form, keep the client alive until the call is over: dropping
    /// the last client of a channel stops its calls.
    pub fn get_learning_status_async(
        &self,
        req: &StatusRequest,
    ) -> Result<ClientUnaryReceiver<StatusResponse>> {
        self.client
            .unary_call_async(&method::GET_LEARNING_STATUS, req, self.options.clone())
    }

    /// Server streaming, blocking: an iterator over the updates as they arrive.
    pub fn stream_learnings(
        &self,
        req: &TopicRequest,
    ) -> Result<BlockingResponses<ClientSStreamReceiver<LearningUpdate>>> {
        Ok(BlockingResponses::new(
            self.stream_learnings_async(req)?,
            self.client.channel(),
        ))
    }

    /// Server streaming, async: a `Stream` of updates.
    pub fn stream_learnings_async(
        &self,
        req: &TopicRequest,
    ) -> Result<ClientSStreamReceiver<LearningUpdate>> {
        self.client
            .server_streaming(&method::STREAM_LEARNINGS, req, self.options.clone())
    }

    /// Client streaming, blocking: sends `notes` lazily, then waits for the summary.
    pub fn submit_research_notes(
        &self,
        notes: impl IntoIterator<Item = ResearchNote>,
    ) -> Result<SummaryResponse> {
        let (mut sender, receiver) = self.submit_research_notes_async()?;
        // A write refused because the server ended the call: the receiver has its status.
        ok_if_call_over(send_blocking(&mut sender, notes))?;
        futures::executor::block_on(receiver)
    }

    /// Client streaming, async: a `Sink` for the notes and a future of the summary.
    /// The sink's `close` is refused with `RpcFinished` when the call's end
    /// is processed before the half-close's own completion (the server can
    /// answer before C-core reports the write done; a loaded machine shows
    /// it): [`ok_if_call_over`] counts that as done, and the summary says
    /// how the call went. Likewise for [`Self::collaborative_feed_async`].
    pub fn submit_research_notes_async(
        &self,
    ) -> Result<(
        ClientCStreamSender<ResearchNote>,
        ClientCStreamReceiver<SummaryResponse>,
    )> {
        self.client
            .client_streaming(&method::SUBMIT_RESEARCH_NOTES, self.options.clone())
    }

    /// Bidi, blocking: `updates` are sent from a thread of their own while the
    /// returned iterator yields each echo as it arrives (full duplex).
    pub fn collaborative_feed<I>(
        &self,
        updates: I,
    ) -> Result<BlockingResponses<ClientDuplexReceiver<FeedUpdate>>>
    where
        I: IntoIterator<Item = FeedUpdate> + Send + 'static,
    {
        let (mut sender, receiver) = self.collaborative_feed_async()?;
        std::thread::spawn(move || {
            // A failed send ends the call; the receiver reports its status.
            let _ = send_blocking(&mut sender, updates);
        });
        Ok(BlockingResponses::new(receiver, self.client.channel()))
    }

    /// Bidi, async: a `Sink` for outgoing updates and a `Stream` of echoes.
    pub fn collaborative_feed_async(
        &self,
    ) -> Result<(
        ClientDuplexSender<FeedUpdate>,
        ClientDuplexReceiver<FeedUpdate>,
    )> {
        self.client
            .duplex_streaming(&method::COLLABORATIVE_FEED, self.options.clone())
    }

    /// Runs `f` on the channel's completion-queue thread (keep it light).
    pub fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.client.spawn(f)
    }
}

/// What a LearningMessenger server implements: one handler per RPC. Each gets
/// the call's context and its caller (anonymous unless the service
/// authenticates), and answers through its sink, without blocking.
pub trait LearningMessenger {
    fn get_learning_status(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: StatusRequest,
        reply: UnaryReply<StatusResponse>,
    );
    fn stream_learnings(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        req: TopicRequest,
        updates: ServerStreamReply<LearningUpdate>,
    );
    fn submit_research_notes(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        notes: Requests<ResearchNote>,
        reply: ClientStreamReply<SummaryResponse>,
    );
    fn collaborative_feed(
        &mut self,
        ctx: RpcContext<'_>,
        caller: Caller,
        updates: Requests<FeedUpdate>,
        echoes: DuplexReply<FeedUpdate>,
    );
}

/// Registers an implementation: the `Service` to hand to `ServerBuilder::register_service`.
/// Every call goes through `options`: its size limit and its metrics.
pub fn create_learning_messenger<S>(service: S, options: &ServiceOptions) -> Service
where
    S: LearningMessenger + Send + Clone + 'static,
{
    let (status, learnings, notes, feed) =
        (service.clone(), service.clone(), service.clone(), service);
    ServiceBuilder::new()
        .add_unary_handler(
            &server_side(&method::GET_LEARNING_STATUS),
            handler::unary(options, &method::GET_LEARNING_STATUS, {
                let mut service = status;
                move |ctx, caller, req, reply| service.get_learning_status(ctx, caller, req, reply)
            }),
        )
        .add_server_streaming_handler(
            &server_side(&method::STREAM_LEARNINGS),
            handler::server_streaming(options, &method::STREAM_LEARNINGS, {
                let mut service = learnings;
                move |ctx, caller, req, updates| service.stream_learnings(ctx, caller, req, updates)
            }),
        )
        .add_client_streaming_handler(
            &server_side(&method::SUBMIT_RESEARCH_NOTES),
            handler::client_streaming(options, &method::SUBMIT_RESEARCH_NOTES, {
                let mut service = notes;
                move |ctx, caller, notes, reply| {
                    service.submit_research_notes(ctx, caller, notes, reply)
                }
            }),
        )
        .add_duplex_streaming_handler(
            &server_side(&method::COLLABORATIVE_FEED),
            handler::duplex(options, &method::COLLABORATIVE_FEED, {
                let mut service = feed;
                move |ctx, caller, updates, echoes| {
                    service.collaborative_feed(ctx, caller, updates, echoes)
                }
            }),
        )
        .build()
}
