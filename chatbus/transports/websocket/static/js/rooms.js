/*
 * The rooms: the list in the side panel (every room the server named when we
 * joined, every room a message arrives in, and the one shown), how many
 * messages arrived in the others meanwhile, and switching. A room is a link
 * to `?room=NAME`, so it opens in a new tab too; a plain click switches in
 * place and the address follows (Back and Reload keep the room), so the
 * connection stays up and resumes from the same place for the new room.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $, el } from "./dom.js";
import { DEFAULT_ROOM } from "./protocol.js";
import { ROOM, isMe, roomOf } from "./session.js";
import { validName } from "./text.js";

const ui = {
  list: $("rooms-list"),
  count: $("rooms-count"),
  roomName: $("room-name"),
};

const known = new Set([DEFAULT_ROOM]);
const unread = new Map(); // room -> messages from others that arrived while another room was shown
let switchTo = () => false; // shows another room; set by wireRooms

/** The address that shows `room`. */
export function addressOf(room) {
  return room === DEFAULT_ROOM ? location.pathname : `${location.pathname}?room=${encodeURIComponent(room)}`;
}

/** The rooms `auth_response` names (every room with messages). */
export function showRooms(rooms) {
  if (Array.isArray(rooms)) for (const room of rooms) if (validName(room)) known.add(room);
  renderRooms();
}

/** A message frame arrived: its room is listed, and counted as new when it is not the room shown. */
export function roomMessage(type, data) {
  const room = validName(data.room) ? data.room : DEFAULT_ROOM;
  const added = !known.has(room);
  known.add(room);
  const fromOthers = !(type === "message" && isMe(data.sender));
  if (room !== ROOM && fromOthers) unread.set(room, (unread.get(room) || 0) + 1);
  if (added || room !== ROOM) renderRooms();
}

/** `room` is the one shown now: nothing in it is new any more, and the top bar names it. */
export function roomShown(room) {
  known.add(room);
  unread.delete(room);
  ui.roomName.textContent = `#${room}`;
  renderRooms();
}

/** Forget the counts of new messages (a new session). */
export function resetRooms() {
  unread.clear();
  renderRooms();
}

function sortedRooms() {
  known.add(ROOM);
  const rest = [...known].filter((room) => room !== DEFAULT_ROOM).sort((a, b) => a.localeCompare(b));
  return [DEFAULT_ROOM, ...rest];
}

function roomLink(room) {
  const count = unread.get(room) || 0;
  const current = room === ROOM;
  const label = `#${room}${count ? `, ${count} new message${count === 1 ? "" : "s"}` : ""}`;
  const link = el(
    "a",
    { className: "room-link", href: addressOf(room), "aria-label": label, "aria-current": current ? "page" : null, dataset: { room } },
    el("span", { className: "room-link-name", text: `#${room}` }),
    count ? el("span", { className: "room-unread", text: String(count) }) : null,
  );
  link.addEventListener("click", (event) => onRoomClick(event, room));
  return el("li", { className: "room-item" }, link);
}

export function renderRooms() {
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".room-link") : null;
  const focusedRoom = focused && ui.list.contains(focused) ? focused.dataset.room : null;
  const rooms = sortedRooms();
  ui.list.replaceChildren(...rooms.map(roomLink));
  ui.count.textContent = String(rooms.length);
  if (focusedRoom) [...ui.list.querySelectorAll(".room-link")].find((link) => link.dataset.room === focusedRoom)?.focus();
}

function onRoomClick(event, room) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // a new tab or window
  event.preventDefault();
  if (switchTo(room)) history.pushState({ room }, "", addressOf(room));
}

/** `onSwitch(room)` shows another room and says whether it did. */
export function wireRooms(onSwitch) {
  switchTo = onSwitch;
  ui.roomName.textContent = `#${ROOM}`;
  renderRooms();
  window.addEventListener("popstate", () => switchTo(roomOf(location.search)));
}
