// The page's calls: GetLearningStatus and StreamLearnings over gRPC-Web
// (connect-web's transport, messages from protobuf-es), each message's
// binary and JSON sizes, and one error line per card; the Token field's
// token goes with every call. web/page/codegen.sh
// bundles this into dist/app.js, which the gateway serves.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { create } from "@bufbuild/protobuf";
import {
  LearningMessenger,
  StatusRequestSchema,
  StatusResponseSchema,
  TopicRequestSchema,
  LearningUpdateSchema,
} from "../gen/messenger_pb.js";
import { $, addSizeRow, clearTable, hide, seconds, show } from "./dom.js";
import { authHint, currentToken, HEADER_SAFE } from "./token.js";
import "./notes.js";
import "./feed.js";

/** An interceptor: the field's token as `authorization: Bearer …` on each call. */
function authorize(next) {
  return async (request) => {
    const token = currentToken();
    if (token && !HEADER_SAFE.test(token)) {
      throw new ConnectError("the Token field holds characters a header cannot carry", Code.InvalidArgument);
    }
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

// The gateway that served the page answers its calls: same origin, no CORS.
const origin = window.location.origin;
const client = createClient(
  LearningMessenger,
  createGrpcWebTransport({ baseUrl: origin, interceptors: [authorize] }),
);

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
  return `${codeName(e.code)}: ${e.rawMessage}${authHint(codeName(e.code))}`;
}

/** Call options from a form's deadline field (empty: no deadline). */
function callOptions(form, extra = {}) {
  const timeoutMs = Number(form.elements.timeoutMs.value);
  return timeoutMs > 0 ? { ...extra, timeoutMs } : extra;
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

// The native gRPC target the gateway calls: in the header, and in the
// commands that make the same calls from a terminal.
fetch("/gateway.json")
  .then((response) => response.json())
  .then(({ upstream }) => {
    $("upstream").textContent = upstream;
    for (const command of document.querySelectorAll("code.command")) {
      command.textContent = `cargo run --bin client -- --target ${upstream} ${command.dataset.command}`;
    }
  })
  .catch(() => {});
