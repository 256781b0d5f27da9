/*
 * Asking the server to change a message (`edit`, `delete`, `react`), and
 * keeping each request until the frame every client gets (`message_edited`,
 * `message_deleted`, `reaction`) shows it done. The server answers a refusal
 * (FORBIDDEN, NOT_FOUND, a text too long) with an `error` frame that names no
 * request; it answers requests in order, so the refusal belongs to the oldest
 * one still waiting, and whoever asked is told about the message they asked
 * about. Nothing here touches the page.
 */
import { messageId } from "./protocol.js";
import { connection, isMe } from "./session.js";

/** A request with no answer after this long is given up (its asker is told so). */
const ANSWER_WITHIN_MS = 30000;

/** The refusals only a change is answered with. */
const CHANGE_ONLY_CODES = new Set(["FORBIDDEN", "NOT_FOUND"]);
/** The refusals a change or a message may be answered with. */
const SHARED_CODES = new Set(["INVALID_MESSAGE", "MESSAGE_TOO_LARGE", "INTERNAL_ERROR", "UNKNOWN_TYPE"]);

const pending = []; // {kind, id, emoji, at, refused(code, text)}, oldest first

/** Who made a change, as each change frame names them. */
const BY = { edit: "editedBy", delete: "deletedBy", react: "userId" };

/**
 * Send `kind` ("edit", "delete" or "react") with `data`; `refused(code, text)`
 * is called if the server refuses it, the connection drops first, or no answer
 * comes. False when there is no connection to send it on.
 */
export function requestChange(kind, data, refused) {
  if (connection.phase !== "ready" || !connection.send(kind, data)) return false;
  pending.push({ kind, id: data.id, emoji: data.emoji, at: Date.now(), refused });
  return true;
}

/** A change frame arrived: if it is one this page asked for, that request is done. */
export function changeDone(kind, data) {
  if (!isMe(data[BY[kind]])) return;
  const id = messageId(data.id);
  const index = pending.findIndex((request) => request.kind === kind && request.id === id && (kind !== "react" || request.emoji === data.emoji));
  if (index >= 0) pending.splice(index, 1);
}

function giveUpOld() {
  const now = Date.now();
  while (pending.length && now - pending[0].at > ANSWER_WITHIN_MS) {
    pending.shift().refused("NO_ANSWER", "The server did not answer.");
  }
}

/**
 * Whether an `error` with `code` answers a change rather than a message sent at
 * `messageSentAt` (the oldest message still unconfirmed, or null): the server
 * answers in order, so the older request gets it.
 */
export function refusesChange(code, messageSentAt) {
  giveUpOld();
  if (!pending.length) return false;
  if (CHANGE_ONLY_CODES.has(code)) return true;
  if (!SHARED_CODES.has(code)) return false;
  return messageSentAt === null || pending[0].at <= messageSentAt;
}

/** Tell the asker of the oldest waiting change that the server refused it. */
export function refuseChange(code, text) {
  const request = pending.shift();
  if (request) request.refused(code, text);
}

/** The connection dropped: no answer will come to what is waiting; tell each asker. */
export function dropChanges() {
  for (const request of pending.splice(0)) request.refused("DROPPED", "The connection dropped before the server answered.");
}
