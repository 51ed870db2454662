//! Each known method's pattern, from the contracts' descriptors (the lab's
//! messenger, health and reflection), and the refusal of the ones whose
//! requests stream: gRPC-Web cannot carry them.

use std::collections::HashMap;

use messenger_lab::method_path;
use messenger_lab::proto::{health, messenger, reflection_v1, reflection_v1alpha};
use protobuf::reflect::FileDescriptor;

/// The four gRPC call patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidirectional,
}

impl Pattern {
    fn of(client_streaming: bool, server_streaming: bool) -> Pattern {
        match (client_streaming, server_streaming) {
            (false, false) => Pattern::Unary,
            (false, true) => Pattern::ServerStreaming,
            (true, false) => Pattern::ClientStreaming,
            (true, true) => Pattern::Bidirectional,
        }
    }

    /// Whether gRPC-Web can carry it: a browser's `fetch` sends the whole
    /// request body before it reads the response, so the request cannot stream.
    pub fn fits_grpc_web(self) -> bool {
        matches!(self, Pattern::Unary | Pattern::ServerStreaming)
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Unary => "unary",
            Pattern::ServerStreaming => "server streaming",
            Pattern::ClientStreaming => "client streaming",
            Pattern::Bidirectional => "bidirectional streaming",
        }
    }
}

/// The patterns of every method the gateway knows, by path (`/package.Service/Method`).
#[derive(Clone, Debug)]
pub struct Methods(HashMap<String, Pattern>);

impl Methods {
    /// The methods of the contracts in `proto/`.
    pub fn known() -> Methods {
        let files = [
            messenger::file_descriptor(),
            health::file_descriptor(),
            reflection_v1::file_descriptor(),
            reflection_v1alpha::file_descriptor(),
        ];
        Methods(files.into_iter().flat_map(patterns_of).collect())
    }

    pub fn pattern(&self, path: &str) -> Option<Pattern> {
        self.0.get(path).copied()
    }

    /// Why a call of `path` cannot go over gRPC-Web on fetch, if it cannot; unknown
    /// paths go on to the upstream, which says whether it has them.
    pub fn refusal(&self, path: &str) -> Option<String> {
        let pattern = self
            .pattern(path)
            .filter(|pattern| !pattern.fits_grpc_web())?;
        Some(format!(
            "{path} is {}, which gRPC-Web cannot carry over fetch: a browser's fetch sends the \
             whole request before it reads the response; open a WebSocket to the same path \
             (subprotocol grpc-websockets) or call it over native gRPC (HTTP/2)",
            pattern.name()
        ))
    }
}

fn patterns_of(file: &FileDescriptor) -> Vec<(String, Pattern)> {
    method_path::methods_of(file)
        .into_iter()
        .map(|(path, method)| {
            let proto = method.proto();
            let pattern = Pattern::of(proto.client_streaming(), proto.server_streaming());
            (path, pattern)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use messenger_lab::method_path::*;

    use super::*;

    #[test]
    fn the_lab_s_four_patterns() {
        let methods = Methods::known();
        assert_eq!(methods.pattern(GET_LEARNING_STATUS), Some(Pattern::Unary));
        assert_eq!(
            methods.pattern(STREAM_LEARNINGS),
            Some(Pattern::ServerStreaming)
        );
        assert_eq!(
            methods.pattern(SUBMIT_RESEARCH_NOTES),
            Some(Pattern::ClientStreaming)
        );
        assert_eq!(
            methods.pattern(COLLABORATIVE_FEED),
            Some(Pattern::Bidirectional)
        );
        assert_eq!(
            methods.pattern(HEALTH_WATCH),
            Some(Pattern::ServerStreaming)
        );
        assert_eq!(
            methods.pattern(REFLECTION_V1_INFO),
            Some(Pattern::Bidirectional)
        );
    }

    #[test]
    fn only_streamed_requests_are_refused() {
        let methods = Methods::known();
        assert_eq!(methods.refusal(GET_LEARNING_STATUS), None);
        assert_eq!(methods.refusal(STREAM_LEARNINGS), None);
        assert_eq!(methods.refusal("/no.Such/Method"), None);
        let refusal = methods.refusal(SUBMIT_RESEARCH_NOTES).unwrap();
        assert!(
            refusal.contains("is client streaming, which gRPC-Web cannot carry"),
            "{refusal}"
        );
        let refusal = methods.refusal(COLLABORATIVE_FEED).unwrap();
        assert!(refusal.contains("is bidirectional streaming"), "{refusal}");
    }
}
