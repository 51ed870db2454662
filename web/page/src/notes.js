// The SubmitResearchNotes card (client streaming, over a WebSocket): the
// notes typed, one per line, sent one by one with the delay chosen, a
// progress bar as each is written, then the server's summary; Cancel ends
// the call.
import { create } from "@bufbuild/protobuf";
import { LearningMessenger, ResearchNoteSchema, SummaryResponseSchema } from "../gen/messenger_pb.js";
import { $, addSizeRow, clearTable, hide, seconds, show } from "./dom.js";
import { grpcTimeout, startSocketCall } from "./socket.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let uploading = null;

$("notes-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const [progress, state, summary, error, sizes] =
    [$("notes-progress"), $("notes-state"), $("notes-summary"), $("notes-error"), $("notes-sizes")];
  uploading?.call.cancel();
  hide(summary, error);
  clearTable(sizes);
  const notes = form.elements.notes.value.split("\n").map((line) => line.trim()).filter((line) => line);
  if (notes.length === 0) {
    show(error, "no notes: type one per line");
    return;
  }
  const delayMs = Math.max(0, Number(form.elements.delayMs.value) || 0);
  const upload = { cancelled: false, call: null };
  uploading = upload;
  progress.max = notes.length;
  progress.value = 0;
  progress.hidden = false;
  $("notes-cancel").disabled = false;
  const started = performance.now();
  const finished = new Promise((resolve) => {
    upload.call = startSocketCall(
      LearningMessenger.method.submitResearchNotes,
      { "grpc-timeout": grpcTimeout(Number(form.elements.timeoutMs.value)) },
      {
        message: (response) => {
          show(summary, `${response.finalSummary} (Total ${response.count}) in ${seconds(performance.now() - started)}`);
          summary.dataset.count = String(response.count);
          summary.dataset.summary = response.finalSummary;
          addSizeRow(sizes, "←", SummaryResponseSchema, response);
        },
        end: (ending) => {
          if (ending.code !== 0) show(error, ending.line);
          resolve(ending);
        },
      },
    );
  });
  let ended = null;
  finished.then((ending) => (ended = ending));
  for (const [i, text] of notes.entries()) {
    if (upload.cancelled || ended) break;
    const note = create(ResearchNoteSchema, { text });
    upload.call.send(note);
    if (i === 0) addSizeRow(sizes, "→", ResearchNoteSchema, note);
    progress.value = i + 1;
    state.textContent = `${i + 1} of ${notes.length} notes sent`;
    if (i + 1 < notes.length && delayMs > 0) await sleep(delayMs);
  }
  if (!upload.cancelled && !ended) {
    upload.call.finish();
    state.textContent = `${notes.length} notes sent; waiting for the summary`;
    await finished;
    if (!upload.cancelled) state.textContent = `${notes.length} notes sent`;
  }
  if (uploading === upload) {
    uploading = null;
    $("notes-cancel").disabled = true;
  }
});

$("notes-cancel").addEventListener("click", () => {
  if (!uploading) return;
  uploading.cancelled = true;
  uploading.call.cancel();
  $("notes-state").textContent += " — cancelled: the socket is closed, and with it the call";
  $("notes-cancel").disabled = true;
});
