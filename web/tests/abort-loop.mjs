// A gRPC-Web client that abandons every call it makes, in a tight loop, for
// tests/it/web.rs's test that one such client costs the others nothing.
// Each call is a StreamLearnings POST (application/grpc-web+proto), dropped
// as soon as it is sent:
//   (default)  HTTP/1.1: a new connection per call, closed at once (as a
//              browser's aborted fetch or a closed tab does)
//   --http2    HTTP/2 without TLS (h2c), streams on one connection, each
//              reset with CANCEL at once (node:http2); a new connection
//              whenever the gateway closes this one
// --parallel N loops at once (4). It runs until a line or the end of its stdin (or --seconds), then prints
//   {"event":"end","calls":N,"errors":E}
// and prints {"event":"started"} once its first call was sent.
import net from "node:net";
import http2 from "node:http2";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    http2: { type: "boolean", default: false },
    seconds: { type: "string", default: "120" },
    parallel: { type: "string", default: "4" },
  },
});
if (!args.url) {
  console.error("usage: abort-loop.mjs --url URL [--http2] [--parallel N] [--seconds N]");
  process.exit(2);
}
const url = new URL(args.url);
const port = Number(url.port);
const PATH = "/messenger.LearningMessenger/StreamLearnings";
// One frame: an empty TopicRequest.
const BODY = Buffer.from([0, 0, 0, 0, 0]);
const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

let stopped = false;
process.stdin.on("data", () => (stopped = true));
process.stdin.on("end", () => (stopped = true));
process.stdin.resume();
setTimeout(() => (stopped = true), Number(args.seconds) * 1000).unref();

let calls = 0;
let errors = 0;
const started = () => calls === 1 && print({ event: "started" });

/** HTTP/1.1: connect, send the call, close; the next once this one closed. */
function http1Call() {
  return new Promise((resolve) => {
    const socket = net.connect(port, url.hostname, () => {
      socket.write(
        `POST ${PATH} HTTP/1.1\r\nHost: ${url.host}\r\ncontent-type: application/grpc-web+proto\r\n` +
          `x-grpc-web: 1\r\ncontent-length: ${BODY.length}\r\n\r\n`,
      );
      // Closed as soon as the call is out, answer unread.
      socket.end(BODY, () => socket.destroy());
      calls += 1;
      started();
    });
    socket.on("error", () => (errors += 1));
    socket.on("close", resolve);
  });
}

async function http1() {
  while (!stopped) await http1Call();
}

/** HTTP/2: streams on one connection, each reset as soon as it is sent; a
 * new connection whenever the gateway sends this one away. */
async function h2Session() {
  const session = http2.connect(url.origin);
  session.on("error", () => (errors += 1));
  const connected = await new Promise((resolve) => {
    session.once("connect", () => resolve(true));
    session.once("close", () => resolve(false));
  });
  while (connected && !stopped && !session.closed && !session.destroyed) {
    const stream = session.request({
      ":method": "POST",
      ":path": PATH,
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
    });
    stream.on("error", () => {});
    stream.end(BODY);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    calls += 1;
    started();
    // Let the frames go out, as a client in a tight loop would.
    await new Promise((resolve) => setImmediate(resolve));
  }
  session.destroy();
}

async function h2() {
  while (!stopped) await h2Session();
}

try {
  const loop = args.http2 ? h2 : http1;
  await Promise.all(Array.from({ length: Number(args.parallel) }, loop));
} catch (e) {
  errors += 1;
  console.error(`abort-loop: ${e.message}`);
}
print({ event: "end", calls, errors });
process.exit(0);
