/*
 * The messages of the room, in id order and each shown once: how a message
 * frame becomes a list item (sender, role, badges, time, the quoted message it
 * replies to, its text), grouping of consecutive messages, what a new arrival
 * does (unread count, divider, scrolling, announcing), and moving between
 * messages with the keyboard.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { confirmSent, focusComposer, startReply } from "./composer.js";
import { $, avatar, el } from "./dom.js";
import { markedText } from "./message-text.js";
import { noteSender } from "./people.js";
import { DEFAULT_ROOM, messageId } from "./protocol.js";
import { clearDivider, currentDivider, isNearBottom, markDivider, noteNewBelow, scrollToBottom } from "./scroll.js";
import { ROOM, isMe, session } from "./session.js";
import { stopTyping } from "./sidebar.js";
import { announce, countUnread, updateTitle } from "./status.js";
import { MENTION_RE, clip, mentionName, parseTime, sameName, shortTime } from "./text.js";

const GROUP_WITHIN_MS = 5 * 60 * 1000;

const ui = { messages: $("messages") };

/** The messages shown: id -> {id, type, kind, sender, text, date, ..., el}, and their ids ascending. */
export const shown = { byId: new Map(), ids: [] };
const pendingQuotes = new Map(); // id of a message not shown yet -> quote buttons waiting for it
let activeMessage = null; // the one message Tab reaches

/** What the list needs from history paging, which is built on top of it (wired by main.js). */
const paging = {
  started() {}, // the list got its first message
  older() {}, // the reader wants the messages above the first one
  jump() {}, // the reader selected a quote of message `id`
};

export function usePaging(handlers) {
  Object.assign(paging, handlers);
}

// ----------------------------------------------------------------- model
function normalise(type, data) {
  const id = messageId(data.id);
  if (id === null) return null;
  const replyTo = typeof data.replyTo === "number" ? data.replyTo : typeof data.replyTo === "string" && /^\d+$/.test(data.replyTo) ? Number(data.replyTo) : null;
  const sender = typeof data.sender === "string" && data.sender ? data.sender : "unknown";
  let kind = type === "agent_response" ? (sender === "system" ? "system" : "agent") : "human";
  if (type === "agent_response" && (data.kind === "agent" || data.kind === "system")) kind = data.kind;
  return {
    id,
    type,
    kind,
    sender,
    role: typeof data.role === "string" ? data.role : "",
    text: typeof data.text === "string" ? data.text : String(data.text ?? ""),
    date: parseTime(data.timestamp),
    timestamp: typeof data.timestamp === "string" ? data.timestamp : "",
    mentions: Array.isArray(data.mentions) ? data.mentions.filter((m) => typeof m === "string") : [],
    isCommand: data.isCommand === true,
    replyTo: replyTo && replyTo > 0 ? replyTo : null,
    room: typeof data.room === "string" && data.room ? data.room : DEFAULT_ROOM,
    transport: typeof data.transport === "string" ? data.transport : null,
    clientId: typeof data.clientId === "string" ? data.clientId : null,
    el: null,
  };
}

function isMine(message) {
  return message.kind === "human" && isMe(message.sender);
}

function mentionsMe(message) {
  if (!session.me || isMine(message)) return false;
  if (message.mentions.some((name) => sameName(name, session.me.userId))) return true;
  for (const match of message.text.matchAll(MENTION_RE)) {
    if (sameName(mentionName(match[1]), session.me.userId)) return true;
  }
  return false;
}

/**
 * Add one message frame. `source` is "live" (just sent), "missed" (replayed
 * after a reconnect) or "history" (an older page). Duplicates by id are dropped.
 */
export function addMessage(type, data, source) {
  const message = normalise(type, data);
  if (!message) return false;
  if (message.room !== ROOM) return false;
  if (shown.byId.has(message.id)) return false;
  if (message.kind !== "system") noteSender(message.sender, message.kind);
  if (isMine(message)) confirmSent(message);

  const atBottom = isNearBottom();
  const wasEmpty = shown.ids.length === 0;
  const appended = wasEmpty || message.id > shown.ids[shown.ids.length - 1];
  insertMessage(message);
  if (wasEmpty) paging.started();
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
  const prefix = mentionsMe(message) ? `${message.sender} mentioned you` : message.sender;
  announce(`${prefix}: ${clip(message.text, 200)}`);
}

/** Forget every message shown (a new session). */
export function clearMessages() {
  shown.byId.clear();
  shown.ids.length = 0;
  pendingQuotes.clear();
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
  message.el = renderMessage(message);
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
  const waiting = pendingQuotes.get(message.id);
  if (waiting) {
    pendingQuotes.delete(message.id);
    for (const quote of waiting) fillQuote(quote, message);
  }
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

// ----------------------------------------------------------------- one message
function renderMessage(message) {
  const mine = isMine(message);
  const classes = ["msg", `msg-${message.kind}`];
  if (mine) classes.push("msg-mine");
  if (mentionsMe(message)) classes.push("msg-mentions-me");
  if (message.isCommand) classes.push("msg-command");

  const body = el("div", { className: "msg-body" }, messageHead(message, mine));
  if (message.replyTo) body.append(renderQuote(message.replyTo));
  body.append(el("p", { className: "msg-text" }, markedText(message.kind, message.text)));

  const reply = el("button", {
    type: "button",
    className: "msg-action",
    tabindex: "-1",
    "aria-label": `Reply to ${message.sender}`,
    text: "Reply",
  });
  reply.addEventListener("click", () => startReply(message));

  return el(
    "li",
    { className: classes.join(" "), id: `msg-${message.id}`, tabindex: "-1", dataset: { id: String(message.id) } },
    avatar(message.sender, message.kind),
    body,
    el("div", { className: "msg-actions" }, reply),
  );
}

function messageHead(message, mine) {
  return el(
    "div",
    { className: "msg-head" },
    el("span", { className: "msg-sender", text: message.sender }),
    message.role && message.role !== "user" && message.kind !== "system" ? el("span", { className: "msg-role", text: message.role }) : null,
    message.kind !== "human" ? el("span", { className: `badge badge-${message.kind}`, text: message.kind === "agent" ? "agent" : "system" }) : null,
    mine ? el("span", { className: "badge badge-you", text: "you" }) : null,
    message.transport && message.transport !== "websocket" ? el("span", { className: "via", text: `via ${message.transport}` }) : null,
    message.date
      ? el("time", { className: "msg-time", datetime: message.timestamp, title: message.date.toLocaleString(), text: shortTime(message.date) })
      : null,
  );
}

/** The quoted message a reply answers; filled in once that message is shown. */
function renderQuote(targetId) {
  const quote = el("button", { type: "button", className: "quote", tabindex: "-1" });
  quote.dataset.target = String(targetId);
  quote.addEventListener("click", () => paging.jump(targetId));
  const target = shown.byId.get(targetId);
  if (target) {
    fillQuote(quote, target);
  } else {
    quote.append(el("span", { className: "quote-sender", text: `Reply to message #${targetId}` }), el("span", { className: "quote-text", text: "Select to load it" }));
    quote.setAttribute("aria-label", `In reply to message ${targetId}; select to find it`);
    const waiting = pendingQuotes.get(targetId) || [];
    waiting.push(quote);
    pendingQuotes.set(targetId, waiting);
  }
  return quote;
}

function fillQuote(quote, target) {
  const snippet = clip(target.text, 140);
  const text = el("span", { className: "quote-text" }, markedText(target.kind, snippet, (rest) => rest));
  quote.replaceChildren(el("span", { className: "quote-sender", text: target.sender }), text);
  quote.setAttribute("aria-label", `In reply to ${target.sender}: ${snippet}. Select to go to that message.`);
}

// ----------------------------------------------------------------- keyboard
/** Make `li` the message Tab reaches (its buttons too), and optionally focus it. */
export function setActiveMessage(li, { focus }) {
  if (activeMessage && activeMessage !== li) {
    activeMessage.tabIndex = -1;
    for (const button of activeMessage.querySelectorAll("button")) button.tabIndex = -1;
  }
  activeMessage = li;
  li.tabIndex = 0;
  for (const button of li.querySelectorAll("button")) button.tabIndex = 0;
  if (focus) li.focus({ preventScroll: false });
}

/** The message a list key moves to from `li`, or null; ArrowUp on the first one loads older ones. */
function messageFor(key, li) {
  const items = [...ui.messages.querySelectorAll("li.msg")];
  const index = items.indexOf(li);
  if (key === "ArrowUp") {
    if (!items[index - 1]) paging.older();
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
    if (event.key === "Escape") {
      li.focus();
      event.preventDefault();
    }
    return;
  }
  if (event.key === "r" || event.key === "R") {
    const message = shown.byId.get(Number(li.dataset.id));
    if (message) startReply(message);
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
}

export function wireMessages() {
  ui.messages.addEventListener("keydown", onMessagesKeydown);
  ui.messages.addEventListener("focusin", onMessagesFocusIn);
}
