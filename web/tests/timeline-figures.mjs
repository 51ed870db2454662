// Figures of the timeline page for docs/wiretap-web.md: N PING frames sent
// through `wiretap --web` (to an upstream that only reads), BURST at a time
// with PAUSE ms between, and what the page shows in headless Chromium. Prints
// one JSON object. Not a test: it judges nothing.
//   node tests/timeline-figures.mjs [N=12000] [BURST=12000] [PAUSE=0]
// The binaries: MESSENGER_BIN_DIR, else CARGO_TARGET_DIR/debug, else target/debug.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { launchChromium } from "./browser.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binaries = process.env.MESSENGER_BIN_DIR || path.join(path.resolve(root, process.env.CARGO_TARGET_DIR || "target"), "debug");
const [N = 12000, BURST = 12000, PAUSE = 0] = process.argv.slice(2).map(Number);

const sink = net.createServer((socket) => socket.resume());
await new Promise((resolve) => sink.listen(0, "127.0.0.1", resolve));
const tap = spawn(path.join(binaries, "wiretap"), ["--listen", "127.0.0.1:0", "--upstream", `127.0.0.1:${sink.address().port}`, "--web", "127.0.0.1:0"], {
  stdio: ["ignore", "ignore", "pipe"],
});
let log = "";
await new Promise((resolve) => tap.stderr.on("data", (data) => (log += data) && /web view is at \S+\n/.test(log) && resolve()));
const [host, port] = log.match(/listening on (\S+),/)[1].split(":");
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1500, height: 900 });
  await page.goto(log.match(/web view is at (\S+)/)[1]);
  await page.waitForSelector("#status.live");
  const socket = net.connect(Number(port), host);
  await new Promise((resolve) => socket.on("connect", resolve));
  socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const started = Date.now();
  for (let sent = 0; sent < N; sent += BURST) {
    const frames = [];
    for (let i = sent; i < Math.min(N, sent + BURST); i += 1) {
      const frame = Buffer.alloc(17);
      frame.writeUIntBE(8, 0, 3);
      frame[3] = 0x6;
      frame.writeBigUInt64BE(BigInt(i), 9);
      frames.push(frame);
    }
    socket.write(Buffer.concat(frames));
    await new Promise((resolve) => setTimeout(resolve, PAUSE));
  }
  socket.end();
  await page.waitForSelector(".connection.closed", { timeout: 120_000 });
  const drawnMs = Date.now() - started;
  const clicked = Date.now();
  await page.locator(".frame[data-key]").last().click();
  await page.locator("#details pre.hex").waitFor();
  const clickMs = Date.now() - clicked;
  const page_ = await page.evaluate(() => ({
    frames: document.querySelectorAll(".frame[data-key]").length,
    elements: document.getElementsByTagName("*").length,
    heapMiB: Math.round(performance.memory.usedJSHeapSize / 104857.6) / 10,
    says: document.querySelector("#cap").textContent,
  }));
  console.log(JSON.stringify({ sent: N, burst: BURST, pauseMs: PAUSE, drawnMs, clickMs, ...page_ }));
} finally {
  await browser.close();
  tap.kill();
  sink.close();
}
