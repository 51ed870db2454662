//! The contract's messages by method: a stream's `:path` and the direction
//! pick the request or the response type, and a message's bytes become its
//! text (`topic: "gRPC Protocols"`) and its protobuf JSON, whose size beside
//! the binary one is the lab's "information tax".

use std::collections::HashMap;
use std::io::Read;

use protobuf::reflect::{FileDescriptor, MessageDescriptor};

use messenger_lab::proto::{health, messenger, reflection_v1, reflection_v1alpha};

/// The request and response types of one method.
#[derive(Clone)]
pub struct Method {
    pub request: MessageDescriptor,
    pub response: MessageDescriptor,
}

/// Every method of the lab's `.proto` files, by `:path`.
pub struct Contract {
    methods: HashMap<String, Method>,
}

impl Contract {
    /// The contract (messenger.proto), health and both reflection versions.
    pub fn lab() -> Contract {
        let files = [
            messenger::file_descriptor(),
            health::file_descriptor(),
            reflection_v1::file_descriptor(),
            reflection_v1alpha::file_descriptor(),
        ];
        Contract::of(files.into_iter().cloned())
    }

    pub fn of(files: impl IntoIterator<Item = FileDescriptor>) -> Contract {
        let mut methods = HashMap::new();
        for file in files {
            let package = file.package().to_owned();
            for service in file.services() {
                let service_name = match package.as_str() {
                    "" => service.proto().name().to_owned(),
                    package => format!("{package}.{}", service.proto().name()),
                };
                for method in service.methods() {
                    methods.insert(
                        format!("/{service_name}/{}", method.proto().name()),
                        Method {
                            request: method.input_type(),
                            response: method.output_type(),
                        },
                    );
                }
            }
        }
        Contract { methods }
    }

    pub fn method(&self, path: &str) -> Option<&Method> {
        self.methods.get(path)
    }
}

/// A message decoded with its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// protobuf's text format, on one line (when asked for).
    pub text: Option<String>,
    /// protobuf's JSON mapping, as `protobuf_json_mapping` prints it.
    pub json: String,
}

/// Decodes `bytes` as `descriptor`'s message.
pub fn decode(descriptor: &MessageDescriptor, bytes: &[u8], text: bool) -> Result<Decoded, String> {
    let message = descriptor
        .parse_from_bytes(bytes)
        .map_err(|e| format!("not a valid {}: {e}", descriptor.full_name()))?;
    let json = protobuf_json_mapping::print_to_string(&*message)
        .map_err(|e| format!("no JSON for this {}: {e}", descriptor.full_name()))?;
    Ok(Decoded {
        text: text.then(|| protobuf::text_format::print_to_string(&*message)),
        json,
    })
}

/// A compressed message's bytes, inflated as `grpc-encoding` says, at most
/// `cap` of them (a compression bomb costs the tap no more than that).
pub fn decompress(encoding: Option<&str>, bytes: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let limit = cap as u64 + 1;
    let read = match encoding {
        Some("gzip") => flate2::read::GzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out),
        // gRPC's "deflate" is zlib's format (RFC 1950), as C-core sends it.
        Some("deflate") => flate2::read::ZlibDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out),
        Some(other) => {
            return Err(format!(
                "compressed with {other:?}, which the tap cannot inflate"
            ))
        }
        None => return Err("compressed flag set, but the stream named no grpc-encoding".to_owned()),
    };
    read.map_err(|e| format!("cannot inflate ({}): {e}", encoding.unwrap_or_default()))?;
    if out.len() > cap {
        return Err(format!(
            "inflates to more than the tap's {cap}-byte cap: not decoded"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger_lab::method_path;
    use messenger_lab::proto::messenger::TopicRequest;
    use protobuf::Message;
    use std::io::Write;

    #[test]
    fn paths_pick_request_and_response_types() {
        let contract = Contract::lab();
        let method = contract.method(method_path::STREAM_LEARNINGS).unwrap();
        assert_eq!(method.request.full_name(), "messenger.TopicRequest");
        assert_eq!(method.response.full_name(), "messenger.LearningUpdate");
        assert!(contract.method(method_path::HEALTH_CHECK).is_some());
        assert!(contract
            .method(method_path::REFLECTION_V1ALPHA_INFO)
            .is_some());
        assert!(contract.method("/other.Service/Method").is_none());
    }

    #[test]
    fn a_message_as_text_and_json() {
        let contract = Contract::lab();
        let method = contract.method(method_path::STREAM_LEARNINGS).unwrap();
        let request = TopicRequest {
            topic: "gRPC Protocols".into(),
            ..Default::default()
        };
        let bytes = request.write_to_bytes().unwrap();
        let decoded = decode(&method.request, &bytes, true).unwrap();
        assert_eq!(decoded.text.as_deref(), Some("topic: \"gRPC Protocols\""));
        assert_eq!(decoded.json, "{\"topic\": \"gRPC Protocols\"}");
        assert!(decode(&method.request, &[0x0a, 0x09], true).is_err());
    }

    #[test]
    fn compressed_messages_inflate_within_the_cap() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&[b'x'; 1000]).unwrap();
        let bytes = gzip.finish().unwrap();
        assert_eq!(decompress(Some("gzip"), &bytes, 1000).unwrap().len(), 1000);
        assert!(decompress(Some("gzip"), &bytes, 999)
            .unwrap_err()
            .contains("cap"));
        assert!(decompress(Some("snappy"), &bytes, 1000).is_err());
        assert!(decompress(Some("deflate"), &bytes, 1000).is_err());
    }
}
