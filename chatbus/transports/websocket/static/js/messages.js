/*
 * The messages of the room, in id order and each shown once (a message seen
 * again, in a history page or a replay, brings its current state: edited,
 * deleted, reactions), grouping of consecutive messages, what a new arrival
 * does (unread count, divider, scrolling, announcing), and moving between
 * messages with the keyboard (arrows, R replies, E edits yours, Delete
 * deletes it). How one message looks is message-view.js.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { attachmentsSummary } from "./attachments.js";
import { confirmSent, focusComposer, startReply } from "./composer.js";
import { $, matchTabStops, moveInToolbar, rememberInToolbar } from "./dom.js";
import { canDelete, canEdit, isMine, mentionsMe, normalise, stateDiffers, takeState } from "./message-model.js";
import { forgetQuotes, quotesFound, refreshMessage, renderMessage, revealNamesakes, useMessageActions } from "./message-view.js";
import { noteIdentity, noteSender } from "./people.js";
import { clearDivider, currentDivider, isNearBottom, markDivider, noteNewBelow, scrollToBottom } from "./scroll.js";
import { ROOM } from "./session.js";
import { stopTyping } from "./sidebar.js";
import { announce, countUnread, updateTitle } from "./status.js";
import { clip } from "./text.js";

const GROUP_WITHIN_MS = 5 * 60 * 1000;

const ui = { messages: $("messages") };

/** The messages shown: id -> {id, type, kind, sender, text, date, ..., el} (message-model.js), and their ids ascending. */
export const shown = { byId: new Map(), ids: [] };
let activeMessage = null; // the one message Tab reaches

/** What the list needs from history paging and from changing messages, built on top of it (wired by main.js). */
const handlers = {
  started() {}, // the list got its first message
  older() {}, // the reader wants the messages above the first one
  edit() {}, // the reader pressed E on their message
  remove() {}, // the reader pressed Delete on a message they may delete
};

/** `handlers`: paging's `started`, `older` and `jump`; the message buttons' `react`, `edit` and `remove`. */
export function useMessageHandlers(given) {
  Object.assign(handlers, given);
  useMessageActions({ reply: (message) => startReply(message), ...given });
}

/**
 * Add one message frame. `source` is "live" (just sent), "missed" (replayed
 * after a reconnect) or "history" (an older page). A message already shown is
 * not added again, but takes the state the frame carries, unless a live change
 * reached it after `since` (performance.now() when the frame was asked for).
 */
export function addMessage(type, data, source, since = Infinity) {
  const message = normalise(type, data);
  if (!message) return false;
  if (noteIdentity(message.sender, message.displayName, message.transport)) revealNamesakes();
  if (isMine(message)) confirmSent(message);
  if (message.room !== ROOM) return false;
  const known = shown.byId.get(message.id);
  if (known) {
    if (known.changedAt <= since && stateDiffers(known, data)) {
      takeState(known, data);
      refreshMessage(known);
    }
    return false;
  }
  if (message.kind !== "system") noteSender(message.sender, message.kind);

  const atBottom = isNearBottom();
  const wasEmpty = shown.ids.length === 0;
  const appended = wasEmpty || message.id > shown.ids[shown.ids.length - 1];
  insertMessage(message);
  if (wasEmpty) handlers.started();
  if (source !== "history") arrived(message, source, atBottom, appended);
  return true;
}

/** A new message (not one from history): unread count, divider, scrolling, announcing. */
function arrived(message, source, atBottom, appended) {
  stopTyping(message.sender);
  const mine = isMine(message);
  if (!mine) {
    if (document.hidden) {
      countUnread();
      markDivider(message.el);
      updateTitle();
    }
    if (source === "live") announceMessage(message);
  } else {
    clearDivider();
  }
  if (!appended) return;
  if (mine || atBottom) scrollToBottom();
  else noteNewBelow(message.el);
}

function announceMessage(message) {
  const prefix = mentionsMe(message) ? `${message.displayName} mentioned you` : message.displayName;
  const files = attachmentsSummary(message.attachments);
  announce(`${prefix}: ${clip(message.text, 200)}${files ? `${message.text ? ", with " : "sent "}${files}` : ""}`);
}

/** Forget every message shown (a new session). */
export function clearMessages() {
  shown.byId.clear();
  shown.ids.length = 0;
  forgetQuotes();
  activeMessage = null;
  ui.messages.replaceChildren();
}

// ----------------------------------------------------------------- the list
function indexFor(id) {
  let low = 0;
  let high = shown.ids.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (shown.ids[mid] < id) low = mid + 1;
    else high = mid;
  }
  return low;
}

function insertMessage(message) {
  const index = indexFor(message.id);
  message.el = renderMessage(message, message.replyTo ? shown.byId.get(message.replyTo) : null);
  const nextId = shown.ids[index];
  const nextEl = nextId !== undefined ? shown.byId.get(nextId).el : null;
  // Keep a "new messages" divider right before the message it belongs to.
  const divider = currentDivider();
  const before = nextEl && nextEl.previousElementSibling && nextEl.previousElementSibling === divider ? divider : nextEl;
  ui.messages.insertBefore(message.el, before);
  shown.ids.splice(index, 0, message.id);
  shown.byId.set(message.id, message);
  updateGrouping(message);
  if (nextId !== undefined) updateGrouping(shown.byId.get(nextId));
  quotesFound(message);
  // Tabbing into the list lands on the newest message unless the reader is in it.
  const reading = activeMessage && activeMessage.isConnected && activeMessage.contains(document.activeElement);
  if (!reading && message.id === shown.ids[shown.ids.length - 1]) setActiveMessage(message.el, { focus: false });
}

/** Consecutive messages from one sender within a few minutes share one header. */
function updateGrouping(message) {
  const index = indexFor(message.id);
  const previous = index > 0 ? shown.byId.get(shown.ids[index - 1]) : null;
  const grouped = Boolean(
    previous &&
      previous.sender === message.sender &&
      previous.kind === message.kind &&
      !message.replyTo &&
      message.date &&
      previous.date &&
      message.date - previous.date < GROUP_WITHIN_MS &&
      message.date - previous.date >= 0 &&
      message.el.previousElementSibling === previous.el,
  );
  message.el.classList.toggle("grouped", grouped);
}

// ----------------------------------------------------------------- keyboard
/** Make `li` the message Tab reaches (its buttons too), and optionally focus it. */
export function setActiveMessage(li, { focus }) {
  if (activeMessage && activeMessage !== li) {
    activeMessage.tabIndex = -1;
    matchTabStops(activeMessage);
  }
  activeMessage = li;
  li.tabIndex = 0;
  matchTabStops(li);
  if (focus) li.focus({ preventScroll: false });
}

/** The message a list key moves to from `li`, or null; ArrowUp on the first one loads older ones. */
function messageFor(key, li) {
  const items = [...ui.messages.querySelectorAll("li.msg")];
  const index = items.indexOf(li);
  if (key === "ArrowUp") {
    if (!items[index - 1]) handlers.older();
    return items[index - 1];
  }
  if (key === "ArrowDown") return items[index + 1];
  if (key === "Home") return items[0];
  return items[items.length - 1];
}

function onMessagesKeydown(event) {
  const li = event.target.closest && event.target.closest("li.msg");
  if (!li) return;
  if (event.target !== li) {
    if (event.key === "Escape") li.focus();
    else if (!moveInToolbar(event)) return;
    event.preventDefault();
    return;
  }
  const message = shown.byId.get(Number(li.dataset.id));
  if (!message) return;
  if ((event.key === "r" || event.key === "R") && !message.deleted) {
    startReply(message);
  } else if ((event.key === "e" || event.key === "E") && canEdit(message)) {
    handlers.edit(message);
  } else if (event.key === "Delete" && canDelete(message)) {
    handlers.remove(message);
  } else if (event.key === "Escape") {
    focusComposer();
  } else if (["ArrowUp", "ArrowDown", "Home", "End"].includes(event.key)) {
    const next = messageFor(event.key, li);
    if (next) {
      setActiveMessage(next, { focus: true });
      next.scrollIntoView({ block: "nearest" });
    }
  } else {
    return;
  }
  event.preventDefault();
}

function onMessagesFocusIn(event) {
  const li = event.target.closest && event.target.closest("li.msg");
  if (li && li !== activeMessage) setActiveMessage(li, { focus: false });
  if (li && event.target.tagName === "BUTTON") rememberInToolbar(event.target);
}

export function wireMessages() {
  ui.messages.addEventListener("keydown", onMessagesKeydown);
  ui.messages.addEventListener("focusin", onMessagesFocusIn);
}
