// Drives the gateway's page in headless Chromium for tests/it/web.rs: loads
// it, runs one scenario as a person would (fill the form, click), saves a
// screenshot, and prints what the page showed as one JSON object. The Rust
// test judges it against the lab's answers.
//   --scenario unary   the GetLearningStatus form: {answer, error, sizes}
//   --scenario stream  StreamLearnings: {updates: [{progress, text, at_ms}], counts, done, error, sizes}
//                      at_ms: when each update appeared in the page, seen by a MutationObserver;
//                      counts: how many updates the page showed, each new count once, frame by
//                      frame (four updates that arrive separately give 0, 1, 2, 3, 4)
//   --scenario both    unary, then stream: {unary: {...}, stream: {...}}
//   --scenario error   GetLearningStatus against a server that is down: {answer, error}
//   --token T          fill the Token field with T first (the page sends it as authorization);
//                      the result tells where the page kept it: {token: {state, session,
//                      local_storage_keys, cookies, after_reload, new_tab}}
//   --hold             once the page has loaded, print {"event":"loaded"} and wait for a
//                      line on stdin before the scenario (the test stops a server meanwhile)
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { launchChromium } from "./browser.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    scenario: { type: "string" },
    screenshot: { type: "string" },
    "user-id": { type: "string" },
    topic: { type: "string" },
    "timeout-ms": { type: "string" },
    token: { type: "string" },
    hold: { type: "boolean", default: false },
  },
});
if (!args.url || !["unary", "stream", "both", "error"].includes(args.scenario) || !args.screenshot) {
  console.error("usage: page.mjs --url URL --scenario unary|stream|both|error --screenshot FILE [--user-id U] [--topic T] [--timeout-ms N] [--token T] [--hold]");
  process.exit(2);
}

const WAIT_MS = 30_000;
const context = await launchChromium({ viewport: { width: 1100, height: 900 } });
try {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(msg.text()));
  page.on("pageerror", (err) => consoleErrors.push(String(err)));
  await page.goto(args.url, { waitUntil: "load" });
  // The native target is filled in from /gateway.json once the script runs.
  await page.waitForFunction(() => document.getElementById("upstream").textContent !== "…", null, { timeout: WAIT_MS });
  const upstream = await page.textContent("#upstream");
  const commands = await page.$$eval("code.command", (codes) => codes.map((c) => c.textContent));
  if (args.token !== undefined) await page.fill("#token-form input[name=token]", args.token);
  if (args.hold) {
    console.log(JSON.stringify({ event: "loaded" }));
    const lines = createInterface({ input: process.stdin });
    await new Promise((resolve) => lines.once("line", resolve));
    lines.close();
  }

  let result;
  if (args.scenario === "stream") {
    result = await stream(page);
  } else if (args.scenario === "both") {
    result = { unary: await unary(page), stream: await stream(page) };
  } else {
    result = await unary(page);
  }
  await page.screenshot({ path: args.screenshot, fullPage: true });
  if (args.token !== undefined) result.token = await tokenKept(page);
  console.log(JSON.stringify({ event: "result", ...result, upstream, commands, console_errors: consoleErrors }));
} finally {
  await context.close();
}

async function unary(page) {
  if (args["user-id"]) await page.fill("#status-form input[name=userId]", args["user-id"]);
  if (args["timeout-ms"]) await page.fill("#status-form input[name=timeoutMs]", args["timeout-ms"]);
  await page.click("#status-form button[type=submit]");
  await page.waitForSelector("#status-answer:not([hidden]), #status-error:not([hidden])", { timeout: WAIT_MS });
  return {
    answer: await visibleText(page, "#status-answer"),
    error: await visibleText(page, "#status-error"),
    sizes: await sizes(page, "#status-sizes"),
  };
}

async function stream(page) {
  if (args.topic) await page.fill("#learn-form input[name=topic]", args.topic);
  if (args["timeout-ms"]) await page.fill("#learn-form input[name=timeoutMs]", args["timeout-ms"]);
  // Our own record of when each update appears, not the page's.
  await page.evaluate(() => {
    window.__arrivals = [];
    new MutationObserver((mutations) => {
      for (const mutation of mutations) {
        for (const node of mutation.addedNodes) {
          if (node.nodeType === Node.ELEMENT_NODE && node.classList.contains("update")) {
            window.__arrivals.push({
              progress: Number(node.dataset.progress),
              text: node.querySelector(".content").textContent,
              when: node.querySelector(".when").textContent,
              bar: node.querySelector("progress").value,
              at_ms: performance.now(),
            });
          }
        }
      }
    }).observe(document.getElementById("learn-updates"), { childList: true });
    window.__counts = [];
    const sample = () => {
      const count = document.querySelectorAll("#learn-updates .update").length;
      if (window.__counts.at(-1) !== count) window.__counts.push(count);
      window.__sampling = requestAnimationFrame(sample);
    };
    sample();
  });
  const clicked = await page.evaluate(() => performance.now());
  await page.click("#learn-form button[type=submit]");
  await page.waitForSelector("#learn-done:not([hidden]), #learn-error:not([hidden])", { timeout: WAIT_MS });
  const { arrivals, counts } = await page.evaluate(() => {
    cancelAnimationFrame(window.__sampling);
    const count = document.querySelectorAll("#learn-updates .update").length;
    if (window.__counts.at(-1) !== count) window.__counts.push(count);
    return { arrivals: window.__arrivals, counts: window.__counts };
  });
  return {
    updates: arrivals.map((a) => ({ ...a, at_ms: Math.round(a.at_ms - clicked) })),
    counts,
    done: await visibleText(page, "#learn-done"),
    error: await visibleText(page, "#learn-error"),
    sizes: await sizes(page, "#learn-sizes"),
  };
}

async function visibleText(page, selector) {
  return page.$eval(selector, (e) => (e.hidden ? null : e.textContent));
}

async function sizes(page, selector) {
  return page.$$eval(`${selector} tbody tr`, (rows) =>
    rows.map((row) => ({
      cells: [...row.cells].map((c) => c.textContent),
      binary: Number(row.dataset.binary),
      json: Number(row.dataset.json),
    })),
  );
}

/** Where the page kept the token: this tab's sessionStorage only. */
async function tokenKept(page) {
  const field = "#token-form input[name=token]";
  const kept = {
    state: await page.textContent("#token-state"),
    session: await page.evaluate(() => sessionStorage.getItem("messenger-token")),
    local_storage_keys: await page.evaluate(() => localStorage.length),
    cookies: (await page.context().cookies()).length,
  };
  await page.reload({ waitUntil: "load" });
  kept.after_reload = await page.inputValue(field);
  const other = await page.context().newPage();
  await other.goto(args.url, { waitUntil: "load" });
  kept.new_tab = await other.inputValue(field);
  await other.close();
  return kept;
}
