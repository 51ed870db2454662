//! Each RPC's path (`/package.Service/Method`): the HTTP/2 `:path` a call is
//! routed by. The gRPC glue's method descriptors and the h2 load generator
//! both take them from here.

use protobuf::reflect::{FileDescriptor, MethodDescriptor};

/// `messenger.LearningMessenger`, the contract in `proto/messenger.proto`.
pub const LEARNING_MESSENGER: &str = "messenger.LearningMessenger";
pub const GET_LEARNING_STATUS: &str = "/messenger.LearningMessenger/GetLearningStatus";
pub const STREAM_LEARNINGS: &str = "/messenger.LearningMessenger/StreamLearnings";
pub const SUBMIT_RESEARCH_NOTES: &str = "/messenger.LearningMessenger/SubmitResearchNotes";
pub const COLLABORATIVE_FEED: &str = "/messenger.LearningMessenger/CollaborativeFeed";

/// `grpc.health.v1.Health`, the standard health protocol in `proto/health.proto`.
pub const HEALTH: &str = "grpc.health.v1.Health";
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
pub const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

/// `grpc.reflection.v1.ServerReflection`, server reflection in `proto/reflection_v1.proto`.
pub const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
pub const REFLECTION_V1_INFO: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/// `grpc.reflection.v1alpha.ServerReflection`, the same protocol under its
/// older name (`proto/reflection_v1alpha.proto`), which grpcurl 1.8 and
/// grpcio-reflection's client still speak.
pub const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";
pub const REFLECTION_V1ALPHA_INFO: &str =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// Every method of a contract's services, with its path, in the contract's order.
pub fn methods_of(file: &FileDescriptor) -> Vec<(String, MethodDescriptor)> {
    let package = file.package();
    file.services()
        .flat_map(|service| {
            let name = format!("{package}.{}", service.proto().name());
            service
                .methods()
                .map(move |method| (format!("/{name}/{}", method.proto().name()), method))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{health, messenger, reflection_v1, reflection_v1alpha};

    /// Every path named here is a method of its service in the contract, and
    /// every method of the contract has a path here.
    fn paths_of(file: &FileDescriptor) -> Vec<String> {
        methods_of(file).into_iter().map(|(path, _)| path).collect()
    }

    #[test]
    fn paths_match_the_contract() {
        assert_eq!(
            paths_of(messenger::file_descriptor()),
            [
                GET_LEARNING_STATUS,
                STREAM_LEARNINGS,
                SUBMIT_RESEARCH_NOTES,
                COLLABORATIVE_FEED
            ]
        );
        assert_eq!(
            paths_of(health::file_descriptor()),
            [HEALTH_CHECK, HEALTH_WATCH]
        );
        assert_eq!(
            paths_of(reflection_v1::file_descriptor()),
            [REFLECTION_V1_INFO]
        );
        assert_eq!(
            paths_of(reflection_v1alpha::file_descriptor()),
            [REFLECTION_V1ALPHA_INFO]
        );
        assert!(GET_LEARNING_STATUS.starts_with(&format!("/{LEARNING_MESSENGER}/")));
        assert!(HEALTH_CHECK.starts_with(&format!("/{HEALTH}/")));
        assert!(REFLECTION_V1_INFO.starts_with(&format!("/{REFLECTION_V1}/")));
        assert!(REFLECTION_V1ALPHA_INFO.starts_with(&format!("/{REFLECTION_V1ALPHA}/")));
    }
}
