// gRPC-Web over a WebSocket, for the calls whose requests stream: fetch
// sends a whole request body before it reads the answer, a WebSocket sends
// each message as it goes. The client is improbable-eng's
// (@improbable-eng/grpc-web, its WebsocketTransport); the gateway speaks its
// protocol (web/src/websocket.rs). Messages are protobuf-es's, given to it
// through the two methods it calls: serializeBinary and deserializeBinary.
import { grpc } from "@improbable-eng/grpc-web";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { authHint, currentToken, HEADER_SAFE } from "./token.js";

/** gRPC's status codes by number, as gRPC names them. */
export const CODE_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

/**
 * How a call ended: {code, name, message, dropped, line}. `dropped`: the
 * socket closed with no status (the gateway or the network went away), so
 * the call may be made again; `line` is what the page shows.
 */
function ending(code, message) {
  const name = CODE_NAMES[code] ?? `code ${code}`;
  const dropped = code === grpc.Code.Unknown && /^Response closed without/.test(message);
  const line = dropped
    ? `the WebSocket to the gateway at ${window.location.host} closed with no status (is the gateway running?)`
    : `${name}: ${message}${authHint(name)}`;
  return { code, name, message, dropped, line };
}

/**
 * Starts a call of `method` (a protobuf-es method descriptor) over a
 * WebSocket to the gateway that served the page. `headers`: the call's
 * metadata besides the token ({room, user, "room-since", "grpc-timeout"}).
 * `on`: {headers(grpc.Metadata), message(m), end(ending)}; end is not
 * called after cancel(). Returns {send(message), finish(), cancel()}.
 */
export function startSocketCall(method, headers, on) {
  const metadata = new grpc.Metadata();
  const token = currentToken();
  if (token) {
    if (!HEADER_SAFE.test(token)) throw new Error("the Token field holds characters a header cannot carry");
    metadata.set("authorization", `Bearer ${token}`);
  }
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && value !== "") metadata.set(key, String(value));
  }
  const client = grpc.client(
    {
      methodName: method.name,
      service: { serviceName: method.parent.typeName },
      requestStream: true,
      responseStream: method.methodKind === "bidi_streaming",
      requestType: undefined,
      responseType: { deserializeBinary: (bytes) => fromBinary(method.output, bytes) },
    },
    { host: window.location.origin, transport: grpc.WebsocketTransport() },
  );
  client.onHeaders((metadata) => on.headers?.(metadata));
  client.onMessage((message) => on.message?.(message));
  client.onEnd((code, message) => on.end?.(ending(code, message)));
  client.start(metadata);
  return {
    send: (message) => client.send({ serializeBinary: () => toBinary(method.input, message) }),
    finish: () => client.finishSend(),
    cancel: () => client.close(),
  };
}

/** A `grpc-timeout` for a deadline in ms (undefined for none). */
export function grpcTimeout(ms) {
  return ms > 0 ? `${Math.ceil(ms)}m` : undefined;
}
