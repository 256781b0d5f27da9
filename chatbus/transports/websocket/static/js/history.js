/*
 * Paging back through the room's history: the first page after joining (or
 * switching rooms), older pages when the reader scrolls up (or presses the button, or ArrowUp
 * on the first message), the line at the top of the log ("Loading…", "This
 * is the start"), and jumping to a quoted message, loading pages until it is
 * there.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $ } from "./dom.js";
import { addMessage, setActiveMessage, shown } from "./messages.js";
import { inRoom, isChatFrame } from "./protocol.js";
import { noteScrolled, scrollToBottom } from "./scroll.js";
import { ROOM, connection } from "./session.js";
import { showError } from "./status.js";

const HISTORY_PAGE = 50;
const LOAD_OLDER_WITHIN_PX = 150;

const ui = {
  log: $("log"),
  loadOlder: $("load-older"),
  logTopText: $("log-top-text"),
};

let hasMore = true;
let latestShown = false; // the room's latest page has been shown
// FIFO of {before, kind, resolve, promise, sentAt, stale}; kind is "initial", "latest" or "older".
// A request for a room no longer shown stays, `stale`, so that each answer still meets its own request.
let requests = [];

/**
 * Ask for the page of messages before id `before` (the latest page when null).
 * Resolves true once it is shown, false when it could not be asked or the connection dropped.
 */
export function requestHistory(before, kind = "older") {
  return new Promise((resolve) => {
    const data = { limit: HISTORY_PAGE };
    if (before) data.before = before;
    if (!connection.send("history", inRoom(ROOM, data))) {
      resolve(false);
      return;
    }
    requests.push({ before, kind, resolve, sentAt: performance.now(), stale: false });
    renderLogTop();
  });
}

/** A `history` frame: the answer to the oldest request still open. */
export function onHistory(data) {
  const request = requests.shift() || { before: null, kind: "latest", resolve: () => {}, sentAt: 0 };
  if (request.stale) return;
  const frames = Array.isArray(data.messages) ? data.messages : [];
  const fromBottom = ui.log.scrollHeight - ui.log.scrollTop;
  for (const frame of frames) {
    if (isChatFrame(frame)) addMessage(frame.type, frame.data, "history", request.sentAt);
  }
  if (request.kind !== "older") latestShown = true;
  if (request.kind !== "latest") hasMore = data.hasMore === true;
  if (request.kind === "initial") scrollToBottom();
  else if (request.kind === "older") ui.log.scrollTop = ui.log.scrollHeight - fromBottom;
  renderLogTop();
  request.resolve(true);
  // A short first page may not fill the screen; keep paging until it does.
  if (hasMore && ui.log.scrollHeight <= ui.log.clientHeight + LOAD_OLDER_WITHIN_PX) loadOlder();
}

/** Load the page above the oldest message shown (once at a time). */
export function loadOlder() {
  if (connection.phase !== "ready" || !hasMore) return Promise.resolve(false);
  const pending = requests.find((request) => request.kind === "older" && !request.stale);
  if (pending) return pending.promise || Promise.resolve(false);
  const oldest = shown.ids[0];
  if (!oldest) return Promise.resolve(false);
  const promise = requestHistory(oldest, "older");
  const request = requests[requests.length - 1];
  if (request) request.promise = promise;
  return promise;
}

/** Whether a history request is waiting for its answer. */
export function historyPending() {
  return requests.length > 0;
}

/** Whether the room's latest page has been shown (else a reconnect asks for it again). */
export function historyLoaded() {
  return latestShown;
}

/** Whether there are older messages the server has not sent yet. */
export function historyHasMore() {
  return hasMore;
}

/** The connection dropped: open requests will not be answered. */
export function failHistory() {
  for (const request of requests) request.resolve(false);
  requests = [];
}

/** Start over (a new session): nothing asked, more to load. */
export function resetHistory() {
  hasMore = true;
  latestShown = false;
  failHistory();
}

/** Another room is shown: what was asked for the previous one is of no use, but its answers still come. */
export function forgetHistory() {
  hasMore = true;
  latestShown = false;
  for (const request of requests) {
    request.stale = true;
    request.resolve(false);
  }
}

export function renderLogTop() {
  const loading = requests.some((request) => !request.stale);
  const ready = connection.phase === "ready";
  ui.loadOlder.hidden = loading || !hasMore || !ready || shown.ids.length === 0;
  let text = "";
  if (loading) text = "Loading messages…";
  else if (!hasMore) text = shown.ids.length ? `This is the start of #${ROOM}.` : `No messages in #${ROOM} yet. Say hello!`;
  if (ui.logTopText.textContent !== text) ui.logTopText.textContent = text;
}

/** Bring message `id` into view and focus it, paging back until it is loaded. */
export async function jumpTo(id) {
  let guard = 0;
  while (!shown.byId.has(id) && hasMore && shown.ids.length && shown.ids[0] > id && guard < 40) {
    guard += 1;
    const loaded = await loadOlder();
    if (!loaded) break;
  }
  const target = shown.byId.get(id);
  if (!target) {
    showError("That message is no longer available.");
    return;
  }
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.el.scrollIntoView({ block: "center", behavior: reducedMotion ? "auto" : "smooth" });
  setActiveMessage(target.el, { focus: true });
  target.el.classList.remove("flash");
  void target.el.offsetWidth; // restart the highlight animation
  target.el.classList.add("flash");
}

function onLogScroll() {
  noteScrolled();
  if (ui.log.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
}

export function wireHistory() {
  ui.loadOlder.addEventListener("click", () => loadOlder());
  ui.log.addEventListener("scroll", onLogScroll, { passive: true });
}
