/*
 * The chat session from start to end: joining, handing each frame from the
 * server to the part of the page it concerns, catching up after a reconnect
 * (also on what changed in the latest messages meanwhile), switching rooms in
 * place, explaining the server's errors, and leaving.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { dropChanges, refuseChange, refusesChange } from "./changes.js";
import {
  cancelReply,
  disableTypingNotices,
  focusComposer,
  oldestOutstandingAt,
  prepareComposer,
  resetComposer,
  restoreOutstanding,
  settleOutstanding,
} from "./composer.js";
import { $ } from "./dom.js";
import { stopChanging } from "./editing.js";
import { failHistory, forgetHistory, historyLoaded, historyPending, onHistory, renderLogTop, requestHistory, resetHistory } from "./history.js";
import { rememberJoin, showChat, showJoin, showRefusal, showRetrying, stopAutoJoin } from "./join.js";
import { addMessage, clearMessages } from "./messages.js";
import { showNotice } from "./notices.js";
import { clearPeople } from "./people.js";
import { isChatFrame } from "./protocol.js";
import { closePicker } from "./reactions.js";
import { resetRooms, roomMessage, roomShown, showRooms, wireRooms } from "./rooms.js";
import { renderNewBelow, resetScroll } from "./scroll.js";
import { ROOM, connection, session, setRoom } from "./session.js";
import { clearTyping, closeSidebar, onAgentStatus, onPresence, onTyping, renderMembers, renderTyping, showMembers } from "./sidebar.js";
import { announce, limitRate, resetStatus, showError, showRateLimit, updateTitle } from "./status.js";
import { onDeleted, onEdited, onReaction } from "./updates.js";
import { useFileLimits } from "./uploads.js";

// ------------------------------------------------------------------ session
/** Forget everything shown: messages, people, the box, notices. */
function resetChat() {
  session.me = null;
  stopChanging();
  closePicker();
  clearMessages();
  resetHistory();
  clearPeople();
  clearTyping();
  resetScroll();
  resetComposer();
  resetStatus();
  renderMembers();
  renderTyping();
  renderNewBelow();
  renderLogTop();
  resetRooms();
}

/** Join as `session.join` (from the form or remembered). */
export function startSession() {
  resetChat();
  connection.start(session.join);
}

function leave() {
  connection.stop(1000, "left the chat");
  stopAutoJoin();
  resetChat();
  showJoin("You left the chat. Join again whenever you like.");
}

function authFailed(code, text) {
  connection.stop(1000, "could not join");
  stopAutoJoin();
  resetChat();
  showRefusal(code, text);
}

// ------------------------------------------------------------------ connection events
/**
 * The server's log is not the one the messages shown came from (its database was
 * reset or replaced): their ids mean nothing there, so forget them and show the
 * room's history as this server has it.
 */
function reloadAfterReset() {
  clearMessages();
  resetHistory();
  resetScroll();
  renderNewBelow();
  announce("The chat's message history was replaced on the server; showing it as it is now.");
  requestHistory(null, "initial");
}

/** The server let us in (first time or after a drop): show the chat and catch up. */
function onJoined(data, { resumed, resumedFrom, missed, reset }) {
  session.me = {
    userId: typeof data.userId === "string" && data.userId ? data.userId : session.join.userId,
    role: typeof data.role === "string" ? data.role : session.join.role,
    displayName: typeof data.displayName === "string" && data.displayName ? data.displayName : null,
  };
  rememberJoin();
  useFileLimits(data);
  if (!resumed) {
    showChat();
    focusComposer();
  }
  showMembers(data);
  showRooms(data.rooms);
  if (reset) {
    reloadAfterReset();
    settleOutstanding();
    renderLogTop();
    return;
  }
  if (missed) {
    for (const frame of missed) if (isChatFrame(frame)) addMessage(frame.type, frame.data, "missed");
    if (missed.length) announce(`${missed.length} message${missed.length === 1 ? "" : "s"} arrived while you were disconnected.`);
  }
  if (!resumed || resumedFrom === 0 || !historyLoaded()) {
    requestHistory(null, "initial");
  } else {
    // The latest page fills in what a replay leaves out: more than it replays (or a server that
    // does not replay), and what changed meanwhile in messages older than the last id seen
    // (edits, deletions, reactions): the replay brings only messages newer than that id.
    requestHistory(null, "latest");
  }
  settleOutstanding();
  renderLogTop();
}

/** The socket closed: nobody is typing any more, and open requests will not be answered. */
function onClosed() {
  dropChanges();
  clearTyping();
  renderTyping();
  failHistory();
  renderLogTop();
}

function onRetry(delay) {
  if (!connection.everConnected) showRetrying(delay);
}

function onRefused(reason) {
  showJoin(reason || "The server refused to let you in. Check your details and try again.");
}

function onFrame(type, data) {
  switch (type) {
    case "message":
    case "agent_response":
      roomMessage(type, data);
      addMessage(type, data, "live");
      break;
    case "message_edited":
      onEdited(data);
      break;
    case "message_deleted":
      onDeleted(data);
      break;
    case "reaction":
      onReaction(data);
      break;
    case "notice":
      showNotice(data);
      break;
    case "history":
      onHistory(data);
      break;
    case "presence":
      onPresence(data);
      break;
    case "agent_status":
      onAgentStatus(data);
      break;
    case "typing":
      onTyping(data);
      break;
    case "error":
      onError(data);
      break;
    default:
      break; // pong, or newer frames this page does not know yet
  }
}

// ------------------------------------------------------------------ errors
function onError(data) {
  const code = typeof data.code === "string" ? data.code : "ERROR";
  const text = typeof data.message === "string" && data.message.trim() ? data.message.trim() : "";
  if (connection.phase === "authenticating" || connection.phase === "connecting") {
    authFailed(code, text);
    return;
  }
  if (refusesChange(code, oldestOutstandingAt())) {
    refuseChange(code, text);
    return;
  }
  switch (code) {
    case "RATE_LIMITED":
      limitRate(typeof data.retryAfter === "number" && data.retryAfter > 0 ? data.retryAfter : 1);
      restoreOutstanding(data);
      showRateLimit();
      break;
    case "MESSAGE_TOO_LARGE":
      restoreOutstanding(data);
      showError(`Your message was not sent: ${text || "it is too long."} It is back in the box so you can shorten it.`);
      break;
    case "INVALID_MESSAGE":
      restoreOutstanding(data);
      showError(`The server did not accept that: ${text || "the message was not valid."}`);
      break;
    case "NOT_AUTHENTICATED":
      showError("The server forgot who you are; joining again…");
      connection.drop(1000, "joining again");
      break;
    case "UNKNOWN_TYPE":
      onUnknownType();
      break;
    case "INTERNAL_ERROR":
      // Not the sender's fault, and the server's text says what happened (a restart, say).
      restoreOutstanding(data);
      showError(
        text
          ? `${text} Your message is back in the box.`
          : "Something went wrong on the server. Your message is back in the box; try again in a moment.",
      );
      break;
    default:
      showError(text ? `${text}` : `The server reported a problem (${code}).`);
      break;
  }
}

/** A server that predates the history and typing extensions: do without them. */
function onUnknownType() {
  if (historyPending()) onHistory({ messages: [], hasMore: false });
  else disableTypingNotices();
}

// ------------------------------------------------------------------ rooms
/**
 * Show `room` instead of the room shown, on the same connection: its history
 * is loaded afresh, and a reconnect asks for what was missed there. False when
 * it is the room shown already.
 */
function switchRoom(room) {
  if (room === ROOM) return false;
  stopChanging();
  closePicker();
  cancelReply();
  setRoom(room);
  clearMessages();
  forgetHistory();
  resetScroll();
  renderNewBelow();
  clearTyping();
  renderTyping();
  prepareComposer();
  updateTitle();
  roomShown(room);
  renderLogTop();
  if (connection.phase === "ready") requestHistory(null, "initial");
  if (closeSidebar()) focusComposer();
  announce(`Showing #${room}.`);
  return true;
}

export function wireChat() {
  wireRooms(switchRoom);
  connection.on("frame", onFrame);
  connection.on("joined", onJoined);
  connection.on("closed", onClosed);
  connection.on("retry", onRetry);
  connection.on("refused", onRefused);
  $("leave").addEventListener("click", leave);
}
