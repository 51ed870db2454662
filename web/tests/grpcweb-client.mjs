// An independent gRPC-Web client for the gateway's tests (tests/it/web.rs):
// @connectrpc/connect-node's gRPC-Web transport (binary mode), or with
// --text a plain fetch in application/grpc-web-text, which connect does not
// speak. It makes one call (--repeat N: N, one after another) and prints one
// JSON object per line:
//   {"event":"headers","served_by":...}
//   {"event":"message","at_ms":...,"message":{...}}     (proto3 JSON)
//   {"event":"end","at_ms":...,"code":0,"name":"OK","message":""}
// --token T sends `authorization: Bearer T`.
// The Rust test judges them; this script only reports what it saw.
import { parseArgs } from "node:util";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import {
  LearningMessenger,
  StatusRequestSchema,
  StatusResponseSchema,
  TopicRequestSchema,
  LearningUpdateSchema,
  ResearchNoteSchema,
  FeedUpdateSchema,
} from "../page/gen/messenger_pb.js";

const USAGE = `usage: grpcweb-client.mjs --url URL --call status|learn|upload|chat
  [--user-id TEXT | --user-id-bytes N] [--topic TEXT] [--timeout-ms N]
  [--abort-after N] [--token T] [--repeat N] [--http2] [--text]`;

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    call: { type: "string" },
    "user-id": { type: "string", default: "Student-42" },
    "user-id-bytes": { type: "string" },
    topic: { type: "string", default: "gRPC Protocols" },
    "timeout-ms": { type: "string" },
    "abort-after": { type: "string" },
    token: { type: "string" },
    repeat: { type: "string", default: "1" },
    http2: { type: "boolean", default: false },
    text: { type: "boolean", default: false },
  },
});
if (!args.url || !args.call) {
  console.error(USAGE);
  process.exit(2);
}

const started = performance.now();
const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);
const timeoutMs = args["timeout-ms"] ? Number(args["timeout-ms"]) : undefined;
const abortAfter = args["abort-after"] ? Number(args["abort-after"]) : undefined;
let abort = new AbortController();
const authorization = args.token ? { authorization: `Bearer ${args.token}` } : {};

function userId() {
  const bytes = args["user-id-bytes"];
  return bytes ? "x".repeat(Number(bytes)) : args["user-id"];
}

/** The call's request(s) and the schema of what comes back. */
const CALLS = {
  status: {
    path: "GetLearningStatus",
    requests: () => [create(StatusRequestSchema, { userId: userId() })],
    requestSchema: StatusRequestSchema,
    responseSchema: StatusResponseSchema,
  },
  learn: {
    path: "StreamLearnings",
    requests: () => [create(TopicRequestSchema, { topic: args.topic })],
    requestSchema: TopicRequestSchema,
    responseSchema: LearningUpdateSchema,
  },
  upload: {
    path: "SubmitResearchNotes",
    requests: () => ["first", "second"].map((text) => create(ResearchNoteSchema, { text })),
    requestSchema: ResearchNoteSchema,
    responseSchema: null,
  },
  chat: {
    path: "CollaborativeFeed",
    requests: () => [create(FeedUpdateSchema, { user: "web", message: "hello" })],
    requestSchema: FeedUpdateSchema,
    responseSchema: FeedUpdateSchema,
  },
};

const call = CALLS[args.call];
if (!call) {
  console.error(USAGE);
  process.exit(2);
}

function message(schema, value) {
  print({ event: "message", at_ms: elapsed(), message: toJson(schema, value) });
}

function end(code, text) {
  print({ event: "end", at_ms: elapsed(), code, name: Code[code] ?? "OK", message: text });
}

async function* streamOf(requests) {
  yield* requests;
}

/** Binary mode through connect-node's gRPC-Web transport. */
async function viaConnect() {
  const transport = createGrpcWebTransport({
    baseUrl: args.url,
    httpVersion: args.http2 ? "2" : "1.1",
  });
  const client = createClient(LearningMessenger, transport);
  const options = {
    headers: authorization,
    timeoutMs,
    signal: abort.signal,
    onHeader: (headers) => print({ event: "headers", served_by: headers.get("x-served-by") }),
  };
  const requests = call.requests();
  let received = 0;
  const received1 = (schema, value) => {
    message(schema, value);
    received += 1;
    if (received === abortAfter) abort.abort();
  };
  try {
    switch (args.call) {
      case "status":
        received1(StatusResponseSchema, await client.getLearningStatus(requests[0], options));
        break;
      case "learn":
        for await (const update of client.streamLearnings(requests[0], options)) {
          received1(LearningUpdateSchema, update);
        }
        break;
      case "upload":
        await client.submitResearchNotes(streamOf(requests), options);
        break;
      case "chat":
        for await (const update of client.collaborativeFeed(streamOf(requests), options)) {
          received1(FeedUpdateSchema, update);
        }
        break;
    }
    end(0, "");
  } catch (err) {
    const e = ConnectError.from(err);
    end(e.code, e.rawMessage);
  }
}

/** application/grpc-web-text: base64 of gRPC's frames, trailers as a frame too. */
async function viaText() {
  const frame = (flags, bytes) => {
    const out = new Uint8Array(5 + bytes.length);
    out[0] = flags;
    new DataView(out.buffer).setUint32(1, bytes.length);
    out.set(bytes, 5);
    return out;
  };
  const body = Buffer.concat(call.requests().map((r) => frame(0, toBinary(call.requestSchema, r)))).toString("base64");
  const headers = {
    "content-type": "application/grpc-web-text",
    "x-grpc-web": "1",
    accept: "application/grpc-web-text",
    ...authorization,
  };
  if (timeoutMs) headers["grpc-timeout"] = `${timeoutMs}m`;
  let response;
  try {
    response = await fetch(`${args.url}/messenger.LearningMessenger/${call.path}`, {
      method: "POST",
      headers,
      body,
      signal: abort.signal,
    });
  } catch (err) {
    end(Code.Unavailable, String(err));
    return;
  }
  print({ event: "headers", served_by: response.headers.get("x-served-by"), content_type: response.headers.get("content-type") });
  // Trailers-only: the status is in the headers and the body is empty.
  const headerStatus = response.headers.get("grpc-status");
  if (headerStatus !== null) {
    end(Number(headerStatus), decodeURIComponent(response.headers.get("grpc-message") ?? ""));
    return;
  }
  // Each chunk is base64 on its own (with its padding): decode 4 characters at a time.
  let text = "";
  let bytes = Buffer.alloc(0);
  let received = 0;
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body) {
      text += decoder.decode(chunk, { stream: true });
      const whole = text.length - (text.length % 4);
      const groups = text.slice(0, whole).match(/.{4}/g) ?? [];
      bytes = Buffer.concat([bytes, ...groups.map((g) => Buffer.from(g, "base64"))]);
      text = text.slice(whole);
      while (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt32BE(1)) {
        const length = bytes.readUInt32BE(1);
        const payload = bytes.subarray(5, 5 + length);
        if (bytes[0] & 0x80) {
          const trailers = parseTrailers(payload.toString("latin1"));
          end(Number(trailers["grpc-status"]), decodeURIComponent(trailers["grpc-message"] ?? ""));
          return;
        }
        message(call.responseSchema, fromBinary(call.responseSchema, payload));
        received += 1;
        if (received === abortAfter) abort.abort();
        bytes = bytes.subarray(5 + length);
      }
    }
  } catch (err) {
    end(abort.signal.aborted ? Code.Canceled : Code.Unavailable, String(err));
    return;
  }
  end(Code.Internal, "the response ended without trailers");
}

/** `name: value` lines, as gRPC-Web puts trailers in the body. */
function parseTrailers(text) {
  return Object.fromEntries(
    text
      .split("\r\n")
      .filter(Boolean)
      .map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      }),
  );
}

for (let i = 0; i < Number(args.repeat); i++) {
  abort = new AbortController();
  await (args.text ? viaText() : viaConnect());
}
