/*
 * This tab's chat session, shared by the parts of the page: the room shown,
 * who we asked to join as and who the server confirmed, and the one connection
 * to the server that served this page.
 */
import { Connection, DEFAULT_ROOM } from "./protocol.js";
import { validName } from "./text.js";

/** The room this page shows: `?room=NAME` when that is a valid name, else the default. */
export const ROOM = (() => {
  const asked = new URLSearchParams(location.search).get("room");
  return validName(asked) ? asked : DEFAULT_ROOM;
})();

export const session = {
  join: null, // {userId, role, token, remember} as typed in the form
  me: null, // {userId, role} as the server confirmed it
};

/** Whether `id` is the person using this page. */
export function isMe(id) {
  return Boolean(session.me) && id === session.me.userId;
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/`;
}

export const connection = new Connection(socketUrl(), { rooms: [ROOM] });
