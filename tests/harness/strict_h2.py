#!/usr/bin/env python3
"""Calls a server must refuse or cut, each watched by a strict HTTP/2 client.

RFC 9113 gives a stream one end: nothing may follow a RST_STREAM, and after
END_STREAM only a RST_STREAM may (a server that has answered asks the client
to stop sending, 8.1). Each case opens its own connection to a gRPC server
on loopback, makes the call(s) it names, and watches the call's stream frame
by frame, twice: every byte the server sends is fed to h2 (client side),
which raises or resets on a frame after the end, and the frames are also
checked here. One JSON object per case on stdout:

  case, frames      the server's frames on the stream, in order
  trailers          HEADERS frames with END_STREAM (one expected)
  rst_stream        the codes of the server's RST_STREAMs
  grpc_status, grpc_message   from the trailers
  h2_errors         what h2 raised, and resets it sent (STREAM_CLOSED)
  violations        each breach of "one end per stream"; empty when none

Exits 1 if any case has a violation, 2 if the server cannot be reached.
Cases are plain functions in CASES: adding one (a refusal of a new
feature) is a function and a line. The case `call` makes any one call that
the flags describe (--path, --header, --message, --open).

    python3 tests/harness/strict_h2.py --port 50051 bomb oversize deadline
    python3 tests/harness/strict_h2.py --port 50051 call --path /messenger.LearningMessenger/GetLearningStatus \
        --header "authorization=Bearer ..." --message 0a03616461
    python3 tests/harness/strict_h2.py --list
"""

import argparse
import gzip
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.exceptions
from h2.errors import ErrorCodes
from hpack import Decoder

from floods import FRAME_TYPES, SERVICE, code_name, grpc_message, topic_request

END_STREAM = 0x1
END_HEADERS = 0x4


def field(number: int, value: bytes) -> bytes:
    """A protobuf length-delimited field: a string or bytes."""
    out = bytearray([(number << 3) | 2])
    n = len(value)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + value


def compressed_message(payload: bytes) -> bytes:
    """A gRPC message with the compressed flag, gzip."""
    data = gzip.compress(payload, compresslevel=9)
    return b"\x01" + struct.pack(">I", len(data)) + data


class Watched:
    """One connection: h2 builds our frames and judges the server's; the
    server's frames on each stream are also logged here, in order."""

    def __init__(self, args):
        self.args = args
        self.sock = socket.create_connection((args.host, args.port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config)
        self.h2.initiate_connection()
        self.decoder = Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.buf = bytearray()
        self.block = None  # (stream, flags, bytes) of a header block in progress
        self.streams = {}  # stream id -> list of frame records
        self.we_reset = {}  # stream id -> index in its log when we sent RST_STREAM
        self.h2_errors = []
        self.h2_dead = False
        self.closed = None
        self.flush()

    def headers(self, method, extra=()):
        return [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method if method.startswith("/") else SERVICE + method),
            (":authority", f"{self.args.host}:{self.args.port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *self.args.header,
            *extra,
        ]

    def start(self, method, extra=()) -> int:
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream, self.headers(method, extra))
        self.streams[stream] = []
        self.flush()
        return stream

    def send(self, stream, message: bytes, end=False):
        # h2 respects flow control: big messages go out as the window opens.
        view = memoryview(message)
        while True:
            if self.stream_ended(stream) or self.closed:
                return  # the server ended it (at a prefix, say): nothing more may be sent
            window = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size)
            if window > 0 or not view:
                chunk = view[:window]
                view = view[len(chunk) :]
                self.h2.send_data(stream, bytes(chunk), end_stream=end and not view)
                self.flush()
                if not view:
                    return
            if self.stream_ended(stream) or self.closed:
                return  # the server ended it: nothing more may be sent
            self.read(0.2)

    def reset(self, stream):
        self.we_reset[stream] = len(self.streams[stream])
        self.h2.reset_stream(stream, ErrorCodes.CANCEL)
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        self.note_own_resets(data)
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.closed = self.closed or f"send: {type(e).__name__}"

    def note_own_resets(self, data: bytes):
        """h2 resets a stream (STREAM_CLOSED) on which the server sent after its end."""
        i = 0
        while i + 9 <= len(data):
            length = int.from_bytes(data[i : i + 3], "big")
            stream = int.from_bytes(data[i + 5 : i + 9], "big") & 0x7FFFFFFF
            if data[i + 3] == 3 and stream not in self.we_reset:
                code = code_name(int.from_bytes(data[i + 9 : i + 13], "big"))
                self.h2_errors.append(f"h2 sent RST_STREAM({code}) on stream {stream}")
            i += 9 + length

    def read(self, timeout):
        """Reads what comes within `timeout`."""
        end = time.monotonic() + timeout
        while not self.closed:
            left = end - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                return
            try:
                data = self.sock.recv(1 << 20)
            except OSError as e:
                self.closed = f"recv: {type(e).__name__}"
                return
            if not data:
                self.closed = "EOF"
                return
            self.feed(data)

    def feed(self, data: bytes):
        if not self.h2_dead:
            try:
                self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                # A connection error: h2 sends GOAWAY and reads no more.
                self.h2_errors.append(f"{type(e).__name__}: {e}")
                self.h2_dead = True
            self.flush()
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buf[9 : 9 + length])
            del self.buf[: 9 + length]
            self.frame(ftype, flags, stream, payload)

    def frame(self, ftype, flags, stream, payload):
        if ftype == 1:  # HEADERS: decode to keep HPACK in step, whoever it is for
            if flags & 0x8:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & 0x20:
                payload = payload[5:]
            self.block = (stream, flags, bytearray(payload))
            if flags & END_HEADERS:
                self.header_block_done()
            return
        if ftype == 9 and self.block is not None:
            self.block[2].extend(payload)
            if flags & END_HEADERS:
                self.header_block_done()
            return
        if stream in self.streams:
            record = {"type": FRAME_TYPES.get(ftype, f"type{ftype}"), "end_stream": ftype == 0 and bool(flags & END_STREAM)}
            if ftype == 3 and len(payload) >= 4:
                record["code"] = code_name(int.from_bytes(payload[:4], "big"))
            self.streams[stream].append(record)

    def header_block_done(self):
        stream, flags, block = self.block
        self.block = None
        try:
            fields = self.decoder.decode(bytes(block), raw=False)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            fields = [("undecodable", type(e).__name__)]
        if stream in self.streams:
            self.streams[stream].append({"type": "HEADERS", "end_stream": bool(flags & END_STREAM), "fields": fields})

    def stream_ended(self, stream) -> bool:
        return any(f["type"] == "RST_STREAM" or f["end_stream"] for f in self.streams[stream])

    def until_ended(self, stream, seconds):
        """Reads until the stream has ended (or `seconds`), then a little more
        to catch anything sent after the end."""
        end = time.monotonic() + seconds
        while not self.stream_ended(stream) and not self.closed and time.monotonic() < end:
            self.read(min(0.2, end - time.monotonic()))
        self.read(self.args.after)

    def verdict(self, case, stream, expect_end=True):
        frames = self.streams[stream]
        violations = []
        ended_by = None
        for i, frame in enumerate(frames):
            name = frame["type"] + (f"({frame['code']})" if "code" in frame else "")
            if ended_by == "RST_STREAM":
                violations.append(f"{name} after RST_STREAM")
            elif ended_by == "END_STREAM" and frame["type"] != "RST_STREAM":
                violations.append(f"{name} after END_STREAM")
            if frame["type"] == "RST_STREAM":
                ended_by = "RST_STREAM"
            elif frame["end_stream"] and ended_by is None:
                ended_by = "END_STREAM"
        trailers = [f for f in frames if f["type"] == "HEADERS" and f["end_stream"]]
        if len(trailers) > 1:
            violations.append(f"{len(trailers)} trailers")
        if stream in self.we_reset:
            after = frames[self.we_reset[stream] :]
            if after:
                violations.append(f"{len(after)} frame(s) after our RST_STREAM")
        elif expect_end and ended_by is None:
            violations.append("the stream never ended" + (f" (connection {self.closed})" if self.closed else ""))
        violations += self.h2_errors
        fields = dict(trailers[0]["fields"]) if trailers else {}
        return {
            "case": case,
            "stream": stream,
            "frames": [
                f["type"] + (f"({f['code']})" if "code" in f else "") + ("+END_STREAM" if f["end_stream"] else "")
                for f in frames
            ],
            "trailers": len(trailers),
            "rst_stream": [f["code"] for f in frames if f["type"] == "RST_STREAM"],
            "grpc_status": int(fields["grpc-status"]) if "grpc-status" in fields else None,
            "grpc_message": fields.get("grpc-message"),
            "h2_errors": self.h2_errors,
            "closed_by_server": self.closed,
            "violations": violations,
        }

    def close(self):
        try:
            self.h2.close_connection()
            self.flush()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.sock.close()


def unary(conn, method, message, extra=()):
    stream = conn.start(method, extra)
    conn.send(stream, message, end=True)
    conn.until_ended(stream, conn.args.seconds)
    return stream


# --- the cases ------------------------------------------------------------------
# Each takes the connection and returns the stream to judge (and whether the
# server must end it: not when we cancel).


def ok(conn):
    """A valid GetLearningStatus call: answered, one trailers (status 0)."""
    return unary(conn, "GetLearningStatus", grpc_message(field(1, b"strict")))


def oversize(conn):
    """A request one byte over --max-message-bytes, not compressed (RESOURCE_EXHAUSTED)."""
    return unary(conn, "GetLearningStatus", grpc_message(field(1, b"x" * conn.args.max_message_bytes)))


def oversize_gzip(conn):
    """A gzip request over the limit both compressed and decompressed (RESOURCE_EXHAUSTED)."""
    noise = os.urandom(conn.args.max_message_bytes + 1024)
    return unary(conn, "GetLearningStatus", compressed_message(field(1, noise)), [("grpc-encoding", "gzip")])


def bomb(conn):
    """64 KiB of gzip that inflates to 64 MiB (RESOURCE_EXHAUSTED once decompressed)."""
    return unary(conn, "GetLearningStatus", compressed_message(b"\x00" * (64 << 20)), [("grpc-encoding", "gzip")])


def malformed(conn):
    """Bytes that are not a StatusRequest (INTERNAL, from the service's decoder)."""
    return unary(conn, "GetLearningStatus", grpc_message(b"\x0a\xff\xff\xff\xff\x0f"))


def malformed_gzip(conn):
    """A message flagged gzip whose bytes are not gzip (INTERNAL, from C-core)."""
    junk = b"not gzip at all" * 10
    return unary(conn, "GetLearningStatus", b"\x01" + struct.pack(">I", len(junk)) + junk, [("grpc-encoding", "gzip")])


def oversize_upload(conn):
    """SubmitResearchNotes whose second note is over the limit, the upload still open (RESOURCE_EXHAUSTED)."""
    stream = conn.start("SubmitResearchNotes")
    conn.send(stream, grpc_message(field(1, b"first")))
    conn.send(stream, grpc_message(field(1, b"y" * conn.args.max_message_bytes)))
    conn.until_ended(stream, conn.args.seconds)
    return stream


def declared(conn, method, flag, first=b"", extra=()):
    """A call whose message declares --declared bytes in its length prefix
    (after `first`, a valid message) and sends --declared-sent of them: the
    server must refuse it at the prefix, before the body."""
    stream = conn.start(method, extra)
    prefix = bytes([flag]) + struct.pack(">I", conn.args.declared)
    conn.send(stream, first + prefix + b"z" * conn.args.declared_sent)
    conn.until_ended(stream, conn.args.seconds)
    return stream


def declared_oversize(conn):
    """GetLearningStatus declaring 1 GiB in its prefix, then sending part of it (RESOURCE_EXHAUSTED at the prefix)."""
    return declared(conn, "GetLearningStatus", 0)


def declared_oversize_gzip(conn):
    """The same, flagged gzip: the compressed size declared is over the limit (RESOURCE_EXHAUSTED at the prefix)."""
    return declared(conn, "GetLearningStatus", 1, extra=[("grpc-encoding", "gzip")])


def declared_oversize_upload(conn):
    """SubmitResearchNotes: a valid note, then one declaring 1 GiB (RESOURCE_EXHAUSTED at its prefix)."""
    return declared(conn, "SubmitResearchNotes", 0, first=grpc_message(field(1, b"first")))


def declared_oversize_feed(conn):
    """CollaborativeFeed: a valid update, then a gzip one declaring 1 GiB (RESOURCE_EXHAUSTED at its prefix)."""
    first = grpc_message(field(1, b"strict") + field(2, b"hi"))
    return declared(conn, "CollaborativeFeed", 1, first=first, extra=[("grpc-encoding", "gzip")])


def over_budget(conn):
    """A 4 MiB request while two others hold a budget of 8 MiB (--max-request-bytes-in-flight; RESOURCE_EXHAUSTED at its prefix)."""
    for _ in range(2):
        holder = conn.start("SubmitResearchNotes")
        # Declared and let in, but not sent whole: held in the budget.
        conn.send(holder, b"\x00" + struct.pack(">I", 4 << 20) + b"h" * 1024)
    conn.read(0.3)
    stream = conn.start("GetLearningStatus")
    conn.send(stream, b"\x00" + struct.pack(">I", 4 << 20) + b"o" * 1024)
    conn.until_ended(stream, conn.args.seconds)
    return stream


def big_header(conn):
    """A request whose header list (32 KiB) is over the server's MAX_HEADER_LIST_SIZE (RESOURCE_EXHAUSTED)."""
    return unary(conn, "GetLearningStatus", grpc_message(b""), [("x-big", "b" * (32 << 10))])


def unimplemented(conn):
    """A method the server does not have (UNIMPLEMENTED)."""
    return unary(conn, "/messenger.LearningMessenger/NoSuchMethod", grpc_message(b""))


def deadline(conn):
    """StreamLearnings with a 300 ms deadline on a server that pauses longer (DEADLINE_EXCEEDED)."""
    return unary(conn, "StreamLearnings", topic_request("deadline"), [("grpc-timeout", "300m")])


def cancel(conn):
    """StreamLearnings cancelled (RST_STREAM CANCEL) while the server pauses: it sends nothing after."""
    stream = conn.start("StreamLearnings")
    conn.send(stream, topic_request("cancel"), end=True)
    conn.read(0.3)
    conn.reset(stream)
    conn.read(max(1.0, conn.args.after))
    return stream, False


def room_name(conn):
    """CollaborativeFeed asking for a room whose name is too long (INVALID_ARGUMENT)."""
    stream = conn.start("CollaborativeFeed", [("room", "r" * 65)])
    conn.send(stream, grpc_message(field(2, b"hello")))
    conn.until_ended(stream, conn.args.seconds)
    return stream


def room_full(conn):
    """A second participant in a room of --max-room-size 1 (RESOURCE_EXHAUSTED); the first stays."""
    first = conn.start("CollaborativeFeed", [("room", "strict-full"), ("user", "first")])
    conn.send(first, grpc_message(field(1, b"first") + field(2, b"hi")))
    conn.read(0.3)
    stream = conn.start("CollaborativeFeed", [("room", "strict-full"), ("user", "second")])
    conn.send(stream, grpc_message(field(1, b"second") + field(2, b"hi")))
    conn.until_ended(stream, conn.args.seconds)
    return stream


def call(conn):
    """The call --path names, with --message HEX each (gRPC-framed) and then half-closed, unless --open (still sending)."""
    if not conn.args.path:
        sys.exit("strict_h2.py: the call case needs --path")
    stream = conn.start(conn.args.path)
    for message in conn.args.message:
        conn.send(stream, grpc_message(bytes.fromhex(message)), end=False)
    if not conn.args.open and not conn.stream_ended(stream):
        conn.h2.end_stream(stream)
        conn.flush()
    conn.until_ended(stream, conn.args.seconds)
    return stream


def busy(conn):
    """A call over the server's --max-calls-in-flight, one StreamLearnings holding it (RESOURCE_EXHAUSTED)."""
    holder = conn.start("StreamLearnings")
    conn.send(holder, topic_request("holder"), end=True)
    conn.read(0.3)
    return unary(conn, "StreamLearnings", topic_request("busy"))


CASES = {
    f.__name__.replace("_", "-"): f
    for f in (
        ok,
        oversize,
        oversize_gzip,
        bomb,
        malformed,
        malformed_gzip,
        oversize_upload,
        declared_oversize,
        declared_oversize_gzip,
        declared_oversize_upload,
        declared_oversize_feed,
        over_budget,
        big_header,
        unimplemented,
        deadline,
        cancel,
        room_name,
        room_full,
        busy,
        call,
    )
}


def run(case, args):
    conn = Watched(args)
    try:
        conn.read(0.2)  # the server's SETTINGS
        judged = CASES[case](conn)
        stream, expect_end = judged if isinstance(judged, tuple) else (judged, True)
        return conn.verdict(case, stream, expect_end)
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--max-message-bytes", type=int, default=4 << 20, help="the server's limit")
    parser.add_argument("--declared", type=int, default=1 << 30, help="bytes the declared-* cases' prefixes declare")
    parser.add_argument("--declared-sent", type=int, default=256 << 10, help="bytes of them the declared-* cases send")
    parser.add_argument("--seconds", type=float, default=10.0, help="most to wait for a stream's end")
    parser.add_argument("--after", type=float, default=0.5, help="seconds to watch a stream after its end")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=lambda kv: tuple(kv.split("=", 1)),
        metavar="NAME=VALUE",
        help="metadata for every request (e.g. authorization=Bearer ...)",
    )
    parser.add_argument("--path", help="the call case: its method path")
    parser.add_argument("--message", action="append", default=[], metavar="HEX", help="the call case: a message to send")
    parser.add_argument("--open", action="store_true", help="the call case: leave the request stream open")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    if args.list:
        for name, f in CASES.items():
            print(f"{name:16} {f.__doc__.strip()}")
        return
    if args.port is None:
        parser.error("--port is required")
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)} (see --list)")
    if not ipaddress.ip_address(socket.gethostbyname(args.host)).is_loopback:
        sys.exit("strict_h2.py: loopback targets only")
    failed = False
    for case in args.cases or list(CASES):
        try:
            report = run(case, args)
        except OSError as e:
            print(f"strict_h2.py: {case}: cannot reach {args.host}:{args.port}: {e}", file=sys.stderr)
            sys.exit(2)
        failed = failed or bool(report["violations"])
        print(json.dumps(report, sort_keys=True), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
