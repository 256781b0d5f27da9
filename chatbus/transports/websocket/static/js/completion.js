/*
 * @ completion in the message box: typing "@b" lists the people and agents
 * whose names contain "b" (online ones and prefix matches first); arrows move,
 * Enter or Tab puts the name in the box (a second Enter then sends), Escape
 * closes the list. The list sits above the box in the page's flow, not over
 * the messages, and a reader at the bottom of the log stays there, so the
 * latest message stays in view while it is open.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $, avatar, el, fitHeight } from "./dom.js";
import { members, namesSeen } from "./people.js";
import { isNearBottom, scrollToBottom } from "./scroll.js";
import { session } from "./session.js";

const ui = {
  input: $("composer-input"),
  completions: $("completions"),
};

let completion = null; // {start, query, items, index}

function candidates(query) {
  const me = session.me ? session.me.userId : null;
  const kinds = new Map(namesSeen);
  for (const member of members.values()) kinds.set(member.id, member.kind);
  const lower = query.toLowerCase();
  const scored = [];
  for (const [name, kind] of kinds) {
    if (name === me || name === "system") continue;
    const index = name.toLowerCase().indexOf(lower);
    if (index < 0) continue;
    const online = members.has(name);
    scored.push({ name, kind, role: members.get(name)?.role || "", score: (index === 0 ? 0 : 2) + (online ? 0 : 1) });
  }
  scored.sort((a, b) => a.score - b.score || a.name.localeCompare(b.name));
  return scored.slice(0, 8);
}

/** Open, update or close the list for the @name being typed at the caret. */
export function updateCompletion() {
  const caret = ui.input.selectionStart;
  if (caret !== ui.input.selectionEnd) return closeCompletion();
  const before = ui.input.value.slice(0, caret);
  const match = /(?:^|[^A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]{0,64})$/.exec(before);
  if (!match) return closeCompletion();
  const items = candidates(match[1]);
  if (!items.length) return closeCompletion();
  const previous = completion;
  const keep = previous ? items.findIndex((item) => item.name === previous.items[previous.index]?.name) : -1;
  completion = { start: caret - match[1].length - 1, query: match[1], items, index: keep >= 0 ? keep : 0 };
  renderCompletion();
}

/** The people changed: an open list follows. */
export function refreshCompletion() {
  if (completion) updateCompletion();
}

function renderOption(item, index) {
  const option = el(
    "li",
    { role: "option", id: `completion-${index}`, className: "completion", "aria-selected": index === completion.index ? "true" : "false" },
    avatar(item.name, item.kind),
    el("span", { className: "completion-name", text: item.name }),
    item.kind === "agent" ? el("span", { className: "badge badge-agent", text: "agent" }) : null,
    item.role ? el("span", { className: "completion-role", text: item.role }) : null,
  );
  option.addEventListener("mousedown", (event) => {
    event.preventDefault(); // keep the focus in the message box
    acceptCompletion(index);
  });
  return option;
}

function renderCompletion() {
  const atBottom = isNearBottom();
  ui.completions.replaceChildren(...completion.items.map(renderOption));
  ui.completions.hidden = false;
  ui.input.setAttribute("aria-activedescendant", `completion-${completion.index}`);
  // The list takes room from the log: keep the latest message in view.
  if (atBottom) scrollToBottom();
}

export function closeCompletion() {
  completion = null;
  if (ui.completions.hidden) return;
  ui.completions.hidden = true;
  ui.completions.replaceChildren();
  ui.input.removeAttribute("aria-activedescendant");
}

function acceptCompletion(index) {
  if (!completion) return;
  const item = completion.items[index];
  const value = ui.input.value;
  const end = completion.start + 1 + completion.query.length;
  const after = value.slice(end);
  const insert = `@${item.name}${after.startsWith(" ") ? "" : " "}`;
  ui.input.value = value.slice(0, completion.start) + insert + after;
  const caret = completion.start + insert.length + (after.startsWith(" ") ? 1 : 0);
  ui.input.setSelectionRange(caret, caret);
  closeCompletion();
  fitHeight(ui.input);
  ui.input.focus();
}

/** A key pressed in the message box while the list is open; true when the list used it. */
export function handleCompletionKey(event) {
  if (!completion) return false;
  const count = completion.items.length;
  switch (event.key) {
    case "ArrowDown":
      completion.index = (completion.index + 1) % count;
      break;
    case "ArrowUp":
      completion.index = (completion.index - 1 + count) % count;
      break;
    case "Enter":
    case "Tab":
      if (event.shiftKey && event.key === "Enter") return false;
      event.preventDefault();
      acceptCompletion(completion.index);
      return true;
    case "Escape":
      event.preventDefault();
      closeCompletion();
      return true;
    default:
      return false;
  }
  event.preventDefault();
  renderCompletion();
  return true;
}
