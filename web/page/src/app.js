// The page's calls: GetLearningStatus and StreamLearnings over gRPC-Web
// (connect-web's transport, messages from protobuf-es), each message's
// binary and JSON sizes, and one error line per card; the Token field's
// token goes with every call. web/page/codegen.sh
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

const $ = (id) => document.getElementById(id);

// The caller's token, from the Token field: kept for this tab only
// (sessionStorage, which closing the tab clears), sent with every call.
const TOKEN_KEY = "messenger-token";
const tokenInput = $("token-form").elements.token;
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";

/** The field's token, without a pasted "Bearer " or spaces ("" for none). */
function currentToken() {
  return tokenInput.value.trim().replace(/^bearer\s+/i, "");
}

/** A header carries printable ASCII only, as a JWT is. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/** What the field holds, in a few words: whose token, until when. */
function describeToken(token) {
  if (!token) return ["no token: calls go without one", false];
  if (!HEADER_SAFE.test(token)) return ["not a token: it has characters a header cannot carry", true];
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    const until = claims.exp ? new Date(claims.exp * 1000) : null;
    const expired = until !== null && until < new Date();
    const who = claims.sub ? `for ${claims.sub}` : "with no sub";
    const when = until ? `, ${expired ? "expired" : "expires"} ${until.toLocaleString()}` : "";
    return [`a JWT ${who}${when}: sent as authorization: Bearer …`, expired];
  } catch {
    return ["sent as authorization: Bearer … (not a JWT this page can read)", false];
  }
}

function showToken() {
  const [text, bad] = describeToken(currentToken());
  const state = $("token-state");
  state.textContent = text;
  state.classList.toggle("bad", bad);
}

tokenInput.addEventListener("input", () => {
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
  showToken();
});
$("token-form").addEventListener("submit", (event) => event.preventDefault());
showToken();

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
  return `${codeName(e.code)}: ${e.rawMessage}${authHint(e.code)}`;
}

/** What to do about a refusal of the caller's identity. */
function authHint(code) {
  if (code === Code.Unauthenticated) {
    return currentToken()
      ? " (the server refused the token: paste a valid one in the Token field)"
      : " (the server asks for a token: paste one in the Token field)";
  }
  if (code === Code.PermissionDenied) return " (the token is valid, but does not allow this call)";
  return "";
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
