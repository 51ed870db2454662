// An independent client of the gateway's gRPC-Web over WebSocket, for the
// tests (tests/it/web.rs): improbable-eng's @improbable-eng/grpc-web with its
// WebsocketTransport, as a browser runs it, here on Node's WebSocket (run
// with --experimental-websocket on Node 20). It makes one call and prints one
// JSON object per line:
//   {"event":"headers","at_ms":...,"headers":{...}}
//   {"event":"message","at_ms":...,"message":{...}}      (proto3 JSON)
//   {"event":"sent","at_ms":...,"count":N}               (after each message sent)
//   {"event":"end","at_ms":...,"code":0,"name":"OK","message":"","trailers":{...}}
//   {"event":"cancelled","at_ms":...}                      (with --cancel-after-ms)
// The Rust test judges them; this script only reports what it saw.
import { parseArgs } from "node:util";
import grpcWeb from "@improbable-eng/grpc-web"; // CommonJS
const { grpc } = grpcWeb;
import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import {
  LearningMessenger,
  FeedUpdateSchema,
  ResearchNoteSchema,
  StatusRequestSchema,
  TopicRequestSchema,
} from "../page/gen/messenger_pb.js";

const USAGE = `usage: node --experimental-websocket ws-client.mjs --url URL --call upload|chat|status|learn
  [--note TEXT]... [--note-bytes N] [--say TEXT]... [--delay-ms N] [--linger-ms N]
  [--room R] [--user U] [--since S] [--token T] [--timeout-ms N] [--cancel-after-ms N] [--no-half-close]`;

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    call: { type: "string" },
    note: { type: "string", multiple: true, default: [] },
    "note-bytes": { type: "string" },
    say: { type: "string", multiple: true, default: [] },
    "delay-ms": { type: "string", default: "0" },
    "linger-ms": { type: "string", default: "0" },
    room: { type: "string" },
    user: { type: "string" },
    since: { type: "string" },
    token: { type: "string" },
    "timeout-ms": { type: "string" },
    "cancel-after-ms": { type: "string" },
    "no-half-close": { type: "boolean", default: false },
  },
});
const METHODS = {
  upload: LearningMessenger.method.submitResearchNotes,
  chat: LearningMessenger.method.collaborativeFeed,
  status: LearningMessenger.method.getLearningStatus,
  learn: LearningMessenger.method.streamLearnings,
};
const method = METHODS[args.call];
if (!args.url || !method || typeof WebSocket === "undefined") {
  console.error(typeof WebSocket === "undefined" ? "ws-client: no WebSocket: run node with --experimental-websocket" : USAGE);
  process.exit(2);
}

const started = performance.now();
const at = () => Math.round(performance.now() - started);
const print = (object) => console.log(JSON.stringify({ ...object, at_ms: at() }));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const headersOf = (metadata) => {
  const out = {};
  metadata.forEach((key, values) => (out[key] = values.join(", ")));
  return out;
};

const client = grpc.client(
  {
    methodName: method.name,
    service: { serviceName: method.parent.typeName },
    requestStream: method.methodKind.startsWith("client") || method.methodKind.startsWith("bidi"),
    responseStream: method.methodKind.startsWith("server") || method.methodKind.startsWith("bidi"),
    requestType: undefined,
    responseType: { deserializeBinary: (bytes) => fromBinary(method.output, bytes) },
  },
  { host: args.url, transport: grpc.WebsocketTransport() },
);
let ended;
const done = new Promise((resolve) => (ended = resolve));
client.onHeaders((metadata) => print({ event: "headers", headers: headersOf(metadata) }));
client.onMessage((message) => print({ event: "message", message: toJson(method.output, message) }));
client.onEnd((code, message, trailers) => {
  print({ event: "end", code, name: grpc.Code[code], message, trailers: headersOf(trailers) });
  ended();
});

const metadata = new grpc.Metadata();
if (args.token) metadata.set("authorization", `Bearer ${args.token}`);
if (args.room) metadata.set("room", args.room);
if (args.user) metadata.set("user", args.user);
if (args.since) metadata.set("room-since", args.since);
if (args["timeout-ms"]) metadata.set("grpc-timeout", `${args["timeout-ms"]}m`);
client.start(metadata);

if (args["cancel-after-ms"]) {
  setTimeout(() => {
    client.close();
    print({ event: "cancelled" });
    ended();
  }, Number(args["cancel-after-ms"]));
}

const send = (schema, init) => client.send({ serializeBinary: () => toBinary(schema, create(schema, init)) });
const delayMs = Number(args["delay-ms"]);
let requests;
if (args.call === "upload") {
  const notes = args["note-bytes"] ? ["n".repeat(Number(args["note-bytes"]))] : args.note;
  requests = notes.map((text) => () => send(ResearchNoteSchema, { text }));
} else if (args.call === "chat") {
  requests = args.say.map((message) => () => send(FeedUpdateSchema, { user: args.user ?? "node", message }));
} else if (args.call === "status") {
  requests = [() => send(StatusRequestSchema, { userId: "Student-42" })];
} else {
  requests = [() => send(TopicRequestSchema, { topic: "gRPC Protocols" })];
}
let stopped = false;
done.then(() => (stopped = true));
for (const [i, request] of requests.entries()) {
  if (stopped) break;
  if (i > 0 && delayMs > 0) await sleep(delayMs);
  request();
  print({ event: "sent", count: i + 1 });
}
if (Number(args["linger-ms"]) > 0) await sleep(Number(args["linger-ms"]));
if (!stopped && !args["no-half-close"]) client.finishSend();
await done;
// The socket closes itself; give its close a moment, then go.
setTimeout(() => process.exit(0), 100);
