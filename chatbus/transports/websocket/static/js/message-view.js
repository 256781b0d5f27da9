/*
 * One message as a list item: the sender (by display name, with a badge for
 * people of other transports and the id in the tooltip, so two people of the
 * same name stay apart), role, badges and time; the quoted message it replies
 * to; its text and files, "(edited)" with who and when, a cursor while an agent is still
 * writing it, or "message deleted" in its place; its reactions; and its
 * buttons (reply, react, and edit or delete where that is yours to do). A
 * message that changes is redrawn in place, keeping the focus where it was.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { attachmentsSummary, attachmentsView } from "./attachments.js";
import { avatar, el, matchTabStops } from "./dom.js";
import { markedText } from "./message-text.js";
import { canDelete, canEdit, isMine, mentionsMe, showsEdited } from "./message-model.js";
import { displayNameOf, nameIsShared, transportLabel, whoIs } from "./people.js";
import { closePicker, pickerOpenOn, reactionsRow } from "./reactions.js";
import { clip, shortTime } from "./text.js";

/** What the buttons on a message do; replying, reacting, editing and deleting live elsewhere (wired by main.js). */
const actions = {
  reply() {},
  react() {},
  edit() {},
  remove() {},
  jump() {}, // the reader selected a quote of message `id`
};

export function useMessageActions(handlers) {
  Object.assign(actions, handlers);
}

const pendingQuotes = new Map(); // id of a message not shown yet -> quote buttons waiting for it

// ----------------------------------------------------------------- the whole item
export function renderMessage(message, quoted) {
  const body = el("div", { className: "msg-body" }, messageHead(message));
  if (message.replyTo) body.append(renderQuote(message.replyTo, quoted));
  body.append(el("div", { className: "msg-content" }, messageContent(message)));
  const files = attachmentsView(message);
  if (files) body.append(files);
  body.append(reactionsRow(message));
  const li = el(
    "li",
    { className: "msg", id: `msg-${message.id}`, tabindex: "-1", dataset: { id: String(message.id) } },
    avatar(message.displayName, message.kind, message.sender),
    body,
    el("div", { className: "msg-actions", role: "toolbar", "aria-label": "Message actions" }, messageActions(message)),
  );
  markState(li, message);
  return li;
}

/** Classes and attributes that follow the message's state. */
function markState(li, message) {
  li.classList.add(`msg-${message.kind}`);
  li.classList.toggle("msg-mine", isMine(message));
  li.classList.toggle("msg-mentions-me", mentionsMe(message));
  li.classList.toggle("msg-command", message.isCommand && !message.deleted);
  li.classList.toggle("msg-deleted", message.deleted);
  li.classList.toggle("msg-streaming", message.streaming);
  if (message.streaming) li.setAttribute("aria-busy", "true");
  else li.removeAttribute("aria-busy");
}

/** Draw `message` again as it is now (edited, deleted, done streaming), in the same place. */
export function refreshMessage(message) {
  const li = message.el;
  if (!li) return;
  const focused = li.contains(document.activeElement) && document.activeElement !== li ? document.activeElement.dataset.key : null;
  markState(li, message);
  li.querySelector(".msg-content").replaceChildren(...messageContent(message));
  if (message.deleted) li.querySelector(".msg-attachments")?.remove();
  li.querySelector(".msg-reactions").replaceWith(reactionsRow(message));
  if (message.deleted && pickerOpenOn(message)) closePicker();
  li.querySelector(".msg-actions").replaceChildren(...messageActions(message));
  matchTabStops(li);
  if (focused) {
    const again = [...li.querySelectorAll("button")].find((button) => button.dataset.key === focused);
    if (again) again.focus();
    else if (!li.contains(document.activeElement)) li.focus();
  }
  refreshQuotesOf(message);
}

// ----------------------------------------------------------------- parts
function messageHead(message) {
  const mine = isMine(message);
  const via = message.kind === "human" ? transportLabel(message.transport) : null;
  const distinct = message.displayName !== message.sender;
  return el(
    "div",
    { className: "msg-head" },
    el("span", { className: "msg-sender", title: whoIs(message.sender, message.displayName, message.transport), text: message.displayName }),
    distinct ? senderId(message) : null,
    message.role && message.role !== "user" && message.kind !== "system" ? el("span", { className: "msg-role", text: message.role }) : null,
    message.kind !== "human" ? el("span", { className: `badge badge-${message.kind}`, text: message.kind === "agent" ? "agent" : "system" }) : null,
    mine ? el("span", { className: "badge badge-you", text: "you" }) : null,
    via ? el("span", { className: "badge badge-transport", title: `Wrote from ${via}`, text: via }) : null,
    message.date
      ? el("time", { className: "msg-time", datetime: message.timestamp, title: message.date.toLocaleString(), text: shortTime(message.date) })
      : null,
  );
}

/** The sender's id beside their name: read out always, shown while someone else goes by the same name. */
function senderId(message) {
  const node = el("span", { className: "msg-sender-id", dataset: { name: message.displayName }, text: ` (${message.sender})` });
  node.classList.toggle("visually-hidden", !nameIsShared(message.displayName));
  return node;
}

/** Someone new was seen: show the ids of people who now share a name with someone. */
export function revealNamesakes() {
  for (const node of document.querySelectorAll("#messages .msg-sender-id")) node.classList.toggle("visually-hidden", !nameIsShared(node.dataset.name));
}

/** Who changed the message and when: " by Meg at 10:15" to read out, " by Meg on 2/12/2026, 10:15:03" to hover. */
function changeWords(by, date) {
  const who = by ? ` by ${displayNameOf(by)}` : "";
  return { short: `${who} at ${shortTime(date)}`, long: `${who} on ${date.toLocaleString()}` };
}

function messageContent(message) {
  if (message.deleted) {
    const words = message.deletedAt ? changeWords(message.deletedBy, message.deletedAt) : { short: "", long: "" };
    return [
      el("p", { className: "msg-text msg-tombstone", title: `Deleted${words.long}` }, "message deleted"),
      words.short ? el("span", { className: "visually-hidden", text: ` (deleted${words.short})` }) : null,
    ].filter(Boolean);
  }
  const parts = [el("p", { className: "msg-text" }, markedText(message.kind, message.text))];
  if (message.streaming) {
    parts.push(el("span", { className: "msg-cursor", "aria-hidden": "true" }), el("span", { className: "visually-hidden", text: " (still being written)" }));
  }
  if (showsEdited(message)) {
    const words = changeWords(message.editedBy, message.editedAt);
    parts.push(el("span", { className: "msg-edited", title: `Edited${words.long}` }, "(edited)", el("span", { className: "visually-hidden", text: words.short })));
  }
  return parts;
}

function actionButton(key, text, label, handler) {
  const button = el("button", { type: "button", className: "msg-action", tabindex: "-1", "aria-label": label, text, dataset: { key } });
  button.addEventListener("click", handler);
  return button;
}

function messageActions(message) {
  if (message.deleted) return [];
  const whose = isMine(message) ? "your" : `${message.displayName}'s`;
  const buttons = [
    actionButton("reply", "Reply", `Reply to ${message.displayName}`, () => actions.reply(message)),
    actionButton("react", "React", `React to ${whose} message`, (event) => actions.react(message, event.currentTarget)),
  ];
  buttons[1].setAttribute("aria-expanded", "false");
  if (canEdit(message)) buttons.push(actionButton("edit", "Edit", "Edit your message", () => actions.edit(message)));
  if (canDelete(message)) buttons.push(actionButton("delete", "Delete", `Delete ${whose} message`, () => actions.remove(message)));
  return buttons;
}

// ----------------------------------------------------------------- quotes
/** The quoted message a reply answers (`quoted` when it is shown); filled in once that message is shown. */
function renderQuote(targetId, quoted) {
  const quote = el("button", { type: "button", className: "quote", tabindex: "-1" });
  quote.dataset.target = String(targetId);
  quote.addEventListener("click", () => actions.jump(targetId));
  if (quoted) {
    fillQuote(quote, quoted);
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
  const snippet = target.deleted ? "message deleted" : clip(target.text || attachmentsSummary(target.attachments), 140);
  const text = el("span", { className: "quote-text" }, target.deleted ? snippet : markedText(target.kind, snippet, (rest) => rest));
  quote.replaceChildren(el("span", { className: "quote-sender", text: target.displayName }), text);
  quote.setAttribute("aria-label", `In reply to ${target.displayName}: ${snippet}. Select to go to that message.`);
}

/** `message` is shown now: fill in the quotes that were waiting for it. */
export function quotesFound(message) {
  const waiting = pendingQuotes.get(message.id);
  if (!waiting) return;
  pendingQuotes.delete(message.id);
  for (const quote of waiting) fillQuote(quote, message);
}

/** `message` changed: the replies quoting it show it as it is now. */
function refreshQuotesOf(message) {
  for (const quote of document.querySelectorAll("#messages .quote")) {
    if (quote.dataset.target === String(message.id)) fillQuote(quote, message);
  }
}

/** Forget the quotes waiting for messages (the list was emptied). */
export function forgetQuotes() {
  pendingQuotes.clear();
}
