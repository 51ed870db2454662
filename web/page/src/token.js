// The Token field: the caller's token, kept for this tab only
// (sessionStorage, which closing the tab clears), sent by every call as
// `authorization: Bearer …` (over fetch and over a WebSocket alike).
import { $ } from "./dom.js";

const TOKEN_KEY = "messenger-token";
const tokenInput = $("token-form").elements.token;
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";

/** The field's token, without a pasted "Bearer " or spaces ("" for none). */
export function currentToken() {
  return tokenInput.value.trim().replace(/^bearer\s+/i, "");
}

/** A header carries printable ASCII only, as a JWT is. */
export const HEADER_SAFE = /^[\x21-\x7e]+$/;

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

/** What to do about a refusal of the caller's identity. */
export function authHint(codeName) {
  if (codeName === "UNAUTHENTICATED") {
    return currentToken()
      ? " (the server refused the token: paste a valid one in the Token field)"
      : " (the server asks for a token: paste one in the Token field)";
  }
  if (codeName === "PERMISSION_DENIED") return " (the token is valid, but does not allow this call)";
  return "";
}

