// The CollaborativeFeed card (bidirectional, over a WebSocket): join a room
// with a name, or the plain echo with no room; each update as it arrives,
// numbered by room-seq (the k-th delivered is event room-seq + k); the
// System's join and leave notices; after a dropped socket, a reconnect with
// room-since that says what it recovered, or that history was lost.
import { create } from "@bufbuild/protobuf";
import { FeedUpdateSchema, LearningMessenger } from "../gen/messenger_pb.js";
import { $, addSizeRow, clearTable, hide, show } from "./dom.js";
import { startSocketCall } from "./socket.js";

/** The server's user for its notices and acknowledgements. */
const SYSTEM = "System";
/** Reconnects: the first after this, doubling to RETRY_MAX_MS, for up to RETRY_FOR_MS. */
const RETRY_MS = 250;
const RETRY_MAX_MS = 4000;
const RETRY_FOR_MS = 60_000;

const [list, state, error, sizes] = [$("feed-updates"), $("feed-state"), $("feed-error"), $("feed-sizes")];

/** The session in the card: {room, user, call, next, last, left, retry, recovering}. */
let session = null;

function setJoined(joined) {
  $("feed-join").disabled = joined;
  $("feed-leave").disabled = !joined;
  $("feed-send").disabled = !joined;
}

function say(text) {
  state.textContent = text;
  state.hidden = false;
}

/** One received update in the list: its event number, who, what. */
function append(update, seq, recovered) {
  const item = document.createElement("li");
  item.className = update.user === SYSTEM ? "system" : "update";
  if (recovered) item.classList.add("recovered");
  if (seq !== undefined) item.dataset.seq = String(seq);
  item.dataset.user = update.user;
  item.dataset.message = update.message;
  const number = document.createElement("span");
  number.className = "seq";
  number.textContent = seq === undefined ? "" : `#${seq}`;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = `${update.user}: ${update.message}`;
  item.append(number, text);
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function connect(current, since) {
  const headers = current.room ? { room: current.room, user: current.user, "room-since": since } : {};
  current.recovering = since === undefined ? null : { since, count: 0 };
  current.next = undefined;
  current.call = startSocketCall(LearningMessenger.method.collaborativeFeed, headers, {
    headers: (metadata) => {
      const seq = metadata.get("room-seq")[0];
      if (seq !== undefined) current.next = BigInt(seq) + 1n;
    },
    message: (update) => {
      if (session !== current) return;
      current.retry = null;
      const seq = current.next;
      if (seq !== undefined) {
        current.next = seq + 1n;
        current.last = seq;
      }
      const recovering = current.recovering;
      const ownJoin = update.user === SYSTEM && update.message === `${current.user} joined the room`;
      if (recovering && ownJoin) {
        say(`in room ${current.room} as ${current.user}: reconnected with room-since ${recovering.since}; ` +
          `recovered ${recovering.count} event${recovering.count === 1 ? "" : "s"} missed while the socket was down`);
        current.recovering = null;
      } else if (recovering) {
        recovering.count += 1;
      }
      append(update, seq, Boolean(recovering) && !ownJoin);
      if (list.children.length === 1) addSizeRow(sizes, "←", FeedUpdateSchema, update);
    },
    end: (ending) => {
      if (session !== current) return;
      if (current.left || ending.code === 0) {
        say(current.room ? `left room ${current.room}` : "the echo ended");
        session = null;
        setJoined(false);
        return;
      }
      if (ending.name === "OUT_OF_RANGE" && since !== undefined) {
        say(`in room ${current.room} as ${current.user}: history was lost, so the events missed ` +
          `while the socket was down cannot be shown (${ending.message}); rejoined without room-since`);
        connect(current, undefined);
        return;
      }
      if ((ending.dropped || ending.name === "UNAVAILABLE") && current.room) {
        reconnect(current, ending);
        return;
      }
      show(error, ending.line);
      session = null;
      setJoined(false);
    },
  });
}

/** After a dropped socket: again with room-since, the last event seen, with backoff. */
function reconnect(current, ending) {
  const now = performance.now();
  current.retry ??= { since: now, waitMs: RETRY_MS };
  if (now - current.retry.since > RETRY_FOR_MS) {
    show(error, `${ending.line}; gave up reconnecting after ${RETRY_FOR_MS / 1000} s`);
    session = null;
    setJoined(false);
    return;
  }
  const after = current.last === undefined ? "" : ` after event ${current.last}`;
  say(`in room ${current.room}: the socket dropped${after} (${ending.line}); reconnecting with room-since`);
  const waitMs = current.retry.waitMs;
  current.retry.waitMs = Math.min(waitMs * 2, RETRY_MAX_MS);
  setTimeout(() => session === current && connect(current, current.last), waitMs);
}

$("feed-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  session?.call.cancel();
  list.replaceChildren();
  hide(error, state);
  clearTable(sizes);
  const room = form.elements.room.value.trim();
  const user = form.elements.user.value.trim();
  session = { room, user: user || "browser", last: undefined, left: false, retry: null };
  say(room ? `in room ${room} as ${session.user}` : "plain echo: no room, the server answers each update");
  setJoined(true);
  try {
    connect(session, undefined);
  } catch (err) {
    show(error, err.message);
    session = null;
    setJoined(false);
  }
});

$("feed-leave").addEventListener("click", () => {
  if (!session) return;
  session.left = true;
  // A half-close: the server ends the call, and the room tells the others.
  session.call.finish();
});

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.currentTarget.elements.message;
  if (!session || !input.value) return;
  const update = create(FeedUpdateSchema, { user: session.user, message: input.value });
  session.call.send(update);
  if (sizes.hidden) addSizeRow(sizes, "→", FeedUpdateSchema, update);
  input.value = "";
});
