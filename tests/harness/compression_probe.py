"""A raw HTTP/2 gRPC probe (the h2 package, no grpc library): what a server
compresses, as seen on the wire. Each CALL is one call on a fresh cleartext
connection, written METHOD[:ACCEPT[:SEND[:SIZE]]]:

  METHOD      unary (GetLearningStatus), stream (StreamLearnings),
              notes (SubmitResearchNotes), feed (CollaborativeFeed), with the
              lab's requests; with SIZE, stream asks about a topic of SIZE
              bytes of "a", notes sends one note of SIZE bytes of "a", feed
              sends the lab's three users each a message of SIZE bytes of "a"
              (the answers echo them: big enough, they are worth compressing)
  ACCEPT      the grpc-accept-encoding header sent, e.g. gzip, deflate,
              identity, "gzip,deflate"; "-" to send none [default: gzip]
  SEND        what the requests are compressed with: identity, gzip, deflate
              [default: identity]

For each call it prints one JSON line: the response's grpc-encoding header,
each message's compressed flag (the first byte of its 5-byte prefix), the
decoded answers (long strings cut), the grpc-status and grpc-message, and
how many bytes of request went on the wire. The messages are encoded by hand
(every field is a string, a bool or an int32), so no generated stubs are needed.

  python3 compression_probe.py --target 127.0.0.1:50051 unary:gzip stream:identity:identity:2000 \
      notes:gzip:gzip:67108864

C-core sends a message uncompressed (flag 0, under a grpc-encoding header
naming the algorithm) when compressing would not make it smaller, as with
every answer of the lab's requests: they are a few dozen bytes.
"""
import argparse
import gzip
import json
import socket
import sys
import zlib

import h2.config
import h2.connection
import h2.events

SERVICE = "/messenger.LearningMessenger/"
FRAME_TYPES = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM", 8: "WINDOW_UPDATE"}
LAB_NOTES = [
    "Note 1: gRPC uses HTTP/2 Multiplexing",
    "Note 2: Built on Protocol Buffers",
    "Note 3: Binary TLV serialization",
    "Note 4: Typed interface contracts",
]
LAB_FEED = [
    ("Engineer", "Initializing system..."),
    ("Lead", "Monitoring data flow..."),
    ("QA", "Verifying latency..."),
]
# What a decoded string may show of itself; longer ones are cut and their length given.
SHOWN = 120


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(number, value):
    data = value if isinstance(value, bytes) else value.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def read_varint(data, i):
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def decode(data, names):
    """A message of string, bool and int32 fields: {name: value}."""
    fields = {}
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        name = names.get(number, str(number))
        if wire == 0:
            fields[name], i = read_varint(data, i)
        elif wire == 2:
            length, i = read_varint(data, i)
            text = data[i : i + length].decode("utf-8", "replace")
            i += length
            if len(text) > SHOWN:
                text = f"{text[:SHOWN]}... ({length} bytes)"
            fields[name] = text
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def compress(algorithm, data):
    if algorithm == "gzip":
        return gzip.compress(data, compresslevel=9)
    if algorithm == "deflate":  # gRPC's "deflate" is the zlib format
        return zlib.compress(data, 9)
    raise ValueError(algorithm)


def decompress(algorithm, data):
    if algorithm == "gzip":
        return gzip.decompress(data)
    if algorithm == "deflate":
        return zlib.decompress(data)
    raise ValueError(f"compressed message with grpc-encoding {algorithm!r}")


def requests(method, size):
    """The method's path, its request messages, and the answer's field names."""
    filler = b"a" * size
    if method == "unary":
        return "GetLearningStatus", [string_field(1, "researcher-01")], {1: "message", 2: "active"}
    if method == "stream":
        topic = filler or "gRPC Protocols"
        return "StreamLearnings", [string_field(1, topic)], {1: "content", 2: "progress", 3: "timestamp"}
    if method == "notes":
        notes = [filler] if size else LAB_NOTES
        return "SubmitResearchNotes", [string_field(1, n) for n in notes], {1: "count", 2: "final_summary"}
    if method == "feed":
        return (
            "CollaborativeFeed",
            [string_field(1, user) + string_field(2, filler or text) for user, text in LAB_FEED],
            {1: "user", 2: "message"},
        )
    raise ValueError(f"unknown method {method!r}")


class Call:
    def __init__(self, target, timeout):
        host, port = target.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        # Room for big answers without waiting on our WINDOW_UPDATEs.
        self.conn.increment_flow_control_window(16 * 1024 * 1024)
        self.flush()
        self.headers = None
        self.trailers = None
        self.body = bytearray()
        self.ended = False
        self.reset = None
        self.stream_id = None
        self.inbuf = bytearray()
        # The frames of our stream that came after it ended, by type.
        self.after_end = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Reads once and handles what came, a frame at a time: once the call
        has ended, later frames are only noted (C-core 1.56 may repeat a
        trailers-only HEADERS and RST_STREAM on a finished stream, which h2
        refuses as a protocol error)."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.inbuf += data
        while len(self.inbuf) >= 9:
            length = int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < 9 + length:
                break
            frame = bytes(self.inbuf[: 9 + length])
            del self.inbuf[: 9 + length]
            stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF
            if self.ended and stream_id == self.stream_id:
                self.after_end.append(FRAME_TYPES.get(frame[3], str(frame[3])))
                continue
            self.handle(frame)
        self.flush()

    def handle(self, frame):
        for event in self.conn.receive_data(frame):
            if isinstance(event, h2.events.ResponseReceived):
                self.headers = dict(event.headers)
            elif isinstance(event, h2.events.TrailersReceived):
                self.trailers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended = True
            elif isinstance(event, h2.events.StreamReset):
                self.ended = True
                self.reset = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.ended = True

    def send(self, data, end):
        """Sends `data` as the flow-control windows allow; False if the stream ended first."""
        view = memoryview(data)
        while view:
            if self.ended:
                return False
            window = min(self.conn.local_flow_control_window(self.stream_id), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.pump()
                continue
            chunk, view = view[:window], view[window:]
            self.conn.send_data(self.stream_id, bytes(chunk), end_stream=end and not view)
            self.flush()
        if end and not data:
            self.conn.end_stream(self.stream_id)
            self.flush()
        return True

    def run(self, target, path, accept, send, messages):
        self.stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", target),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        if accept != "-":
            headers.append(("grpc-accept-encoding", accept))
        if send != "identity":
            headers.append(("grpc-encoding", send))
        self.conn.send_headers(self.stream_id, headers)
        self.flush()
        sent = 0
        for n, message in enumerate(messages):
            flag, payload = (0, message) if send == "identity" else (1, compress(send, message))
            frame = bytes([flag]) + len(payload).to_bytes(4, "big") + payload
            sent += len(frame)
            if not self.send(frame, end=n == len(messages) - 1):
                break
        while not self.ended:
            self.pump()
        return sent


def messages_of(body):
    """The length-prefixed messages of a response body: [(flag, payload)]."""
    out = []
    i = 0
    while i + 5 <= len(body):
        flag = body[i]
        length = int.from_bytes(body[i + 1 : i + 5], "big")
        out.append((flag, bytes(body[i + 5 : i + 5 + length])))
        i += 5 + length
    if i != len(body):
        raise ValueError(f"{len(body) - i} bytes of a truncated message")
    return out


def probe(target, spec, timeout):
    parts = spec.split(":")
    method = parts[0]
    accept = parts[1] if len(parts) > 1 else "gzip"
    send = parts[2] if len(parts) > 2 else "identity"
    size = int(parts[3]) if len(parts) > 3 else 0
    name, messages, names = requests(method, size)
    call = Call(target, timeout)
    try:
        sent = call.run(target, SERVICE + name, accept, send, messages)
    finally:
        call.sock.close()
    headers = call.headers or {}
    # A trailers-only answer has grpc-status in its headers.
    trailers = call.trailers or (headers if "grpc-status" in headers else {})
    encoding = headers.get("grpc-encoding")
    flags, answers = [], []
    for flag, payload in messages_of(call.body):
        flags.append(flag)
        answers.append(decode(decompress(encoding, payload) if flag else payload, names))
    status = trailers.get("grpc-status")
    return {
        "call": spec,
        "method": name,
        "sent_grpc_accept_encoding": None if accept == "-" else accept,
        "sent_grpc_encoding": None if send == "identity" else send,
        "request_wire_bytes": sent,
        "response_wire_bytes": len(call.body),
        "grpc_encoding": encoding,
        "grpc_accept_encoding": headers.get("grpc-accept-encoding"),
        "flags": flags,
        "answers": answers,
        "grpc_status": None if status is None else int(status),
        "grpc_message": trailers.get("grpc-message"),
        "reset": call.reset,
        "frames_after_end": call.after_end,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one read may wait")
    parser.add_argument("calls", nargs="+", metavar="CALL")
    args = parser.parse_args()
    for spec in args.calls:
        print(json.dumps(probe(args.target, spec, args.timeout)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
