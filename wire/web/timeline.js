// wiretap's web view: every connection the tap sees as a block, one lane per
// HTTP/2 stream (lane 0: the connection's own frames), fed live by the tap's
// server-sent events at ./events, each event one record of docs/wiretap.md's
// JSON. Drawing is incremental: records are queued and appended once per
// animation frame, never redrawn; past FRAME_CAP frames the oldest leave the page.
"use strict";

const FRAME_CAP = 10000;
const STEP = 17; // px between two frames of a connection
const MAX_PAUSE = 60; // px at most for a pause between two frames
const PX_PER_MS = 0.3; // how a pause widens the gap
const TICK_EVERY = 140; // px between time labels
const FLUSH_MAX = 4000; // records drawn per animation frame, so the page stays responsive
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const $ = (id) => document.getElementById(id);

/** A new element with a class and text. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

let connections = new Map(); // conn number -> connection block
let shown = []; // frames on the page, oldest first: {key, box, c, lane, x}
let shownStart = 0; // the oldest still on the page in `shown`
let entries = new Map(); // a frame's key -> {record, messages, box}
let nextKey = 0;
let dropped = 0; // frames removed from the page past FRAME_CAP
let lagged = 0; // records the tap skipped because this page fell behind
let tapInfo = null; // the tap's history, from its `reset` event
let queue = [];
let scheduled = false;
let selected = null;

function connection(conn) {
  let c = connections.get(conn);
  if (c) return c;
  $("empty")?.remove();
  const section = el("section", "connection");
  section.dataset.conn = conn;
  const title = el("h2", "", conn === 0 ? "the tap" : `connection #${conn}`);
  const summary = el("p", "summary");
  const scroller = el("div", "scroller");
  const axis = el("div", "axis");
  axis.append(el("div", "label", "time (s)"));
  const rows = el("div", "rows");
  scroller.append(axis, rows);
  section.append(title, summary, scroller);
  $("connections").append(section);
  c = { conn, section, title, summary, scroller, axis, rows, lanes: new Map(), ticks: [],
        x: 0, lastTime: null, lastTick: -Infinity, drawn: 0, live: 0, closed: false, lastData: new Map() };
  connections.set(conn, c);
  lane(c, 0);
  return c;
}

function lane(c, stream) {
  let l = c.lanes.get(stream);
  if (l) return l;
  const row = el("div", "lane");
  row.dataset.stream = stream;
  const label = el("div", "label");
  const what = el("div", "what", stream === 0 ? "SETTINGS, PING, WINDOW_UPDATE, GOAWAY" : "");
  label.append(el("div", "name", stream === 0 ? "connection (stream 0)" : `stream ${stream}`), what);
  const track = el("div", "track");
  row.append(label, track);
  c.rows.append(row);
  l = { stream, row, label, what, track, live: 0, ended: [false, false], method: "", status: "" };
  c.lanes.set(stream, l);
  return l;
}

/** Where a connection's next frame goes: after the last, further after a pause. */
function advance(c, time) {
  const pauseMs = c.lastTime === null ? 0 : Math.max(0, (time - c.lastTime) * 1000);
  c.lastTime = time;
  if (c.drawn > 0) c.x += STEP + Math.min(MAX_PAUSE, Math.round(pauseMs * PX_PER_MS));
  c.drawn += 1;
  if (c.x - c.lastTick >= TICK_EVERY) {
    const tick = el("span", "tick", time.toFixed(3));
    tick.style.left = `${c.x}px`;
    c.axis.append(tick);
    c.ticks.push({ x: c.x, node: tick });
    c.lastTick = c.x;
  }
  return c.x;
}

const DIRECTIONS = { client_to_server: ["c2s", "client → server", 0], server_to_client: ["s2c", "server → client", 1] };

/** The box's class and letter for a record. */
function look(record) {
  if (record.event === "preface") return ["t-settings", "✦"];
  if (record.event === "notice") return ["t-notice", "!"];
  switch (record.type) {
    case "HEADERS":
    case "CONTINUATION":
      return record.role === "trailers" ? ["t-trailers", "T"] : ["t-headers", record.type === "HEADERS" ? "H" : "C"];
    case "DATA": return ["t-data", "D"];
    case "RST_STREAM": return ["t-rst", "R"];
    case "SETTINGS": return ["t-settings", "S"];
    case "PING": return ["t-ping", "P"];
    case "WINDOW_UPDATE": return ["t-window", "W"];
    case "GOAWAY": return ["t-goaway", "G"];
    default: return ["t-other", "?"];
  }
}

/** A box's tooltip, made when the pointer first comes over it. */
function tooltip(box) {
  const entry = entries.get(box.dataset.key);
  if (!entry || box.title) return;
  const { record, messages } = entry;
  const arrow = DIRECTIONS[record.dir]?.[1] ?? "";
  const what = record.event === "frame" ? `${record.type} ${record.flags.join(" ")}` : record.event;
  const lines = [`${record.time.toFixed(6)} s ${arrow} ${what}`];
  for (const m of messages) {
    lines.push(`${m.type || "message"} ${JSON.stringify(m.message ?? m.schemaless ?? m.not_decoded)}`.slice(0, 200));
  }
  box.title = lines.join("\n");
}

/** Draws one frame (or preface, or notice) as a box on its lane. */
function draw(record) {
  const c = connection(record.conn);
  const stream = record.event === "frame" ? record.stream : 0;
  const l = lane(c, stream);
  const x = advance(c, record.time);
  const [cls, letter] = look(record);
  const [side] = DIRECTIONS[record.dir] || ["whole"];
  const box = el("div", `frame ${cls} ${side}`, letter);
  const key = String(nextKey++);
  box.dataset.key = key;
  box.style.left = `${x}px`;
  l.track.append(box);
  l.live += 1;
  c.live += 1;
  entries.set(key, { record, messages: [], box });
  shown.push({ key, box, c, lane: l, x });
  if (record.event === "frame") updateLane(c, l, record, key);
}

/** What a frame says about its stream: its method, its end, its status. */
function updateLane(c, l, record, key) {
  const d = DIRECTIONS[record.dir]?.[2] ?? 0;
  if (record.type === "DATA") c.lastData.set(`${record.stream}/${record.dir}`, key);
  if (record.role === "request") {
    const path = (record.headers || []).find(([name]) => name === ":path");
    if (path) {
      l.method = path[1].split("/").pop();
      l.label.title = path[1];
    }
  }
  if (record.role === "trailers" && record.grpc_status_name) l.status = record.grpc_status_name;
  if (record.flags.includes("END_STREAM")) l.ended[d] = true;
  if (record.type === "RST_STREAM") {
    l.ended = [true, true];
    l.status = `reset ${record.error}`;
  }
  if (l.stream !== 0) {
    l.what.textContent = [l.method, l.status].filter(Boolean).join(" · ");
    l.row.classList.toggle("ended", l.ended[0] && l.ended[1]);
  }
}

/** A message goes with the DATA frame it ended in (the record before it). */
function attach(record) {
  const c = connection(record.conn);
  const key = c.lastData.get(`${record.stream}/${record.dir}`);
  const entry = key !== undefined && entries.get(key);
  if (!entry) return;
  entry.messages.push(record);
  entry.box.classList.add("has-message");
}

function closed(record) {
  const c = connection(record.conn);
  c.closed = true;
  c.section.classList.add("closed");
  const frames = Object.entries(record.frames).map(([type, n]) => `${type} ${n}`).join(", ");
  const ratio = record.json_ratio === null ? "" : `; JSON would be ${record.json_ratio.toFixed(2)}× the binary`;
  c.summary.textContent = `closed: ${record.streams} streams; frames ${frames || "none"}; ` +
    `bytes client → server ${record.bytes.client_to_server}, server → client ${record.bytes.server_to_client}${ratio}`;
}

function take(record) {
  switch (record.event) {
    case "open": {
      const c = connection(record.conn);
      c.title.textContent = `connection #${record.conn}: ${record.client} → tap → ${record.upstream}`;
      break;
    }
    case "preface":
    case "frame":
    case "notice":
      draw(record);
      break;
    case "message":
      attach(record);
      break;
    case "close":
      closed(record);
      break;
    default:
      break;
  }
}

/** Takes the oldest frames off the page until FRAME_CAP are left. */
function dropOld() {
  while (shown.length - shownStart > FRAME_CAP) {
    const old = shown[shownStart];
    shown[shownStart] = undefined;
    shownStart += 1;
    old.box.remove();
    entries.delete(old.key);
    dropped += 1;
    old.lane.live -= 1;
    old.c.live -= 1;
    const ticks = old.c.ticks;
    while (ticks.length && ticks[0].x <= old.x) ticks.shift().node.remove();
    const l = old.lane;
    if (l.live === 0 && l.stream !== 0 && l.ended[0] && l.ended[1]) {
      l.row.remove();
      old.c.lanes.delete(l.stream);
    }
    if (old.c.live === 0 && old.c.closed) {
      old.c.section.remove();
      connections.delete(old.c.conn);
    }
  }
  if (shownStart > 4096) {
    shown = shown.slice(shownStart);
    shownStart = 0;
  }
}

function flush() {
  scheduled = false;
  const batch = queue.length > FLUSH_MAX ? queue.splice(0, FLUSH_MAX) : queue;
  if (batch === queue) queue = [];
  const touched = new Set();
  for (const record of batch) {
    take(record);
    if (record.conn !== undefined) touched.add(connections.get(record.conn));
  }
  dropOld();
  const follow = $("follow").checked;
  for (const c of touched) {
    if (!c || !connections.has(c.conn)) continue;
    c.section.style.setProperty("--width", `${c.x + 60}px`);
    if (follow) c.scroller.scrollLeft = c.scroller.scrollWidth;
  }
  showCounts();
  if (queue.length) schedule();
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  // A hidden tab gets no animation frames: draw on a timer there.
  if (document.hidden) setTimeout(flush, 500);
  else requestAnimationFrame(flush);
}

function showCounts() {
  const onPage = shown.length - shownStart;
  const plural = (n, one) => `${n.toLocaleString("en")} ${one}${n === 1 ? "" : "s"}`;
  $("counts").textContent = `${plural(onPage, "frame")} on the page, in ${plural(connections.size, "connection")}`;
  let cap = `The page keeps the newest ${FRAME_CAP.toLocaleString("en")} frames`;
  cap += dropped ? `: ${dropped.toLocaleString("en")} older ones were dropped.` : ".";
  if (tapInfo) {
    cap += ` The tap keeps its last ${tapInfo.history_cap.toLocaleString("en")} records for a page that opens late`;
    cap += tapInfo.dropped ? ` (${tapInfo.dropped.toLocaleString("en")} were older than that).` : ".";
  }
  if (lagged) cap += ` This page fell behind: the tap skipped ${lagged.toLocaleString("en")} records for it.`;
  $("cap").textContent = cap;
}

function reset(info) {
  for (const c of connections.values()) c.section.remove();
  connections = new Map();
  shown = [];
  shownStart = 0;
  entries = new Map();
  dropped = 0;
  lagged = 0;
  queue = [];
  tapInfo = info;
  hideDetails();
  showCounts();
}

// The details of a clicked frame: its fields, its messages, its bytes.

function row(table, name, value) {
  const tr = el("tr");
  tr.append(el("th", "", name), el("td", "", String(value)));
  table.append(tr);
}

function fieldsOf(record) {
  const table = el("table", "fields");
  row(table, "connection", `#${record.conn}`);
  row(table, "time", `${record.time.toFixed(6)} s after the tap accepted the connection`);
  if (record.dir) row(table, "direction", DIRECTIONS[record.dir][1]);
  if (record.event !== "frame") {
    if (record.text) row(table, "notice", record.text);
    return table;
  }
  row(table, "stream", record.stream);
  row(table, "type", record.type);
  row(table, "flags", record.flags.join(" ") || "none");
  row(table, "length", `${record.length} bytes of payload`);
  if (record.settings) for (const s of record.settings) row(table, s.name, s.value);
  if (record.increment !== undefined) row(table, "increment", record.increment);
  if (record.payload !== undefined) row(table, "payload", record.payload);
  if (record.error !== undefined) row(table, "error", `${record.error} (${record.error_code})`);
  if (record.last_stream !== undefined) row(table, "last stream", record.last_stream);
  if (record.debug) row(table, "debug", record.debug);
  if (record.role) row(table, "header block", record.role);
  for (const [name, value] of record.headers || []) {
    row(table, name, name === "grpc-status" && record.grpc_status_name ? `${value} (${record.grpc_status_name})` : value);
  }
  if (record.continued) row(table, "header block", "continues in CONTINUATION frames");
  if (record.hpack_error) row(table, "HPACK", record.hpack_error);
  if (record.malformed) row(table, "malformed", record.malformed);
  return table;
}

function messageOf(m) {
  const box = el("div", "message");
  const size = m.json_length !== undefined ? `, ${m.json_length} B as JSON` : "";
  box.append(el("h4", "", `${m.type || "message"}: ${m.length} B on the wire${size}${m.compressed ? ", compressed" : ""}` +
    (m.data_frames > 1 ? `, split over ${m.data_frames} DATA frames` : "")));
  const body = m.message !== undefined ? JSON.stringify(m.message, null, 2) : m.schemaless ?? `not decoded: ${m.not_decoded}`;
  box.append(el("pre", "", body));
  return box;
}

/** A hex dump: offset, 16 bytes, the printable ones as text; a masked byte as ** and *. */
function hexDump(bytes, isMasked = () => false) {
  const lines = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const line = bytes.slice(at, at + 16);
    const hex = line.map((b, i) => (isMasked(at + i) ? "**" : b.toString(16).padStart(2, "0"))).join(" ");
    const text = line.map((b, i) => (isMasked(at + i) ? "*" : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${at.toString(16).padStart(4, "0")}  ${hex.padEnd(47)}  ${text}`);
  }
  return lines.join("\n");
}

function bytesOf(record) {
  const part = el("div", "bytes");
  let bytes;
  let total;
  let note;
  if (record.event === "preface") {
    bytes = [...PREFACE].map((ch) => ch.charCodeAt(0));
    total = bytes.length;
    note = "the client's connection preface";
  } else if (record.raw_withheld !== undefined) {
    part.append(el("h4", "", "Bytes"), el("p", "note masked-note", record.raw_withheld));
    return part;
  } else if (record.raw !== undefined) {
    bytes = (record.raw.match(/../g) || []).map((h) => parseInt(h, 16));
    total = record.length + 9;
    note = `the 9-byte frame header: length ${record.length}, type ${record.type}, ` +
      `flags ${(bytes[4] ?? 0).toString(16).padStart(2, "0")}, stream ${record.stream}; then the payload`;
  } else {
    return part;
  }
  const masked = record.masked || [];
  const isMasked = (at) => masked.some((m) => at >= m.from && at < m.to);
  const kept = bytes.length < total ? `the first ${bytes.length} of ${total} bytes` : `all ${total} bytes`;
  part.append(el("h4", "", `Bytes: ${kept}`), el("p", "note", note));
  for (const m of masked) {
    part.append(el("p", "note masked-note",
      `bytes ${m.from}–${m.to - 1} (${m.to - m.from}): the value of ${m.header}, masked (shown as **): the tap never shows a credential`));
  }
  part.append(el("pre", "hex", hexDump(bytes, isMasked)));
  return part;
}

function showDetails(key, box) {
  const entry = entries.get(key);
  if (!entry) return;
  selected?.classList.remove("selected");
  selected = box;
  box.classList.add("selected");
  const { record, messages } = entry;
  const body = $("details-body");
  body.replaceChildren();
  const what = record.event === "frame" ? `${record.type} on stream ${record.stream}` : record.event;
  body.append(el("h3", "", what), fieldsOf(record));
  for (const m of messages) body.append(messageOf(m));
  body.append(bytesOf(record));
  $("details").hidden = false;
}

function hideDetails() {
  selected?.classList.remove("selected");
  selected = null;
  $("details").hidden = true;
}

function status(text, cls) {
  const node = $("status");
  node.textContent = text;
  node.className = cls;
}

function start() {
  $("connections").addEventListener("click", (event) => {
    const box = event.target.closest(".frame[data-key]");
    if (box) showDetails(box.dataset.key, box);
  });
  $("connections").addEventListener("mouseover", (event) => {
    const box = event.target.closest(".frame[data-key]");
    if (box) tooltip(box);
  });
  $("close-details").addEventListener("click", hideDetails);
  const source = new EventSource("events");
  source.addEventListener("reset", (event) => {
    reset(JSON.parse(event.data));
    status("live", "live");
  });
  source.addEventListener("lagged", (event) => {
    lagged += JSON.parse(event.data).skipped;
    showCounts();
  });
  source.onmessage = (event) => {
    queue.push(JSON.parse(event.data));
    schedule();
  };
  // EventSource reconnects by itself; the tap then sends its history again.
  source.onerror = () => status("the tap does not answer: retrying…", "down");
  showCounts();
}

start();
