"""The lab's client.py, the Python reference. Additions only: --target, a
delay scale (MESSENGER_DELAY_SCALE / --delay-scale), TLS (--tls-ca,
--tls-server-name; mutual TLS with --tls-cert and --tls-key), --room
(with --user, and --since to recover what was missed): instead of the demos,
chat in a feed room as `client chat --room` does, printing the same lines,
and --token-file: a bearer token sent on every call."""
import argparse
import os
import sys

import grpc
import time

# Import generated gRPC code
# These modules provide the typed Message classes and the Service Stub
import protos.messenger_pb2 as pb2
import protos.messenger_pb2_grpc as pb2_grpc

# Multiplies every simulated 1 s latency of the lab (0 disables them).
DELAY_SCALE = float(os.environ.get("MESSENGER_DELAY_SCALE", "1.0"))


def run_unary(stub):
    """1. UNARY: Basic Request-Response; the client waits for a single response."""
    print("--- Unary Request ---")
    response = stub.GetLearningStatus(pb2.StatusRequest(user_id="researcher-01"))
    print(f"Server Response: {response.message} (Active: {response.active})")


def run_server_streaming(stub):
    """2. SERVER STREAMING: Single request, stream of responses consumed with a for loop."""
    print("\n--- Server Streaming (Real-time updates) ---")
    responses = stub.StreamLearnings(pb2.TopicRequest(topic="gRPC Protocols"))
    for update in responses:
        print(f"[{update.timestamp}] Progress {update.progress}%: {update.content}")


def run_client_streaming(stub):
    """3. CLIENT STREAMING: Multiple requests from a generator, single final response."""
    print("\n--- Client Streaming (Uploading research notes) ---")

    def generate_notes():
        notes = [
            "Note 1: gRPC uses HTTP/2 Multiplexing",
            "Note 2: Built on Protocol Buffers",
            "Note 3: Binary TLV serialization",
            "Note 4: Typed interface contracts"
        ]
        for note in notes:
            # LATENCY SIMULATION: Simulating a human user or slow-moving data source
            time.sleep(1 * DELAY_SCALE)
            yield pb2.ResearchNote(text=note)

    response = stub.SubmitResearchNotes(generate_notes())
    print(f"Server Summary: {response.final_summary} (Total {response.count})")


def run_bidirectional_streaming(stub):
    """4. BI-DIRECTIONAL STREAMING: Continuous shared flow, echoes read while sending."""
    print("\n--- Bi-directional Streaming (Collaborative Feed) ---")

    def make_feed_requests():
        updates = [
            ("Engineer", "Initializing system..."),
            ("Lead", "Monitoring data flow..."),
            ("QA", "Verifying latency...")
        ]
        for user, msg in updates:
            # Continuous outgoing stream
            time.sleep(1 * DELAY_SCALE)
            yield pb2.FeedUpdate(user=user, message=msg)

    # Initializing the persistent pipe
    response_stream = stub.CollaborativeFeed(make_feed_requests())
    for resp in response_stream:
        # Reacting to server echoes in real-time
        print(f" [Feed Update] {resp.user}: {resp.message}")


def room_line(room, update):
    """The line `client chat --room` prints for an update received in a room."""
    if update.user == "System":
        message = update.message
        if message.startswith("Acknowledged ") and "'s update: " in message:
            return f" [Feed Update] {update.user}: {message}"
        if (message.endswith(" joined the room") or message.endswith(" left the room")
                or " was removed from the room: " in message):
            return f" [{room}] * {message}"
    return f" [{room}] {update.user}: {update.message}"


def chat_line(line, user):
    """A chat line as a FeedUpdate: `NAME: text` speaks as NAME (one word), else as `user`."""
    name, sep, text = line.partition(": ")
    if sep and name and not any(c.isspace() for c in name):
        return pb2.FeedUpdate(user=name, message=text)
    return pb2.FeedUpdate(user=user, message=line)


def run_room_chat(stub, room, user, since=None):
    """Each line of stdin sent to the feed room `room`; what the room sends printed as it arrives.
    With `since` (the number of the last event we have), the room first sends every later event
    it still keeps. The answer's room-seq (the number before its first message) goes to stderr."""
    def lines():
        for line in sys.stdin:
            line = line.rstrip("\r\n")
            if line.strip():
                yield chat_line(line, user)

    metadata = [("room", room)]
    # A name that can be a header names us in joins and leaves; else the server takes our first update's user.
    if user and user.isascii() and user.isprintable() and len(user) <= 64 and user == user.strip():
        metadata.append(("user", user))
    if since is not None:
        metadata.append(("room-since", str(since)))
    try:
        call = stub.CollaborativeFeed(lines(), metadata=metadata)
        for count, update in enumerate(call):
            if count == 0:
                # The headers come with the first message.
                seq = dict(call.initial_metadata()).get("room-seq")
                print(f"room-seq: {seq}", file=sys.stderr, flush=True)
            print(room_line(room, update))
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class Authorization(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token's header to every call."""

    def __init__(self, metadata):
        self.metadata = metadata

    def _with_token(self, details):
        return details._replace(metadata=list(details.metadata or []) + self.metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


if __name__ == '__main__':
    """
    STUB PATTERN: The LearningMessengerStub is our local proxy for the remote server.
    """
    parser = argparse.ArgumentParser(description="LearningMessenger gRPC client (Python reference)")
    parser.add_argument("--target", default="localhost:50051", help="server HOST:PORT (default localhost:50051)")
    parser.add_argument("--delay-scale", type=float, default=None,
                        help="multiplies the simulated 1 s delays (default $MESSENGER_DELAY_SCALE or 1.0; 0 disables)")
    parser.add_argument("--tls-ca", help="use TLS, trusting this CA certificate (PEM)")
    parser.add_argument("--tls-server-name", help="with --tls-ca: the name expected in the server's certificate")
    parser.add_argument("--tls-cert", help="mutual TLS: present this certificate chain (PEM); needs --tls-key and --tls-ca")
    parser.add_argument("--tls-key", help="the private key (PEM) of --tls-cert")
    parser.add_argument("--room", help="instead of the demos: chat in this feed room, one update per line of stdin")
    parser.add_argument("--user", help="with --room: who speaks (default $USER; with --token-file, the token's name)")
    parser.add_argument("--since", type=int,
                        help="with --room: the number of the last event already seen; the room first "
                             "sends every later one it keeps (header room-since)")
    parser.add_argument("--token-file", help="send this file's bearer token (a JWT) on every call")
    args = parser.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_ca is None and (args.tls_cert or args.tls_server_name):
        parser.error("--tls-cert and --tls-server-name need --tls-ca")
    metadata = []
    if args.token_file:
        with open(args.token_file) as f:
            metadata.append(("authorization", "Bearer " + f.read().strip()))
    if args.user is None:
        # In a room a token names us: updates without a user speak as it.
        args.user = "" if args.token_file else os.environ.get("USER") or "anonymous"
    if args.delay_scale is not None:
        DELAY_SCALE = args.delay_scale
    sys.stdout.reconfigure(line_buffering=True)
    # Connect to the orchestrator via a persistent HTTP/2 channel
    if args.tls_ca is None:
        channel = grpc.insecure_channel(args.target)
    else:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.tls_ca),
            private_key=read(args.tls_key) if args.tls_key else None,
            certificate_chain=read(args.tls_cert) if args.tls_cert else None)
        options = [("grpc.ssl_target_name_override", args.tls_server_name)] if args.tls_server_name else []
        channel = grpc.secure_channel(args.target, credentials, options)
    if metadata:
        # The token on every call, as a client interceptor adds it.
        channel = grpc.intercept_channel(channel, Authorization(metadata))
    with channel:
        stub = pb2_grpc.LearningMessengerStub(channel)
        if args.room is not None:
            run_room_chat(stub, args.room, args.user, args.since)
            sys.exit(0)
        # Execute the multi-modal driver suite
        run_unary(stub)
        run_server_streaming(stub)
        run_client_streaming(stub)
        run_bidirectional_streaming(stub)
