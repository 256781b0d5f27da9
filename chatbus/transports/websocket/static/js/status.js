/*
 * What the page tells the reader about the chat's state: the connection
 * indicator (the page's online / connecting / offline mark and words, with its
 * reconnect countdown), the error line above the message box and the
 * rate-limit wait (worded as the server words it), screen-reader
 * announcements, and the unread count in the tab title.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $, el } from "./dom.js";
import { setIcon } from "./icons.js";
import { isNearBottom, scrollToBottom } from "./scroll.js";
import { ROOM, connection } from "./session.js";
import { seconds, waitText } from "./text.js";

const ui = {
  connection: $("connection"),
  connectionMark: $("connection-mark"),
  connectionText: $("connection-text"),
  retryNow: $("retry-now"),
  send: $("send-button"),
  errorLine: $("error-line"),
  errorText: $("error-text"),
  announcer: $("announcer"),
};

/** The mark the connection indicator shows in each state of the connection. */
const CONNECTION_MARKS = { ready: "online", connecting: "connecting", waiting: "offline", idle: "offline" };
let countdownTimer = 0;
let rateTimer = 0;
let rateLimitedUntil = 0;
let unread = 0;

// ------------------------------------------------------------- connection
/** Show the connection's state; while waiting to reconnect, count the seconds down. */
function showConnection(kind) {
  clearInterval(countdownTimer);
  countdownTimer = 0;
  renderConnection(kind);
  if (kind === "waiting") countdownTimer = setInterval(() => renderConnection("waiting"), 1000);
}

function renderConnection(kind) {
  let text;
  let show = false;
  if (kind === "connecting") {
    if (connection.restarting) text = "Server restarting, reconnecting…";
    else text = connection.everConnected ? "Reconnecting…" : "Connecting…";
  } else if (kind === "ready") text = "Connected";
  else if (kind === "waiting") {
    text = waitingText(seconds(connection.retryAt - Date.now()));
    show = true;
  } else text = "Not connected";
  ui.connection.dataset.state = kind;
  document.body.dataset.connection = kind;
  setIcon(ui.connectionMark, CONNECTION_MARKS[kind] || "offline");
  if (ui.connectionText.textContent !== text) ui.connectionText.textContent = text;
  ui.retryNow.hidden = !show;
  ui.send.disabled = kind !== "ready";
  ui.send.title = kind === "ready" ? "" : "Not connected right now";
}

/** While a reconnect is due in `left` seconds: why we are waiting (a restart, a lost connection, no network). */
function waitingText(left) {
  if (navigator.onLine === false) return "Offline: waiting for the network";
  if (connection.restarting) return `Server restarting, reconnecting in ${left} s…`;
  if (connection.everConnected) return `Connection lost. Reconnecting in ${left} s`;
  return `Cannot reach the server. Retrying in ${left} s`;
}

// ------------------------------------------------------------- error line
export function showError(text, kind = "error") {
  clearInterval(rateTimer);
  // The line takes room from the messages: whoever read the latest one still sees it.
  const atBottom = isNearBottom();
  ui.errorLine.dataset.kind = kind;
  ui.errorText.textContent = text;
  ui.errorLine.hidden = false;
  if (atBottom) scrollToBottom();
}

export function hideError() {
  clearInterval(rateTimer);
  ui.errorLine.hidden = true;
  ui.errorText.textContent = "";
  delete ui.errorLine.dataset.kind;
}

/** Whether the error line is showing. */
export function errorShown() {
  return !ui.errorLine.hidden;
}

/** What the error line is about: "error", "rate" (a rate-limit wait), or undefined. */
export function errorKind() {
  return ui.errorLine.dataset.kind;
}

/** The server refused a message as too fast: nothing may be sent for `wait` seconds (whole seconds, as the server counts). */
export function limitRate(wait) {
  rateLimitedUntil = Date.now() + Math.max(1, Math.ceil(wait)) * 1000;
}

export function rateLimited() {
  return Date.now() < rateLimitedUntil;
}

/** Say how long to wait before sending again, counting down until it is over. */
export function showRateLimit() {
  const update = () => {
    const left = rateLimitedUntil - Date.now();
    if (left <= 0) {
      hideError();
      ui.send.disabled = connection.phase !== "ready";
      return;
    }
    const text = `You are sending messages too fast. Wait ${waitText(left / 1000)}, then send again; your message is still in the box.`;
    if (ui.errorText.textContent !== text) ui.errorText.textContent = text;
  };
  showError("", "rate");
  update();
  rateTimer = setInterval(update, 250);
}

// ------------------------------------------------- announcements and title
/** Have screen readers read `text` out (the last few stay in the live region for a while). */
export function announce(text) {
  const line = el("p", { text });
  ui.announcer.append(line);
  while (ui.announcer.childElementCount > 5) ui.announcer.firstElementChild.remove();
  setTimeout(() => line.remove(), 15000);
}

/** One more message arrived while the tab was hidden. */
export function countUnread() {
  unread += 1;
}

export function updateTitle() {
  const baseTitle = `#${ROOM} · chatbus`;
  const title = unread > 0 ? `(${unread}) ${baseTitle}` : baseTitle;
  if (document.title !== title) document.title = title;
}

function onVisibilityChange() {
  if (!document.hidden) {
    unread = 0;
    updateTitle();
    connection.reconnectNow();
  }
}

/** Forget the unread count and a rate-limit wait, and clear the error line (a new session). */
export function resetStatus() {
  unread = 0;
  rateLimitedUntil = 0;
  hideError();
}

export function wireStatus() {
  connection.on("status", showConnection);
  ui.retryNow.addEventListener("click", () => connection.reconnectNow());
  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("online", () => connection.reconnectNow());
  window.addEventListener("offline", () => {
    if (connection.phase === "waiting") renderConnection("waiting");
  });
}
