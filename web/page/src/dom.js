// What every card of the page shares: finding elements, showing and hiding
// lines, and the binary-against-JSON table.
import { toBinary, toJsonString } from "@bufbuild/protobuf";

export const $ = (id) => document.getElementById(id);

export function show(element, text) {
  element.textContent = text;
  element.hidden = false;
}

export function hide(...elements) {
  for (const element of elements) element.hidden = true;
}

const utf8 = new TextEncoder();

/** A row of the sizes table: the message on the wire (protobuf) and as JSON. */
export function addSizeRow(table, direction, schema, message) {
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

export function clearTable(table) {
  table.replaceChildren();
  table.hidden = true;
}

export function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

