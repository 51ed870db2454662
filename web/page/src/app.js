// The page's calls: GetLearningStatus and StreamLearnings over gRPC-Web
// (connect-web's transport, messages from protobuf-es), each message's
// binary and JSON sizes, and one error line per card. web/page/codegen.sh
// bundles this into dist/app.js, which the gateway serves.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  LearningMessenger,
  StatusRequestSchema,
  StatusResponseSchema,
  TopicRequestSchema,
  LearningUpdateSchema,
} from "../gen/messenger_pb.js";

// The gateway that served the page answers its calls: same origin, no CORS.
const origin = window.location.origin;
const client = createClient(LearningMessenger, createGrpcWebTransport({ baseUrl: origin }));

const $ = (id) => document.getElementById(id);

/** `DeadlineExceeded` -> `DEADLINE_EXCEEDED`: gRPC's names for connect's codes. */
function codeName(code) {
  if (code === Code.Canceled) return "CANCELLED";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** One line for a failed call. */
function errorLine(err) {
  const e = ConnectError.from(err);
  // fetch itself failed: nothing answered at the page's origin.
  if (e.code === Code.Unknown && e.cause instanceof TypeError) {
    return `cannot reach the gateway at ${origin}: ${e.rawMessage} (is the server running?)`;
  }
  return `${codeName(e.code)}: ${e.rawMessage}`;
}

function show(element, text) {
  element.textContent = text;
  element.hidden = false;
}

function hide(...elements) {
  for (const element of elements) element.hidden = true;
}

/** Call options from a form's deadline field (empty: no deadline). */
function callOptions(form, extra = {}) {
  const timeoutMs = Number(form.elements.timeoutMs.value);
  return timeoutMs > 0 ? { ...extra, timeoutMs } : extra;
}

const utf8 = new TextEncoder();

/** A row of the sizes table: the message on the wire (protobuf) and as JSON. */
function addSizeRow(table, direction, schema, message) {
  if (!table.tHead) {
    table.createTHead().innerHTML =
      "<tr><th></th><th>message</th><th>binary</th><th>JSON</th><th>JSON / binary</th></tr>";
  }
  const binary = toBinary(schema, message).length;
  const json = utf8.encode(toJsonString(schema, message)).length;
  const row = (table.tBodies[0] ?? table.createTBody()).insertRow();
  const ratio = binary === 0 ? "–" : `${(json / binary).toFixed(1)}×`;
  for (const text of [direction, schema.typeName.replace(/^messenger\./, ""), `${binary} B`, `${json} B`, ratio]) {
    row.insertCell().textContent = text;
  }
  row.dataset.binary = String(binary);
  row.dataset.json = String(json);
  table.hidden = false;
}

function clearTable(table) {
  table.replaceChildren();
  table.hidden = true;
}

/** The replica that answered, from its x-served-by header. */
function servedBy(headers) {
  const replica = headers.get("x-served-by");
  return replica ? ` (answered by ${replica})` : "";
}

$("status-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const [answer, error, sizes] = [$("status-answer"), $("status-error"), $("status-sizes")];
  hide(answer, error);
  clearTable(sizes);
  const request = create(StatusRequestSchema, { userId: form.elements.userId.value });
  addSizeRow(sizes, "→", StatusRequestSchema, request);
  let replica = "";
  try {
    const response = await client.getLearningStatus(
      request,
      callOptions(form, { onHeader: (headers) => (replica = servedBy(headers)) }),
    );
    show(answer, `${response.message} (Active: ${response.active ? "True" : "False"})${replica}`);
    addSizeRow(sizes, "←", StatusResponseSchema, response);
  } catch (err) {
    show(error, errorLine(err));
  }
});

let streaming = null;

$("learn-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const [updates, done, error, sizes] = [$("learn-updates"), $("learn-done"), $("learn-error"), $("learn-sizes")];
  streaming?.abort();
  const abort = new AbortController();
  streaming = abort;
  updates.replaceChildren();
  hide(done, error);
  clearTable(sizes);
  $("learn-cancel").disabled = false;
  const request = create(TopicRequestSchema, { topic: form.elements.topic.value });
  addSizeRow(sizes, "→", TopicRequestSchema, request);
  const started = performance.now();
  let replica = "";
  try {
    const options = callOptions(form, {
      signal: abort.signal,
      onHeader: (headers) => (replica = servedBy(headers)),
    });
    for await (const update of client.streamLearnings(request, options)) {
      updates.append(updateItem(update, performance.now() - started));
      addSizeRow(sizes, "←", LearningUpdateSchema, update);
    }
    show(done, `${updates.children.length} updates in ${seconds(performance.now() - started)}${replica}`);
  } catch (err) {
    if (!(abort.signal.aborted && streaming !== abort)) show(error, errorLine(err));
  } finally {
    if (streaming === abort) {
      streaming = null;
      $("learn-cancel").disabled = true;
    }
  }
});

$("learn-cancel").addEventListener("click", () => streaming?.abort());

function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** One update as it arrived: its progress bar, content, the server's timestamp and when it came. */
function updateItem(update, arrivedMs) {
  const item = document.createElement("li");
  item.className = "update";
  item.dataset.progress = String(update.progress);
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = update.progress;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = `${update.progress}% ${update.content}`;
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = `[${update.timestamp}] +${seconds(arrivedMs)}`;
  item.append(bar, text, when);
  return item;
}

// The native gRPC target, for the commands of the calls a browser cannot make.
fetch("/gateway.json")
  .then((response) => response.json())
  .then(({ upstream }) => {
    $("upstream").textContent = upstream;
    for (const command of document.querySelectorAll("code.command")) {
      command.textContent = `cargo run --bin client -- --target ${upstream} ${command.dataset.command}`;
    }
  })
  .catch(() => {});
