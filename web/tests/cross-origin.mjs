// A page of another origin calling the gateway with a token, in headless
// Chromium, for tests/it/web.rs: this script serves an empty page at
// http://localhost:PORT/ (an origin the gateway allows, or not), opens it,
// and from it calls GetLearningStatus at the gateway with fetch (gRPC-Web,
// binary), as another site's script would: `authorization: Bearer TOKEN`
// and the room headers, which the browser first asks the gateway about
// (a CORS preflight). Prints one JSON object per call:
//   {"event":"call","token":bool,"fetch_error":null|"...","http_status":200,
//    "grpc_status":"0","grpc_message":"","message":"System ready ..."}
//   --gateway URL   the gateway (another origin than the page's)
//   --token T       the token; each run calls once with it and once without
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { launchChromium } from "./browser.mjs";

const { values: args } = parseArgs({
  options: {
    gateway: { type: "string" },
    port: { type: "string" },
    token: { type: "string" },
  },
});
if (!args.gateway || !args.port || !args.token) {
  console.error("usage: cross-origin.mjs --gateway URL --port PORT --token T");
  process.exit(2);
}

const server = createServer((_, response) => {
  response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  response.end("<!doctype html><title>another origin</title><p>another site's page</p>");
});
await new Promise((resolve) => server.listen(Number(args.port), "127.0.0.1", resolve));
const context = await launchChromium();
try {
  const page = await context.newPage();
  await page.goto(`http://localhost:${args.port}/`);
  for (const token of [args.token, null]) {
    const seen = await page.evaluate(call, { gateway: args.gateway, token });
    console.log(JSON.stringify({ event: "call", token: token !== null, origin: await page.evaluate(() => location.origin), ...seen }));
  }
} finally {
  await context.close();
  server.close();
}

/** In the page: GetLearningStatus{user_id: "ada"} by fetch, read as gRPC-Web. */
async function call({ gateway, token }) {
  const user = new TextEncoder().encode("ada");
  const body = new Uint8Array([0, 0, 0, 0, 2 + user.length, 0x0a, user.length, ...user]);
  const headers = {
    "content-type": "application/grpc-web+proto",
    "x-grpc-web": "1",
    room: "lab",
    user: "ada",
    "room-since": "0",
  };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`${gateway}/messenger.LearningMessenger/GetLearningStatus`, { method: "POST", headers, body });
  } catch (e) {
    return { fetch_error: String(e) };
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const seen = {
    fetch_error: null,
    http_status: response.status,
    grpc_status: response.headers.get("grpc-status"),
    grpc_message: response.headers.get("grpc-message"),
    message: null,
  };
  for (let at = 0; at + 5 <= bytes.length; ) {
    const length = new DataView(bytes.buffer, at + 1, 4).getUint32(0);
    const payload = bytes.subarray(at + 5, at + 5 + length);
    if (bytes[at] & 0x80) {
      for (const line of new TextDecoder().decode(payload).split("\r\n")) {
        const colon = line.indexOf(":");
        if (line.startsWith("grpc-status:")) seen.grpc_status = line.slice(colon + 1).trim();
        if (line.startsWith("grpc-message:")) seen.grpc_message = decodeURIComponent(line.slice(colon + 1).trim());
      }
    } else if (payload[0] === 0x0a) {
      // StatusResponse.message: field 1, a string shorter than 128 bytes.
      seen.message = new TextDecoder().decode(payload.subarray(2, 2 + payload[1]));
    }
    at += 5 + length;
  }
  return seen;
}
