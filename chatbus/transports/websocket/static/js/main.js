/*
 * The chatbus web chat page: wiring and start.
 *
 * Speaks the chatbus WebSocket protocol (version 1) to the server that served
 * this page: join with `auth`, read `message` / `agent_response` frames, page
 * back through `history`, show `presence`, `agent_status` and `typing`,
 * follow messages that change (`message_edited`, `message_deleted`,
 * `reaction`), send and show files (`POST /files`, `attachments`), show `notice`s, switch rooms, and resume after a dropped
 * connection with `lastSeenId` so nothing is missed or shown twice. Native ES
 * modules, no build step; where things live:
 *
 *   protocol.js      frames and the connection (no page access; tested in a Worker)
 *   session.js       the room, who we are, the one connection
 *   chat.js          the session from join to leave; routes each server frame; switches rooms
 *   join.js          the join form, remembering it, switching to the chat
 *   messages.js      the message list: arrivals, order, grouping, keyboard
 *   message-model.js a message as data: its state, what changes it, may I change it
 *   message-view.js  one message on the page: sender, text, (edited), deleted, buttons
 *   message-text.js  a message's text as nodes: links and @mentions
 *   updates.js       edits, deletions and reactions as the server reports them
 *   changes.js       asking for an edit, deletion or reaction; matching refusals
 *   editing.js       editing your messages in place; deleting, after asking
 *   reactions.js     reaction chips and the picker
 *   notices.js       notes from the system for this person only
 *   rooms.js         the list of rooms, switching, the address
 *   history.js       paging back, the top of the log, jumping to a quote
 *   scroll.js        near-bottom, "N new messages", the divider
 *   composer.js      the message box: send, reply, typing, unconfirmed messages
 *   attach.js        choosing files: the attach button, dropping, pasting
 *   uploads.js       files for the next message: uploading, progress, cancel
 *   attachments.js   files and pictures in messages: thumbnails, cards, full size
 *   completion.js    @ completion in the message box
 *   sidebar.js       people and agents online, presence, agent status, typing
 *   people.js        who is here and what they are called, as data
 *   status.js        connection indicator, error line, announcements, title
 *   dom.js, text.js  small helpers
 *
 * Safety rule for every module that renders: text that came from the network
 * is only ever put on the page with textContent, text nodes or attribute
 * properties, never as HTML.
 */
import { wireAttach } from "./attach.js";
import { wireAttachments } from "./attachments.js";
import { startSession, wireChat } from "./chat.js";
import { focusComposer, wireComposer } from "./composer.js";
import { $ } from "./dom.js";
import { confirmDelete, startEdit, wireEditing } from "./editing.js";
import { historyHasMore, jumpTo, loadOlder, renderLogTop, wireHistory } from "./history.js";
import { openJoin, wireJoin } from "./join.js";
import { shown, useMessageHandlers, wireMessages } from "./messages.js";
import { openPicker, wireReactions } from "./reactions.js";
import { scrollToBottom } from "./scroll.js";
import { ROOM, connection, session } from "./session.js";
import { wireSidebar } from "./sidebar.js";
import { wireStatus } from "./status.js";
import { wireUploads } from "./uploads.js";

function wire() {
  wireStatus();
  wireJoin(startSession);
  wireChat();
  wireComposer();
  wireUploads();
  wireAttach();
  wireAttachments();
  wireMessages();
  useMessageHandlers({
    started: renderLogTop,
    older: () => loadOlder(),
    jump: jumpTo,
    react: openPicker,
    edit: (message) => startEdit(message),
    remove: confirmDelete,
  });
  wireHistory();
  wireSidebar();
  wireEditing();
  wireReactions();
  $("jump-new").addEventListener("click", () => {
    scrollToBottom();
    focusComposer();
  });
}

/** Page-side hooks for the browser tests and for people debugging in the console. */
function exposeState() {
  window.chatbus = Object.freeze({
    state: () => ({
      phase: connection.phase,
      userId: session.me ? session.me.userId : null,
      room: ROOM,
      lastSeenId: connection.lastSeenId,
      attempt: connection.attempt,
      delays: [...connection.delays],
      shown: [...shown.ids],
      hasMore: historyHasMore(),
    }),
  });
}

wire();
exposeState();
openJoin();
