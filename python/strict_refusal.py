"""One gRPC call over plaintext HTTP/2, seen by a strict client (Python's h2,
which raises on any frame after a stream's end), with every frame the server
sends on the call's stream recorded in order. For the tests of refusals: a
refused call must end exactly once, with one trailers HEADERS and nothing
after a RST_STREAM.

    python strict_refusal.py HOST:PORT PATH [--header NAME:VALUE]...
                             [--message HEX]... [--open]

Each --message is sent gRPC-framed (uncompressed); without --open the
request stream is then half-closed. Prints one JSON object:
    frames  the server's frames on the stream: {"type": ..., "flags": [...]}
    blocks  each header block h2 decoded on it (response headers, trailers)
    h2_error  what h2 refused, if anything (a protocol violation)
"""
import argparse
import json
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hyperframe.frame import Frame

# Frames that may still arrive once the stream has ended, to catch strays.
LINGER = 0.5
TIMEOUT = 10.0

FRAME_NAMES = {
    "HeadersFrame": "HEADERS", "DataFrame": "DATA", "RstStreamFrame": "RST_STREAM",
    "WindowUpdateFrame": "WINDOW_UPDATE", "ContinuationFrame": "CONTINUATION",
    "PriorityFrame": "PRIORITY", "PushPromiseFrame": "PUSH_PROMISE",
}


def call(host, port, path, headers, messages, half_close):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", f"{host}:{port}"),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ] + headers)
    for message in messages:
        conn.send_data(stream, b"\x00" + len(message).to_bytes(4, "big") + message)
    if half_close:
        conn.end_stream(stream)
    sock.sendall(conn.data_to_send())

    frames, blocks, h2_error = [], [], None
    pending = b""
    ended_at = None
    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT:
        if ended_at is not None and time.monotonic() - ended_at > LINGER:
            break
        sock.settimeout(LINGER if ended_at is not None else TIMEOUT)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        pending += data
        # Our own reading of the frames, whatever h2 makes of them.
        while len(pending) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(pending[:9]))
            if len(pending) < 9 + length:
                break
            frame.parse_body(memoryview(pending[9:9 + length]))
            pending = pending[9 + length:]
            if frame.stream_id == stream:
                name = FRAME_NAMES.get(type(frame).__name__, type(frame).__name__)
                frames.append({"type": name, "flags": sorted(frame.flags)})
                if name == "RST_STREAM" or "END_STREAM" in frame.flags:
                    ended_at = ended_at or time.monotonic()
        if h2_error is None:
            try:
                for event in conn.receive_data(data):
                    if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)) \
                            and event.stream_id == stream:
                        blocks.append([[name, value] for name, value in event.headers])
                sock.sendall(conn.data_to_send())
            except h2.exceptions.ProtocolError as e:
                h2_error = f"{type(e).__name__}: {e}"
    sock.close()
    return {"frames": frames, "blocks": blocks, "h2_error": h2_error}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("path")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--message", action="append", default=[])
    parser.add_argument("--open", action="store_true", help="leave the request stream open")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    headers = [tuple(h.split(":", 1)) for h in args.header]
    headers = [(name.strip().lower(), value.strip()) for name, value in headers]
    messages = [bytes.fromhex(m) for m in args.message]
    print(json.dumps(call(host, int(port), args.path, headers, messages, not args.open)))
