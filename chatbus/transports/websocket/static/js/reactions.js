/*
 * Reactions on a message: the chips under it (each emoji with its count,
 * named with who reacted; selecting one adds yours or takes it back), and the
 * small picker the React button opens (a few common emoji and those already
 * on the message). What is shown follows the server's `reaction` frames;
 * nothing changes before the server says so.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { requestChange } from "./changes.js";
import { el, matchTabStops } from "./dom.js";
import { reactedByMe } from "./message-model.js";
import { displayNameOf } from "./people.js";
import { isMe } from "./session.js";
import { showError } from "./status.js";

/** The emoji the picker always offers, before those already on the message, with their names (for a tooltip when no emoji font draws them). */
const PICKER_NAMES = new Map([
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😄", "smile"],
  ["🎉", "party"],
  ["👀", "eyes"],
  ["🙏", "thanks"],
]);
export const PICKER_EMOJI = [...PICKER_NAMES.keys()];

let picker = null; // {message, node, opener} while a picker is open

/** "You", "You and bob", "ann, bob and carol": names as a sentence says them. */
function sentence(names) {
  if (names.length < 2) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** Who reacted to `message` with `emoji`, as words ("You and bob", "ann and 2 others"). */
export function whoReacted(message, emoji) {
  const ids = message.reactions.get(emoji) || [];
  const names = ids.filter((id) => !isMe(id)).map(displayNameOf);
  if (ids.some(isMe)) names.unshift("You");
  const others = (message.counts.get(emoji) || 0) - ids.length;
  if (others > 0) names.push(`${others} other${others === 1 ? "" : "s"}`);
  return sentence(names);
}

function chip(message, emoji) {
  const count = message.counts.get(emoji) || 0;
  const mine = reactedByMe(message, emoji);
  const who = whoReacted(message, emoji);
  const button = el(
    "button",
    {
      type: "button",
      className: "reaction",
      "aria-pressed": mine ? "true" : "false",
      "aria-label": `${emoji} ${count}: ${who}`,
      title: `${who} reacted with ${emoji}. ${mine ? "Select to take yours back." : "Select to react too."}`,
      dataset: { key: `reaction:${emoji}` },
    },
    el("span", { className: "reaction-emoji", text: emoji }),
    el("span", { className: "reaction-count", text: String(count) }),
  );
  button.addEventListener("click", () => toggleReaction(message, emoji));
  return button;
}

/** The row of chips under `message` (hidden when it has no reactions). */
export function reactionsRow(message) {
  const row = el("div", { className: "msg-reactions", role: "toolbar", "aria-label": "Reactions" });
  fillRow(row, message);
  return row;
}

function fillRow(row, message) {
  row.replaceChildren(...[...message.counts.keys()].map((emoji) => chip(message, emoji)));
  row.hidden = message.counts.size === 0;
}

/** Show `message`'s reactions as they are now, keeping the focus on the chip that had it. */
export function refreshReactions(message) {
  const row = message.el && message.el.querySelector(".msg-reactions");
  if (!row) return;
  const focused = row.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  fillRow(row, message);
  matchTabStops(message.el);
  const again = focused ? [...row.querySelectorAll("button")].find((button) => button.dataset.key === focused) : null;
  if (again) again.focus();
  else if (focused) message.el.focus();
  if (picker && picker.message === message) markPicked();
}

function refusal(code, text) {
  if (code === "NOT_FOUND") return "That message was deleted, so your reaction was not saved.";
  if (code === "DROPPED") return "The connection dropped before your reaction was saved. React again once the chat is connected.";
  return `Your reaction was not saved: ${text || "the server refused it."}`;
}

/** Add your `emoji` to `message`, or take it back when you had reacted with it. */
export function toggleReaction(message, emoji) {
  const on = !reactedByMe(message, emoji);
  const sent = requestChange("react", { id: message.id, emoji, on }, (code, text) => showError(refusal(code, text)));
  if (!sent) showError("You are not connected right now. React again once the chat is connected.");
}

// ------------------------------------------------------------ the picker
function pickButton(message, emoji) {
  const named = PICKER_NAMES.has(emoji) ? ` (${PICKER_NAMES.get(emoji)})` : "";
  const button = el("button", { type: "button", className: "pick", title: `React with ${emoji}${named}`, "aria-label": `React with ${emoji}`, text: emoji });
  button.dataset.emoji = emoji;
  button.addEventListener("click", () => {
    closePicker({ focusOpener: true });
    toggleReaction(message, emoji);
  });
  return button;
}

/** Mark the emoji you reacted with as pressed. */
function markPicked() {
  for (const button of picker.node.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", reactedByMe(picker.message, button.dataset.emoji) ? "true" : "false");
  }
}

/** Open the picker under `message` (or close it when it is open there); `opener` is the React button. */
export function openPicker(message, opener) {
  if (picker && picker.message === message) {
    closePicker({ focusOpener: true });
    return;
  }
  closePicker();
  const emoji = [...new Set([...PICKER_EMOJI, ...message.counts.keys()])];
  const node = el("div", { className: "reaction-picker", role: "group", id: `picker-${message.id}`, "aria-label": "Pick a reaction" }, ...emoji.map((e) => pickButton(message, e)));
  node.addEventListener("keydown", onPickerKey);
  message.el.querySelector(".msg-body").append(node);
  opener.setAttribute("aria-expanded", "true");
  opener.setAttribute("aria-controls", node.id);
  picker = { message, node, opener };
  markPicked();
  node.querySelector("button").focus();
  node.scrollIntoView({ block: "nearest" });
}

/** Close the picker, if one is open; `focusOpener` puts the focus back on its React button. */
export function closePicker({ focusOpener = false } = {}) {
  if (!picker) return;
  const { node, opener } = picker;
  picker = null;
  node.remove();
  opener.setAttribute("aria-expanded", "false");
  opener.removeAttribute("aria-controls");
  if (focusOpener && opener.isConnected) opener.focus();
}

/** Whether the picker is open on `message`. */
export function pickerOpenOn(message) {
  return Boolean(picker) && picker.message === message;
}

function onPickerKey(event) {
  const buttons = [...picker.node.querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  const moves = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 };
  if (event.key === "Escape") {
    closePicker({ focusOpener: true });
  } else if (Object.hasOwn(moves, event.key)) {
    buttons[(moves[event.key] + buttons.length) % buttons.length].focus();
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
}

export function wireReactions() {
  document.addEventListener("click", (event) => {
    if (!picker || picker.node.contains(event.target) || picker.opener.contains(event.target)) return;
    closePicker();
  });
}
