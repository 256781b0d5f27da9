/*
 * The chat session from start to end: joining, handing each frame from the
 * server to the part of the page it concerns, catching up after a reconnect,
 * explaining the server's errors, and leaving.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { disableTypingNotices, focusComposer, resetComposer, restoreOutstanding, settleOutstanding } from "./composer.js";
import { $ } from "./dom.js";
import { failHistory, historyPending, onHistory, renderLogTop, requestHistory, resetHistory } from "./history.js";
import { rememberJoin, showChat, showJoin, showRefusal, showRetrying, stopAutoJoin } from "./join.js";
import { addMessage, clearMessages } from "./messages.js";
import { clearPeople } from "./people.js";
import { REPLAY_LIMIT, isChatFrame } from "./protocol.js";
import { renderNewBelow, resetScroll } from "./scroll.js";
import { connection, session } from "./session.js";
import { clearTyping, onAgentStatus, onPresence, onTyping, renderMembers, renderTyping, showMembers } from "./sidebar.js";
import { announce, limitRate, resetStatus, showError, showRateLimit } from "./status.js";

// ------------------------------------------------------------------ session
/** Forget everything shown: messages, people, the box, notices. */
function resetChat() {
  session.me = null;
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
  };
  rememberJoin();
  if (!resumed) {
    showChat();
    focusComposer();
  }
  showMembers(data);
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
  if (!resumed || resumedFrom === 0) {
    requestHistory(null, "initial");
  } else if (!missed || missed.length >= REPLAY_LIMIT || data.missedHasMore === true) {
    // A server that does not replay, or more was missed than it replays: fetch the latest page.
    requestHistory(null, "latest");
  }
  settleOutstanding();
  renderLogTop();
}

/** The socket closed: nobody is typing any more, and open history requests will not be answered. */
function onClosed() {
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
      addMessage(type, data, "live");
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

export function wireChat() {
  connection.on("frame", onFrame);
  connection.on("joined", onJoined);
  connection.on("closed", onClosed);
  connection.on("retry", onRetry);
  connection.on("refused", onRefused);
  $("leave").addEventListener("click", leave);
}
