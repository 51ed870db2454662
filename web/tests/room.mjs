// A person at the gateway's page in headless Chromium, driven line by line
// for tests/it/websocket.rs: the test writes one JSON command per line on
// stdin, and this prints one JSON object per line for what the page shows.
// Commands:
//   {"do":"token","token":T}                  fill the Token field
//   {"do":"join","room":R,"user":U}           fill the feed's form, click Join (room "" for the echo)
//   {"do":"say","text":T}                     type an update, click Send
//   {"do":"leave"}                            click Leave (a half-close)
//   {"do":"upload","notes":[...],"delay_ms":N} the notes card: fill, click Send
//   {"do":"screenshot","file":F}              save a screenshot of the page
//   {"do":"close"}                            close the tab
//   {"do":"quit"}                             close the browser and exit
// Events, as the page shows them:
//   {"event":"loaded"}  {"event":"item","seq":"17","user":..,"message":..,"recovered":false}
//   {"event":"state","text":..}  {"event":"error","card":"feed"|"notes","text":..}
//   {"event":"progress","value":N,"max":N}  {"event":"summary","count":N,"summary":..}
//   {"event":"done","do":..} after each command
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { launchChromium } from "./browser.mjs";

const { values: args } = parseArgs({ options: { url: { type: "string" } } });
if (!args.url) {
  console.error("usage: room.mjs --url URL (then JSON commands on stdin)");
  process.exit(2);
}
const print = (object) => console.log(JSON.stringify(object));

const context = await launchChromium({ viewport: { width: 1200, height: 1000 } });
let page = await context.newPage();
page.on("pageerror", (err) => print({ event: "pageerror", text: String(err) }));
await page.exposeBinding("report", (_source, event) => print(event));
await page.goto(args.url, { waitUntil: "load" });
await page.evaluate(() => {
  const watch = (element, options, callback) => new MutationObserver(callback).observe(element, options);
  const list = document.getElementById("feed-updates");
  watch(list, { childList: true }, (records) => {
    for (const record of records) {
      for (const item of record.addedNodes) {
        window.report({
          event: "item",
          seq: item.dataset.seq ?? null,
          user: item.dataset.user,
          message: item.dataset.message,
          recovered: item.classList.contains("recovered"),
        });
      }
    }
  });
  const state = document.getElementById("feed-state");
  watch(state, { childList: true, characterData: true, subtree: true }, () =>
    window.report({ event: "state", text: state.textContent }));
  for (const card of ["feed", "notes"]) {
    const error = document.getElementById(`${card}-error`);
    watch(error, { attributes: true, childList: true, subtree: true, characterData: true }, () => {
      if (!error.hidden) window.report({ event: "error", card, text: error.textContent });
    });
  }
  const progress = document.getElementById("notes-progress");
  watch(progress, { attributes: true, attributeFilter: ["value"] }, () =>
    window.report({ event: "progress", value: progress.value, max: progress.max }));
  const summary = document.getElementById("notes-summary");
  watch(summary, { attributes: true, attributeFilter: ["data-summary"] }, () =>
    window.report({ event: "summary", count: Number(summary.dataset.count), summary: summary.dataset.summary }));
});
print({ event: "loaded" });

const commands = createInterface({ input: process.stdin });
for await (const line of commands) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  switch (command.do) {
    case "token":
      await page.fill("#token-form input[name=token]", command.token);
      break;
    case "join":
      await page.fill("#feed-form input[name=room]", command.room);
      await page.fill("#feed-form input[name=user]", command.user);
      await page.click("#feed-join");
      break;
    case "say":
      await page.fill("#say-form input[name=message]", command.text);
      await page.click("#feed-send");
      break;
    case "leave":
      await page.click("#feed-leave");
      break;
    case "upload":
      await page.fill("#notes-form textarea[name=notes]", command.notes.join("\n"));
      await page.fill("#notes-form input[name=delayMs]", String(command.delay_ms ?? 0));
      await page.click("#notes-form button[type=submit]");
      break;
    case "screenshot":
      await page.screenshot({ path: command.file, fullPage: true });
      break;
    case "close":
      await page.close({ runBeforeUnload: false });
      break;
    case "quit":
      print({ event: "done", do: "quit" });
      await context.close();
      process.exit(0);
    default:
      print({ event: "unknown", command });
  }
  print({ event: "done", do: command.do });
}
await context.close();
