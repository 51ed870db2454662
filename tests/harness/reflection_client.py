"""Server reflection through grpcio's own client, for tests/it/reflection.rs.

    python3 reflection_client.py TARGET resolve   # v1alpha: grpcio-reflection's descriptor database
    python3 reflection_client.py TARGET v1        # v1: one stream, several requests
    python3 reflection_client.py TARGET v1alpha   # the same requests over v1alpha

Each prints one JSON object on stdout. grpcio-reflection ships only v1alpha
stubs; v1 has the same messages in another package, so the v1 calls reuse
them, with the v1 method path (the wire format is identical).
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 10


def resolve(channel):
    """Every service the server lists, resolved with its methods' types."""
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(db)
    services = {}
    for name in db.get_services():
        service = pool.FindServiceByName(name)
        services[name] = {
            "file": service.file.name,
            "methods": {
                m.name: [m.input_type.full_name, m.output_type.full_name]
                for m in service.methods
            },
        }
    feed = pool.FindMessageTypeByName("messenger.FeedUpdate")
    return {"services": services, "feed_update_fields": [f.name for f in feed.fields]}


def describe(response):
    """A response, as the test checks it."""
    kind = response.WhichOneof("message_response")
    out = {"kind": kind}
    if kind == "list_services_response":
        out["services"] = [s.name for s in response.list_services_response.service]
    elif kind == "file_descriptor_response":
        files = []
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.append(
                {
                    "name": proto.name,
                    "package": proto.package,
                    "messages": [m.name for m in proto.message_type],
                    "services": [s.name for s in proto.service],
                }
            )
        out["files"] = files
    elif kind == "error_response":
        out["error_code"] = response.error_response.error_code
        out["error_message"] = response.error_response.error_message
    return out


def session(channel, path):
    """Several requests on one stream: a list, a symbol, a missing one, a list again."""
    call = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="messenger.LearningMessenger.CollaborativeFeed"
        ),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="messenger.NoSuchThing"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="health.proto"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
    ]
    return {"responses": [describe(r) for r in call(iter(requests), timeout=TIMEOUT)]}


def main():
    target, mode = sys.argv[1], sys.argv[2]
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        if mode == "resolve":
            result = resolve(channel)
        elif mode == "v1":
            result = session(channel, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        elif mode == "v1alpha":
            result = session(
                channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
            )
        else:
            sys.exit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
