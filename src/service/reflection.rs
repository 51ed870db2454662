//! Server reflection, the protocol grpcurl and other generic clients use to
//! learn a server's services and messages without its `.proto` files. One
//! implementation answers v1 and v1alpha alike (see [`crate::rpc::reflection`]).
//!
//! The descriptors come from the generated code: a registry, built once, of
//! every file served and its dependencies, and of every symbol they declare.
//! Each file is sent with everything it depends on, transitively, every time
//! (the protocol allows leaving out files sent before on the stream; sending
//! them again is always correct). A name that is not found gets an in-stream
//! NOT_FOUND, as grpc-go answers, and the stream goes on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::OnceLock;

use futures::future;
use futures::{SinkExt, TryStreamExt};
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, WriteFlags};
use log::debug;
use protobuf::reflect::{EnumDescriptor, FileDescriptor, MessageDescriptor};
use protobuf::Message;

use super::in_flight::CallCounter;
use super::outcome::{log_outcome, reject};
use crate::proto::reflection_v1::server_reflection_request::Message_request;
use crate::proto::reflection_v1::server_reflection_response::Message_response;
use crate::proto::reflection_v1::{
    ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse, ListServiceResponse,
    ServerReflectionRequest, ServerReflectionResponse, ServiceResponse,
};
use crate::rpc::reflection::{SameWire, ServerReflection};
use crate::rpc::{DuplexReply, Requests};

/// The files whose services the server serves, in the order `list_services` names them.
fn served_files() -> [&'static FileDescriptor; 4] {
    use crate::proto::{health, messenger, reflection_v1, reflection_v1alpha};
    [
        messenger::file_descriptor(),
        health::file_descriptor(),
        reflection_v1::file_descriptor(),
        reflection_v1alpha::file_descriptor(),
    ]
}

/// The reflection service: answers from the registry, calls counted.
#[derive(Clone, Debug, Default)]
pub struct ReflectionService {
    in_flight: CallCounter,
}

impl ReflectionService {
    pub fn new() -> Self {
        ReflectionService::default()
    }

    /// The count of this service's calls whose work is still running.
    pub fn in_flight(&self) -> CallCounter {
        self.in_flight.clone()
    }
}

/// What reflection knows: built once, from the generated descriptors.
#[derive(Debug)]
struct Registry {
    /// Full names of the services served.
    services: Vec<String>,
    /// Each file by name: itself and its dependencies, transitively, each a
    /// serialized `FileDescriptorProto`, the file first.
    files: HashMap<String, Vec<Vec<u8>>>,
    /// Every fully-qualified symbol (service, method, message, field, oneof,
    /// enum, enum value) and the name of the file declaring it.
    symbols: HashMap<String, String>,
    /// Full names of the message types: the types extensions could extend.
    messages: HashSet<String>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new(&served_files()))
}

/// `name` in the scope `scope` (a package, which may be empty, or a type).
fn qualified(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

impl Registry {
    fn new(served: &[&FileDescriptor]) -> Registry {
        let mut registry = Registry {
            services: Vec::new(),
            files: HashMap::new(),
            symbols: HashMap::new(),
            messages: HashSet::new(),
        };
        for file in served {
            for service in file.services() {
                registry
                    .services
                    .push(qualified(file.package(), service.proto().name()));
            }
        }
        // Every file served or depended on, each once.
        let mut seen = HashSet::new();
        let mut queue: VecDeque<FileDescriptor> = served.iter().map(|f| (*f).clone()).collect();
        while let Some(file) = queue.pop_front() {
            if !seen.insert(file.name().to_owned()) {
                continue;
            }
            registry.add_file(&file);
            queue.extend(file.deps().iter().cloned());
        }
        registry
    }

    fn add_file(&mut self, file: &FileDescriptor) {
        let name = file.name().to_owned();
        let package = file.package();
        for service in file.services() {
            let service_name = qualified(package, service.proto().name());
            for method in service.methods() {
                self.add_symbol(qualified(&service_name, method.proto().name()), &name);
            }
            self.add_symbol(service_name, &name);
        }
        for message in file.messages() {
            self.add_message(&message, &name);
        }
        for enum_ in file.enums() {
            self.add_enum(&enum_, package, &name);
        }
        for extension in file.extensions() {
            self.add_symbol(qualified(package, extension.name()), &name);
        }
        self.files.insert(name, with_dependencies(file));
    }

    fn add_message(&mut self, message: &MessageDescriptor, file: &str) {
        let full_name = message.full_name().to_owned();
        for field in message.fields() {
            self.add_symbol(qualified(&full_name, field.name()), file);
        }
        for oneof in message.all_oneofs() {
            self.add_symbol(qualified(&full_name, oneof.name()), file);
        }
        for extension in message.extensions() {
            self.add_symbol(qualified(&full_name, extension.name()), file);
        }
        for nested in message.nested_messages() {
            self.add_message(&nested, file);
        }
        for enum_ in message.nested_enums() {
            self.add_enum(&enum_, &full_name, file);
        }
        self.messages.insert(full_name.clone());
        self.add_symbol(full_name, file);
    }

    /// An enum declared in `scope`. Its values are declared in that scope
    /// too, as protobuf scopes them (`pkg.Msg.VALUE`: what grpc-go, C++ and
    /// Python look up), and are also found by the enum's name
    /// (`pkg.Msg.Enum.VALUE`: what grpcurl's descriptor library calls them).
    fn add_enum(&mut self, enum_: &EnumDescriptor, scope: &str, file: &str) {
        for value in enum_.values() {
            self.add_symbol(qualified(scope, value.name()), file);
            self.add_symbol(qualified(enum_.full_name(), value.name()), file);
        }
        self.add_symbol(enum_.full_name().to_owned(), file);
    }

    fn add_symbol(&mut self, symbol: String, file: &str) {
        self.symbols.insert(symbol, file.to_owned());
    }

    /// The answer to one request: `Err` only for a request that asks nothing,
    /// which ends the call (as grpc-go does); what is not found is answered
    /// in-stream.
    fn answer(&self, req: ServerReflectionRequest) -> Result<ServerReflectionResponse, RpcStatus> {
        let answer = match &req.message_request {
            Some(Message_request::FileByFilename(name)) => self.file(name),
            Some(Message_request::FileContainingSymbol(symbol)) => match self.symbols.get(symbol) {
                Some(file) => self.file(file),
                None => not_found(format!("symbol not found: {symbol}")),
            },
            Some(Message_request::FileContainingExtension(ext)) => not_found(format!(
                "no extension {} of {}: this server declares no extensions",
                ext.extension_number, ext.containing_type
            )),
            Some(Message_request::AllExtensionNumbersOfType(type_name)) => {
                if self.messages.contains(type_name) {
                    // A type nothing extends: its extension numbers are none (as grpc-go and C++ answer).
                    Message_response::AllExtensionNumbersResponse(ExtensionNumberResponse {
                        base_type_name: type_name.clone(),
                        ..Default::default()
                    })
                } else {
                    not_found(format!("type not found: {type_name}"))
                }
            }
            Some(Message_request::ListServices(_)) => {
                Message_response::ListServicesResponse(ListServiceResponse {
                    service: self
                        .services
                        .iter()
                        .map(|name| ServiceResponse {
                            name: name.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            _ => {
                return Err(RpcStatus::with_message(
                    RpcStatusCode::INVALID_ARGUMENT,
                    "invalid reflection request: no request set".to_owned(),
                ))
            }
        };
        Ok(ServerReflectionResponse {
            valid_host: req.host.clone(),
            original_request: Some(req).into(),
            message_response: Some(answer),
            ..Default::default()
        })
    }

    /// The file named `name` and its dependencies, or NOT_FOUND.
    fn file(&self, name: &str) -> Message_response {
        match self.files.get(name) {
            Some(protos) => Message_response::FileDescriptorResponse(FileDescriptorResponse {
                file_descriptor_proto: protos.clone(),
                ..Default::default()
            }),
            None => not_found(format!("file not found: {name}")),
        }
    }
}

/// `file` and the files it depends on, transitively, each once, the file
/// first: serialized `FileDescriptorProto`s.
fn with_dependencies(file: &FileDescriptor) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([file.clone()]);
    let mut protos = Vec::new();
    while let Some(file) = queue.pop_front() {
        if !seen.insert(file.name().to_owned()) {
            continue;
        }
        // Writing a generated descriptor to a Vec cannot fail: it has no unset required fields.
        protos.push(file.proto().write_to_bytes().unwrap_or_default());
        queue.extend(file.deps().iter().cloned());
    }
    protos
}

fn not_found(message: String) -> Message_response {
    Message_response::ErrorResponse(ErrorResponse {
        error_code: RpcStatusCode::NOT_FOUND.into(),
        error_message: message,
        ..Default::default()
    })
}

/// A bridging failure (which a valid message never meets) as the status it ends the call with.
fn internal(e: grpcio::Error) -> grpcio::Error {
    match e {
        e @ grpcio::Error::RpcFailure(_) => e,
        other => grpcio::Error::RpcFailure(RpcStatus::with_message(
            RpcStatusCode::INTERNAL,
            format!("reflection: {other}"),
        )),
    }
}

impl ServerReflection for ReflectionService {
    fn server_reflection_info<Req, Resp>(
        &mut self,
        ctx: RpcContext<'_>,
        requests: Requests<Req>,
        mut sink: DuplexReply<Resp>,
    ) where
        Req: SameWire<ServerReflectionRequest> + Message,
        Resp: SameWire<ServerReflectionResponse> + Message,
    {
        let method = String::from_utf8_lossy(ctx.method()).into_owned();
        let registry = registry();
        self.in_flight.spawn(&ctx, async move {
            let mut answers = requests.and_then(|req| {
                future::ready((|| {
                    let req = req.into_v1().map_err(internal)?;
                    debug!("reflection: {:?}", req.message_request);
                    let answer = registry.answer(req).map_err(grpcio::Error::RpcFailure)?;
                    let answer = Resp::from_v1(answer).map_err(internal)?;
                    Ok((answer, WriteFlags::default()))
                })())
            });
            match sink.send_all(&mut answers).await {
                Ok(()) => log_outcome(&method, sink.close().await),
                Err(e) => reject(&method, e, |status| sink.fail(status)).await,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::descriptor::FileDescriptorProto;

    fn ask(request: Message_request) -> Message_response {
        let req = ServerReflectionRequest {
            message_request: Some(request),
            ..Default::default()
        };
        registry().answer(req).unwrap().message_response.unwrap()
    }

    fn files_for_symbol(symbol: &str) -> Vec<String> {
        match ask(Message_request::FileContainingSymbol(symbol.to_owned())) {
            Message_response::FileDescriptorResponse(files) => files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    FileDescriptorProto::parse_from_bytes(bytes)
                        .unwrap()
                        .name()
                        .to_owned()
                })
                .collect(),
            other => panic!("{symbol}: {other:?}"),
        }
    }

    #[test]
    fn lists_every_service_served() {
        let Message_response::ListServicesResponse(list) =
            ask(Message_request::ListServices(String::new()))
        else {
            panic!("not a service list")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "messenger.LearningMessenger",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        );
    }

    #[test]
    fn finds_the_file_of_every_kind_of_symbol() {
        for symbol in [
            "messenger.LearningMessenger",
            "messenger.LearningMessenger.GetLearningStatus",
            "messenger.FeedUpdate",
            "messenger.FeedUpdate.user",
        ] {
            assert_eq!(files_for_symbol(symbol), ["messenger.proto"], "{symbol}");
        }
        for symbol in [
            "grpc.health.v1.Health.Watch",
            "grpc.health.v1.HealthCheckResponse.ServingStatus",
            "grpc.health.v1.HealthCheckResponse.SERVING",
            "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING",
        ] {
            assert_eq!(files_for_symbol(symbol), ["health.proto"], "{symbol}");
        }
        assert_eq!(
            files_for_symbol("grpc.reflection.v1alpha.ServerReflectionRequest.message_request"),
            ["reflection_v1alpha.proto"]
        );
    }

    #[test]
    fn what_is_not_there_is_not_found_in_stream() {
        for request in [
            Message_request::FileContainingSymbol("messenger.Nope".into()),
            Message_request::FileByFilename("nope.proto".into()),
            Message_request::AllExtensionNumbersOfType("messenger.Nope".into()),
            Message_request::FileContainingExtension(Default::default()),
        ] {
            match ask(request) {
                Message_response::ErrorResponse(e) => assert_eq!(e.error_code, 5),
                other => panic!("{other:?}"),
            }
        }
        let empty = registry().answer(ServerReflectionRequest::default());
        assert_eq!(empty.unwrap_err().code(), RpcStatusCode::INVALID_ARGUMENT);
    }

    #[test]
    fn dependencies_are_sent_transitively() {
        // The served files import nothing: one from protobuf's own shows the walk.
        let api = protobuf::well_known_types::api::file_descriptor();
        let names: Vec<_> = with_dependencies(api)
            .iter()
            .map(|bytes| {
                FileDescriptorProto::parse_from_bytes(bytes)
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect();
        assert_eq!(names[0], "google/protobuf/api.proto");
        assert!(names.contains(&"google/protobuf/type.proto".to_owned()));
        // type.proto's own imports, which api.proto does not name.
        assert!(names.contains(&"google/protobuf/any.proto".to_owned()));
        assert_eq!(names.len(), names.iter().collect::<HashSet<_>>().len());
    }
}
