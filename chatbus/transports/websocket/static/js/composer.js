/*
 * The message box: typing (and telling others so), replying to a message,
 * sending with Enter (with the files uploaded for it, see uploads.js), and
 * keeping every sent text until the server confirms it, so a message refused
 * or lost in a drop goes back into the box, its files back above it.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { closeCompletion, handleCompletionKey, updateCompletion } from "./completion.js";
import { attachmentsSummary } from "./attachments.js";
import { $, fitHeight } from "./dom.js";
import { markedText } from "./message-text.js";
import { inRoom } from "./protocol.js";
import { clearDivider, scrollToBottom } from "./scroll.js";
import { ROOM, connection } from "./session.js";
import { errorKind, errorShown, hideError, rateLimited, showError, showRateLimit } from "./status.js";
import { clip } from "./text.js";
import { clearFiles, hasFiles, restoreFiles, sendAfterUploads, sentFiles, uploadFailed, uploadedFiles, uploading } from "./uploads.js";

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_AFTER_SEND_MS = 1200;

const ui = {
  composer: $("composer"),
  input: $("composer-input"),
  replyPreview: $("reply-preview"),
  replySender: $("reply-preview-sender"),
  replyText: $("reply-preview-text"),
  replyCancel: $("reply-cancel"),
  errorDismiss: $("error-dismiss"),
};

let replyTo = null; // {id, sender, text}
const outstanding = new Map(); // clientId -> {text, replyTo, files, at}: sent, not confirmed yet
let lastTypingSent = 0;
let typingUnsupported = false;

function autosize() {
  fitHeight(ui.input);
}

export function focusComposer() {
  ui.input.focus();
}

/** Ready the box for the chat of this room. */
export function prepareComposer() {
  ui.input.placeholder = `Message #${ROOM}`;
  autosize();
}

function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
    return window.crypto.randomUUID();
  }
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

// ----------------------------------------------------------------- replies
export function startReply(message, { focus = true } = {}) {
  const displayName = message.displayName || message.sender;
  replyTo = { id: message.id, sender: message.sender, displayName, text: message.text, kind: message.kind };
  ui.replySender.textContent = displayName;
  const text = message.text || attachmentsSummary(message.attachments);
  ui.replyText.replaceChildren(...markedText(message.kind || "human", clip(text, 120), (rest) => rest));
  ui.replyPreview.hidden = false;
  if (focus) ui.input.focus();
}

/** Forget the message being replied to (Escape, or it is no longer shown). */
export function cancelReply() {
  replyTo = null;
  ui.replyPreview.hidden = true;
  ui.replySender.textContent = "";
  ui.replyText.textContent = "";
}

// ----------------------------------------------------------------- sending
function sendMessage() {
  const text = ui.input.value;
  if (!text.trim() && !hasFiles()) {
    ui.input.focus();
    return;
  }
  if (connection.phase !== "ready") {
    showError("You are not connected right now. Your message stays in the box; send it once the chat is connected again.");
    return;
  }
  if (rateLimited()) {
    showRateLimit();
    return;
  }
  if (uploadFailed()) {
    showError("A file could not be uploaded: try it again or remove it, then send.");
    return;
  }
  if (uploading()) {
    sendAfterUploads(sendMessage);
    return;
  }
  const files = uploadedFiles();
  const clientId = newClientId();
  const data = { text, id: clientId };
  if (replyTo) data.replyTo = replyTo.id;
  if (files.length) data.attachments = files.map((file) => file.id);
  if (!connection.send("message", inRoom(ROOM, data))) {
    showError("The message could not be sent because the connection just dropped. It stays in the box.");
    return;
  }
  outstanding.set(clientId, { text, replyTo, files, at: Date.now() });
  sentFiles();
  afterSend();
}

function afterSend() {
  ui.input.value = "";
  autosize();
  cancelReply();
  closeCompletion();
  clearDivider();
  if (errorKind() !== "rate") hideError();
  // Typing again right after sending shows again soon, but no sooner than
  // servers relay typing (about once a second per connection).
  lastTypingSent = Math.min(lastTypingSent, Date.now() - TYPING_SEND_EVERY_MS + TYPING_AFTER_SEND_MS);
  scrollToBottom();
}

function onComposerKeydown(event) {
  if (handleCompletionKey(event)) return;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    sendMessage();
  } else if (event.key === "Escape") {
    if (replyTo) {
      cancelReply();
      event.preventDefault();
    } else if (errorShown()) {
      hideError();
      event.preventDefault();
    }
  }
}

function onComposerInput() {
  autosize();
  updateCompletion();
  if (connection.phase === "ready" && !typingUnsupported && ui.input.value.trim() && Date.now() - lastTypingSent > TYPING_SEND_EVERY_MS) {
    lastTypingSent = Date.now();
    connection.send("typing", inRoom(ROOM));
  }
}

/** A server that predates typing notices: stop sending them. */
export function disableTypingNotices() {
  typingUnsupported = true;
}

/** Add "@name " at the end of the box (from the list of people). */
export function appendMention(name) {
  const value = ui.input.value;
  const spacer = value && !/\s$/.test(value) ? " " : "";
  ui.input.value = `${value}${spacer}@${name} `;
  autosize();
}

/** Focus the box with the caret after the text. */
export function focusComposerEnd() {
  ui.input.focus();
  ui.input.setSelectionRange(ui.input.value.length, ui.input.value.length);
}

// ------------------------------------------------- unconfirmed messages
/** Our own message came back from the server: it is confirmed. */
export function confirmSent(message) {
  if (!outstanding.size) return;
  if (message.clientId && outstanding.delete(message.clientId)) return;
  for (const [key, entry] of outstanding) {
    if (entry.text === message.text) {
      outstanding.delete(key);
      return;
    }
  }
}

/** When the oldest message still waiting for the server's echo was sent (Date.now()), or null. */
export function oldestOutstandingAt() {
  let oldest = null;
  for (const entry of outstanding.values()) if (oldest === null || entry.at < oldest) oldest = entry.at;
  return oldest;
}

/** The server refused a message (an error frame): put its text, and its reply, back in the box. */
export function restoreOutstanding(data) {
  if (!outstanding.size) return;
  let key = typeof data.clientId === "string" && outstanding.has(data.clientId) ? data.clientId : null;
  if (!key) key = [...outstanding.keys()].pop();
  const entry = outstanding.get(key);
  outstanding.delete(key);
  ui.input.value = ui.input.value ? `${entry.text}\n${ui.input.value}` : entry.text;
  restoreFiles(entry.files);
  if (entry.replyTo && !replyTo) startReply(entry.replyTo, { focus: false });
  autosize();
}

/** After a resume, a sent message that never came back is put back in the box. */
export function settleOutstanding() {
  if (!outstanding.size) return;
  const lost = [...outstanding.values()];
  outstanding.clear();
  const texts = lost.map((entry) => entry.text).filter(Boolean).join("\n");
  ui.input.value = ui.input.value && texts ? `${texts}\n${ui.input.value}` : texts || ui.input.value;
  for (const entry of lost) restoreFiles(entry.files);
  autosize();
  showError("The connection dropped before your last message was confirmed. It is back in the box: send it again if it is not in the chat.");
}

/** Empty the box and forget replies and unconfirmed messages (a new session). */
export function resetComposer() {
  outstanding.clear();
  ui.input.value = "";
  clearFiles();
  cancelReply();
  closeCompletion();
}

export function wireComposer() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  ui.input.addEventListener("keydown", onComposerKeydown);
  ui.input.addEventListener("input", onComposerInput);
  ui.input.addEventListener("click", updateCompletion);
  ui.input.addEventListener("blur", () => setTimeout(closeCompletion, 150));
  ui.replyCancel.addEventListener("click", () => {
    cancelReply();
    ui.input.focus();
  });
  ui.errorDismiss.addEventListener("click", () => {
    hideError();
    ui.input.focus();
  });
  window.addEventListener("resize", autosize);
}
