// The wire view's page (`wiretap --web`) in headless Chromium: a real server,
// the real tap, `client all --concurrent` through it, and the page as a
// person sees it. Run by tests/it/wire.rs (`node tests/timeline.test.mjs`),
// which says where the binaries are (MESSENGER_BIN_DIR; else target/debug). Screenshots go to
// target/browser/; with SCREENSHOTS_TO_DOCS=1 the timeline's also replaces
// docs/images/wiretap-web.png.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { launchChromium } from "./browser.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binaries = process.env.MESSENGER_BIN_DIR || path.join(path.resolve(root, process.env.CARGO_TARGET_DIR || "target"), "debug");
const shots = path.join(root, "target", "browser");
const STEP_TIMEOUT = 30_000;

const children = [];
after(() => {
  for (const child of children) child.kill("SIGKILL");
});

/** Starts a binary and waits until its stderr matches every pattern; returns the matches. */
function start(name, args, patterns) {
  const child = spawn(path.join(binaries, name), args, { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${log}`)), STEP_TIMEOUT);
    child.on("error", (e) => reject(new Error(`${name}: ${e.message} (cargo build first)`)));
    child.on("exit", (code) => reject(new Error(`${name} exited (${code}): ${log}`)));
    child.stderr.on("data", (data) => {
      log += data;
      const found = patterns.map((p) => log.match(p));
      if (found.every(Boolean)) {
        clearTimeout(timer);
        resolve(found.map((m) => m[1]));
      }
    });
  });
}

/** Runs a binary to its end; rejects unless it exits 0. */
function run(name, args) {
  const child = spawn(path.join(binaries, name), args, { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let log = "";
  child.stderr.on("data", (data) => (log += data));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${name} ${args.join(" ")}: exit ${code}: ${log}`))));
  });
}

/** A server and a tap with its web view in front of it. */
async function tapInFrontOf(upstream) {
  const [listen, page] = await start("wiretap", ["--listen", "127.0.0.1:0", "--upstream", upstream, "--web", "127.0.0.1:0"], [
    /listening on (\S+),/,
    /web view is at (http:\S+)\n/,
  ]);
  return { listen, page };
}

async function openPage(browser, url) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1800, height: 960 });
  await page.goto(url);
  await page.waitForSelector("#status.live", { timeout: STEP_TIMEOUT });
  return page;
}

/** The bytes of a hex dump as the page shows it. */
function dumpBytes(text) {
  return text
    .split("\n")
    .flatMap((line) => line.slice(6, 6 + 47).trim().split(/\s+/))
    .filter(Boolean)
    .map((h) => parseInt(h, 16));
}

test("client all --concurrent draws streams 1, 3, 5 and 7 as four interleaved lanes", async () => {
  const [port] = await start("server", ["--addr", "127.0.0.1:0", "--delay-ms", "100"], [/running on port (\d+)\D/]);
  const tap = await tapInFrontOf(`127.0.0.1:${port}`);
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, tap.page);
    await run("client", ["--target", tap.listen, "all", "--concurrent", "--delay-ms", "100"]);
    await page.waitForSelector(".connection.closed", { timeout: STEP_TIMEOUT });

    const lanes = await page.$$eval(".connection .lane", (rows) => rows.map((r) => Number(r.dataset.stream)));
    assert.deepEqual(lanes, [0, 1, 3, 5, 7]);
    // Which pattern got which stream is the client's race; each lane is named by its method.
    const labels = await page.$$eval(".lane:not([data-stream='0'])", (rows) =>
      Object.fromEntries(rows.map((r) => [r.querySelector(".what").textContent, r.dataset.stream])),
    );
    assert.deepEqual(Object.keys(labels).sort(), [
      "CollaborativeFeed · OK",
      "GetLearningStatus · OK",
      "StreamLearnings · OK",
      "SubmitResearchNotes · OK",
    ]);
    const serverStream = labels["StreamLearnings · OK"];
    // Interleaved: every stream's first frame is drawn before a second stream's
    // last (the unary call may be over before the last call starts; the three
    // streams with pauses are not).
    const spans = await page.$$eval(".lane:not([data-stream='0'])", (rows) =>
      rows.map((r) => [...r.querySelectorAll(".frame")].map((f) => parseFloat(f.style.left))).map((xs) => [Math.min(...xs), Math.max(...xs)]),
    );
    const lastStart = Math.max(...spans.map(([first]) => first));
    const secondEnd = spans.map(([, last]) => last).sort((a, b) => a - b)[1];
    assert.ok(lastStart < secondEnd, `lanes one after the other, not interleaved: ${JSON.stringify(spans)}`);
    // The server stream's four updates, each a DATA frame with its message.
    const updates = page.locator(`.lane[data-stream='${serverStream}'] .frame.t-data.s2c.has-message`);
    assert.equal(await updates.count(), 4);

    // A DATA frame of the server stream: its fields, message and bytes.
    await updates.nth(1).click();
    const details = page.locator("#details");
    await details.waitFor({ state: "visible" });
    assert.equal(await details.locator("h3").textContent(), `DATA on stream ${serverStream}`);
    assert.match(await details.locator(".message pre").textContent(), /"progress": \d+/);
    const bytes = dumpBytes(await details.locator("pre.hex").textContent());
    const length = (bytes[0] << 16) | (bytes[1] << 8) | bytes[2];
    assert.equal(bytes.length, 9 + length, "a DATA frame shown whole: header and payload");
    assert.deepEqual(bytes.slice(3, 9), [0x00, 0x00, 0, 0, 0, Number(serverStream)], "type DATA, no flags, its stream");
    assert.equal(bytes[9], 0, "the message's prefix: not compressed");

    // The whole connection in the picture, from its preface to its last frame.
    const width = await page.$eval(".scroller", (scroller) => scroller.scrollWidth);
    await page.setViewportSize({ width: Math.min(width + 70, 2400), height: 960 });
    await page.$eval(".scroller", (scroller) => (scroller.scrollLeft = 0));
    mkdirSync(shots, { recursive: true });
    const shot = path.join(shots, "wiretap-web.png");
    await page.screenshot({ path: shot });
    if (process.env.SCREENSHOTS_TO_DOCS === "1") copyFileSync(shot, path.join(root, "docs", "images", "wiretap-web.png"));
  } finally {
    await browser.close();
  }
});

/** HTTP/2 frames as a client would send them: the preface, then `count` PINGs. */
function pings(from, count) {
  const frames = [];
  for (let i = from; i < from + count; i += 1) {
    const frame = Buffer.alloc(9 + 8);
    frame.writeUIntBE(8, 0, 3);
    frame[3] = 0x6; // PING
    frame.writeBigUInt64BE(BigInt(i), 9);
    frames.push(frame);
  }
  return Buffer.concat(frames);
}

test("past 10,000 frames the oldest leave the page, which says so and stays usable", async () => {
  // The upstream only reads: the tap decodes what the client sends.
  const sink = net.createServer((socket) => socket.resume());
  await new Promise((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const tap = await tapInFrontOf(`127.0.0.1:${sink.address().port}`);
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, tap.page);
    const [host, port] = tap.listen.split(":");
    const socket = net.connect(Number(port), host);
    await new Promise((resolve) => socket.on("connect", resolve));
    socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // In bursts a page keeps up with, so that none is skipped for it.
    const FRAMES = 12_000;
    for (let sent = 0; sent < FRAMES; sent += 250) {
      socket.write(pings(sent, 250));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    socket.end();
    await page.waitForSelector(".connection.closed", { timeout: STEP_TIMEOUT }).catch(async (e) => {
      await page.screenshot({ path: "/tmp/tl-cap-fail.png" });
      throw e;
    });
    await page.waitForFunction(() => !document.querySelector("#cap").textContent.includes("fell behind") &&
      document.querySelectorAll(".frame[data-key]").length === 10_000, null, { timeout: STEP_TIMEOUT }).catch(async (e) => {
      console.log(await page.locator("#cap").textContent(), await page.locator("#counts").textContent(), await page.evaluate(() => document.querySelectorAll(".frame[data-key]").length));
      await page.screenshot({ path: "/tmp/tl-cap-fail.png" });
      throw e;
    });
    // The preface and 12,000 PINGs: 2,001 dropped.
    assert.match(await page.locator("#cap").textContent(), /newest 10,000 frames: 2,001 older ones were dropped/);
    const last = page.locator(".lane[data-stream='0'] .frame").last();
    await last.click();
    const bytes = dumpBytes(await page.locator("#details pre.hex").textContent());
    assert.deepEqual(bytes.slice(0, 9), [0, 0, 8, 6, 0, 0, 0, 0, 0]);
    assert.equal(Number(Buffer.from(bytes.slice(9)).readBigUInt64BE()), FRAMES - 1);
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, "wiretap-web-cap.png") });
  } finally {
    await browser.close();
    sink.close();
  }
});
