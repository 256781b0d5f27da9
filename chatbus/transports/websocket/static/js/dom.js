/*
 * Small helpers for building the page: find an element, make one, draw an avatar,
 * fit a text box to its text.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Build an element. Strings among `children` become text nodes, never HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A hue from a name, so each person keeps one avatar colour. */
function hueOf(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

function initialOf(name) {
  const first = String(name).replace(/^[^A-Za-z0-9]+/, "").charAt(0) || String(name).charAt(0) || "?";
  return first.toUpperCase();
}

/**
 * A round avatar with the name's initial; `kind` is human, agent or system.
 * The colour comes from `key` (the id), so two people who show the same name
 * still look different.
 */
export function avatar(name, kind, key = name) {
  const node = el("span", { className: `avatar avatar-${kind}`, "aria-hidden": "true", text: initialOf(name) });
  node.style.setProperty("--hue", String(hueOf(key)));
  return node;
}

/** The button of a toolbar that Tab reaches: the one last used (its `data-key`), else the first. */
function rovingStop(bar) {
  const buttons = [...bar.querySelectorAll("button")];
  return buttons.find((button) => button.dataset.key === bar.dataset.current) || buttons[0];
}

/**
 * Let Tab reach the buttons in `item` exactly when it reaches `item` itself
 * (the one message in focus); of a toolbar's buttons only one, so a message's
 * actions cost one Tab stop, and arrow keys move along them.
 */
export function matchTabStops(item) {
  const on = item.tabIndex === 0;
  for (const button of item.querySelectorAll("button")) {
    const bar = button.closest("[role=toolbar]");
    button.tabIndex = on && (!bar || button === rovingStop(bar)) ? 0 : -1;
  }
}

/** `button` of a toolbar was used: it is the one Tab reaches from now on. */
export function rememberInToolbar(button) {
  const bar = button.closest && button.closest("[role=toolbar]");
  if (!bar || !button.dataset.key) return;
  bar.dataset.current = button.dataset.key;
  for (const other of bar.querySelectorAll("button")) other.tabIndex = other === button ? 0 : -1;
}

/** Arrow keys, Home and End along a toolbar; true when `event` was one of them. */
export function moveInToolbar(event) {
  const bar = event.target.closest && event.target.closest("[role=toolbar]");
  if (!bar) return false;
  const buttons = [...bar.querySelectorAll("button")];
  const at = buttons.indexOf(event.target);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
  if (at < 0 || to === undefined) return false;
  const next = buttons[(to + buttons.length) % buttons.length];
  rememberInToolbar(next);
  next.focus();
  return true;
}

/** Let a text box grow with its text, up to 30% of the window (at least 120 px), then scroll. */
export function fitHeight(box) {
  box.style.height = "auto";
  const max = Math.max(120, Math.round(window.innerHeight * 0.3));
  box.style.height = `${Math.min(box.scrollHeight + 2, max)}px`;
}
