/*
 * This tab's chat session, shared by the parts of the page: the room shown,
 * who we asked to join as and who the server confirmed, and the one connection
 * to the server that served this page.
 *
 * `ROOM` is a live binding: every module that imports it reads the room shown
 * now, also after `setRoom` switched it.
 */
import { Connection, DEFAULT_ROOM } from "./protocol.js";
import { validName } from "./text.js";

/** The room `search` (an address's `?room=NAME`) names when that is a valid name, else the default. */
export function roomOf(search) {
  const asked = new URLSearchParams(search).get("room");
  return validName(asked) ? asked : DEFAULT_ROOM;
}

/** The room this page shows: first the one in the address. */
export let ROOM = roomOf(location.search);

export const session = {
  join: null, // {userId, role, token, remember} as typed in the form
  me: null, // {userId, role, displayName} as the server confirmed it
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

/** Show `room` from now on; a reconnect then asks for what was missed there. */
export function setRoom(room) {
  ROOM = room;
  connection.rooms = [room];
}

/** Whether the person using this page may change (edit or delete) others' messages too. */
export function isManager() {
  return Boolean(session.me) && session.me.role === "manager";
}
