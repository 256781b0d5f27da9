/*
 * Messages that change after they were shown, as the server tells every
 * client: `message_edited` (the new text in place, mentions found again; an
 * agent's answer growing while it is written, until one with `streaming`
 * false ends it), `message_deleted` ("message deleted" in its place) and
 * `reaction` (the chips and their counts). A reader at the bottom of the log
 * stays there while an answer grows.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { changeDone } from "./changes.js";
import { editArrived, messageGone } from "./editing.js";
import { applyDeleted, applyEdited, applyReaction } from "./message-model.js";
import { refreshMessage } from "./message-view.js";
import { shown } from "./messages.js";
import { messageId } from "./protocol.js";
import { refreshReactions } from "./reactions.js";
import { isNearBottom, scrollToBottom } from "./scroll.js";
import { announce } from "./status.js";
import { clip } from "./text.js";

function shownMessage(data) {
  const id = messageId(data.id);
  return id === null ? null : shown.byId.get(id) || null;
}

/** `message_edited`: new text for a message (or more of an answer being written). */
export function onEdited(data) {
  changeDone("edit", data);
  const message = shownMessage(data);
  if (!message) return;
  const atBottom = isNearBottom();
  const wasStreaming = message.streaming;
  if (!applyEdited(message, data)) return;
  refreshMessage(message);
  editArrived(message, data);
  if (atBottom) scrollToBottom();
  if (wasStreaming && !message.streaming) announce(`${message.displayName} finished writing: ${clip(message.text, 200)}`);
}

/** `message_deleted`: the message is gone; its place stays, saying so. */
export function onDeleted(data) {
  changeDone("delete", data);
  const message = shownMessage(data);
  if (!message || !applyDeleted(message, data)) return;
  refreshMessage(message);
  messageGone(message);
}

/** `reaction`: someone added or took back a reaction; `counts` are the numbers now. */
export function onReaction(data) {
  changeDone("react", data);
  const message = shownMessage(data);
  if (!message) return;
  const atBottom = isNearBottom();
  if (!applyReaction(message, data)) return;
  refreshReactions(message);
  if (atBottom) scrollToBottom();
}
