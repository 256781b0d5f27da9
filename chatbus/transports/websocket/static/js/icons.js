/*
 * The page's own marks for states: online and offline, an agent's idle,
 * working, stuck and completed, the connection's state, and the done /
 * stopped / warning marks agents put at the start of their messages. Each is
 * a small inline SVG drawn in the colour of its state, so it looks the same on
 * every machine: a computer or phone without an emoji font shows the same
 * shapes as one with. Also the page's own drawings for attaching a file and
 * for a file or picture in a message.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */

const SVG_NS = "http://www.w3.org/2000/svg";

/** A filled disc the size of every round mark (radius 6.5 around the middle of a 16 x 16 box). */
const DISC = "M8 1.5a6.5 6.5 0 1 1 0 13 6.5 6.5 0 0 1 0-13z";

/**
 * Each mark's shapes in a 16 x 16 box: [tag, attributes]. Filled shapes use
 * `evenodd`, so what is cut out of them (a check, a bar) shows the background
 * through, whatever the background is.
 */
const SHAPES = {
  online: [["circle", { cx: 8, cy: 8, r: 5, fill: "currentColor" }]],
  offline: [["circle", { cx: 8, cy: 8, r: 4.5, fill: "none", stroke: "currentColor", "stroke-width": 2 }]],
  idle: [
    ["circle", { cx: 8, cy: 8, r: 5.5, fill: "none", stroke: "currentColor", "stroke-width": 2 }],
    ["path", { d: "M5.5 7h5v2h-5z", fill: "currentColor" }],
  ],
  working: [["path", { d: `${DISC}M6.3 4.8v6.4l5-3.2z`, fill: "currentColor", "fill-rule": "evenodd" }]],
  stuck: [["path", { d: "M8 1 15.2 14.2H.8zM7.1 5.6h1.8v4.3H7.1zm0 5.3h1.8v1.8H7.1z", fill: "currentColor", "fill-rule": "evenodd" }]],
  completed: [["path", { d: `${DISC}M4.2 8.3l1.3-1.3 1.7 1.7 3.3-3.3 1.3 1.3-4.6 4.6z`, fill: "currentColor", "fill-rule": "evenodd" }]],
  warning: [["path", { d: "M8 1 15.2 14.2H.8zM7.1 5.6h1.8v4.3H7.1zm0 5.3h1.8v1.8H7.1z", fill: "currentColor", "fill-rule": "evenodd" }]],
  stopped: [["path", { d: "M4 2.5h8A1.5 1.5 0 0 1 13.5 4v8a1.5 1.5 0 0 1-1.5 1.5H4A1.5 1.5 0 0 1 2.5 12V4A1.5 1.5 0 0 1 4 2.5z", fill: "currentColor" }]],
  failed: [
    ["path", { d: `${DISC}M5.2 6.3l1.1-1.1L8 6.9l1.7-1.7 1.1 1.1L9.1 8l1.7 1.7-1.1 1.1L8 9.1l-1.7 1.7-1.1-1.1L6.9 8z`, fill: "currentColor", "fill-rule": "evenodd" }],
  ],
  note: [["path", { d: `${DISC}M7.1 7h1.8v4.6H7.1zm0-2.9h1.8v1.8H7.1z`, fill: "currentColor", "fill-rule": "evenodd" }]],
  connecting: [["path", { d: "M8 2.5A5.5 5.5 0 1 1 2.5 8", fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round" }]],
  attach: [
    [
      "path",
      {
        d: "M10.6 4.6 5.9 9.3a1.4 1.4 0 0 0 2 2l5-5a2.9 2.9 0 0 0-4.1-4.1l-5 5a4.4 4.4 0 0 0 6.2 6.2l4.3-4.3",
        fill: "none",
        stroke: "currentColor",
        "stroke-width": 1.6,
        "stroke-linecap": "round",
        "stroke-linejoin": "round",
      },
    ],
  ],
  file: [
    ["path", { d: "M4 1.5h5.2l3.3 3.3v9.2a.5.5 0 0 1-.5.5H4a.5.5 0 0 1-.5-.5V2a.5.5 0 0 1 .5-.5zM9 1.7v3.3h3.3", fill: "none", stroke: "currentColor", "stroke-width": 1.4, "stroke-linejoin": "round" }],
    ["path", { d: "M5.5 8.2h5M5.5 10.4h5M5.5 12.6h3", fill: "none", stroke: "currentColor", "stroke-width": 1.2, "stroke-linecap": "round" }],
  ],
  image: [
    ["path", { d: "M2.5 2.5h11a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1z", fill: "none", stroke: "currentColor", "stroke-width": 1.4 }],
    ["path", { d: "M3 12l3.2-4 2.3 2.6 1.6-1.8L13 12zM10.5 4.6a1.3 1.3 0 1 1 0 2.6 1.3 1.3 0 0 1 0-2.6z", fill: "currentColor" }],
  ],
};

/** The names of every mark, for the legend and the tests. */
export const ICONS = Object.freeze(Object.keys(SHAPES));

function shape(tag, attributes) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function svgOf(name) {
  const svg = shape("svg", { viewBox: "0 0 16 16", width: 16, height: 16, focusable: "false", "aria-hidden": "true" });
  for (const [tag, attributes] of SHAPES[name]) svg.append(shape(tag, attributes));
  return svg;
}

/**
 * The mark `name` as an element. With a `label` it is an image with that name
 * for screen readers (where nothing next to it says the same); without one it
 * is decoration beside words that say it.
 */
export function icon(name, label = "") {
  const known = Object.hasOwn(SHAPES, name) ? name : "note";
  const node = document.createElement("span");
  node.className = `icon icon-${known}`;
  node.dataset.icon = known;
  if (label) {
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", label);
    node.title = label;
  } else {
    node.setAttribute("aria-hidden", "true");
  }
  node.append(svgOf(known));
  return node;
}

/** Put mark `name` into `holder` instead of the one it shows, unless it shows that one already. */
export function setIcon(holder, name, label = "") {
  const current = holder.querySelector(":scope > .icon");
  if (current && current.dataset.icon === name && (current.getAttribute("aria-label") || "") === label) return;
  const next = icon(name, label);
  if (current) current.replaceWith(next);
  else holder.prepend(next);
}
