/*
 * Notes from the system for this person only (`notice` frames, such as the
 * code `/link` gives): shown in the log where they arrive, but set apart from
 * the messages everyone sees ("Only you can see this"), never counted among
 * them (no id, not stored, not in the log's ids), read out to screen readers,
 * and dismissable.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { focusComposer } from "./composer.js";
import { $, el } from "./dom.js";
import { icon } from "./icons.js";
import { renderText } from "./message-text.js";
import { isNearBottom, scrollToBottom } from "./scroll.js";
import { ROOM } from "./session.js";
import { announce } from "./status.js";
import { clip, parseTime, shortTime, validName } from "./text.js";

const ui = { messages: $("messages") };

function noticeHead(room, date) {
  return el(
    "p",
    { className: "notice-head" },
    el("span", { className: "badge badge-system", text: "system" }),
    el("strong", { text: "Only you can see this" }),
    room && room !== ROOM ? el("span", { className: "notice-room", text: ` · about #${room}` }) : null,
    el("time", { className: "msg-time", datetime: date.toISOString(), title: date.toLocaleString(), text: shortTime(date) }),
  );
}

/** A `notice` frame: a note from the system to this person, under the newest message. */
export function showNotice(data) {
  const text = typeof data.text === "string" ? data.text.trim() : "";
  if (!text) return;
  const room = validName(data.room) ? data.room : null;
  const date = parseTime(data.timestamp) || new Date();
  const atBottom = isNearBottom();
  const dismiss = el("button", { type: "button", className: "icon-button notice-dismiss", "aria-label": "Dismiss this note", text: "×" });
  const note = el(
    "li",
    { className: "notice" },
    el("span", { className: "notice-mark" }, icon("note")),
    el("div", { className: "notice-body" }, noticeHead(room, date), el("p", { className: "notice-text" }, renderText(text))),
    dismiss,
  );
  dismiss.addEventListener("click", () => {
    note.remove();
    focusComposer();
  });
  ui.messages.append(note);
  if (atBottom) scrollToBottom();
  announce(`Note for you only: ${clip(text, 200)}`);
}
