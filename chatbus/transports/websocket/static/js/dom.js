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

/** A round avatar with the name's initial in the name's colour; `kind` is human, agent or system. */
export function avatar(name, kind) {
  const node = el("span", { className: `avatar avatar-${kind}`, "aria-hidden": "true", text: initialOf(name) });
  node.style.setProperty("--hue", String(hueOf(name)));
  return node;
}

/** Let a text box grow with its text, up to 30% of the window (at least 120 px), then scroll. */
export function fitHeight(box) {
  box.style.height = "auto";
  const max = Math.max(120, Math.round(window.innerHeight * 0.3));
  box.style.height = `${Math.min(box.scrollHeight + 2, max)}px`;
}
