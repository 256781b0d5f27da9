/*
 * The reader's place in the message log: whether they are at the bottom, the
 * "N new messages" button while they read older ones, and the "New messages"
 * divider above the first message they have not seen.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $, el } from "./dom.js";

const NEAR_BOTTOM_PX = 80;

const ui = {
  log: $("log"),
  messages: $("messages"),
  jumpNew: $("jump-new"),
};

let newBelow = 0;
let divider = null;

export function isNearBottom() {
  return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  ui.log.scrollTop = ui.log.scrollHeight;
  newBelow = 0;
  renderNewBelow();
}

export function renderNewBelow() {
  const count = newBelow;
  ui.jumpNew.hidden = count === 0;
  ui.jumpNew.textContent = count === 1 ? "1 new message ↓" : `${count} new messages ↓`;
}

/** A message arrived below while the reader is further up: count it and mark where the new ones begin. */
export function noteNewBelow(messageEl) {
  newBelow += 1;
  markDivider(messageEl);
  renderNewBelow();
}

/** The reader scrolled: reaching the bottom means the new messages were seen. */
export function noteScrolled() {
  if (isNearBottom() && newBelow) {
    newBelow = 0;
    renderNewBelow();
  }
}

/** Put the "New messages" divider right above `messageEl`, unless one is shown already. */
export function markDivider(messageEl) {
  if (divider && divider.isConnected) return;
  divider = el("li", { className: "divider", role: "separator", "aria-label": "New messages" }, el("span", { text: "New messages" }));
  ui.messages.insertBefore(divider, messageEl);
}

export function clearDivider() {
  if (divider) divider.remove();
  divider = null;
}

/** The divider element, or null; messages inserted below it keep it right above them. */
export function currentDivider() {
  return divider;
}

/** Forget the count and the divider (the list itself is emptied by its owner). */
export function resetScroll() {
  newBelow = 0;
  divider = null;
}
