/*
 * A message's text as page nodes: plain text stays text, web addresses
 * (http and https only) become links, @mentions are highlighted, the
 * reader's own name more strongly, and the status mark an agent starts a
 * message with (✅, ⏹️, ⚠️) is shown as the page's own icon, readable
 * without an emoji font.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { el } from "./dom.js";
import { icon } from "./icons.js";
import { session } from "./session.js";
import { MENTION_RE, leadingMark, mentionName, mentionReaches } from "./text.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/g;

/** The links and mentions in `text`, in order, as {start, end, kind, value}; overlaps are left to the caller. */
function tokenize(text) {
  const tokens = [];
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trailing = /[.,;:!?)\]}]+$/.exec(url);
    if (trailing) url = url.slice(0, -trailing[0].length);
    tokens.push({ start: match.index, end: match.index + url.length, kind: "url", value: url });
  }
  for (const match of text.matchAll(MENTION_RE)) {
    const start = match.index;
    if (tokens.some((token) => start < token.end && start + match[0].length > token.start)) continue;
    const name = mentionName(match[1]);
    if (!name) continue;
    tokens.push({ start, end: start + 1 + match[1].length, kind: "mention", value: name });
  }
  return tokens.sort((a, b) => a.start - b.start);
}

/** An address as a link when it parses as http or https; otherwise the raw text. */
function linkOrText(url, raw) {
  let safe = null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
  } catch {
    safe = null;
  }
  if (!safe) return raw;
  const link = el("a", { className: "msg-link", rel: "noopener noreferrer nofollow", target: "_blank", text: raw });
  link.href = safe;
  return link;
}

function mentionNode(name, raw) {
  const self = session.me && mentionReaches(name, session.me.userId);
  return el("span", { className: self ? "mention mention-me" : "mention", text: raw });
}

/** Message text as nodes (strings become text nodes): plain text, links and @mentions. */
export function renderText(text) {
  const parts = [];
  let at = 0;
  for (const token of tokenize(text)) {
    if (token.start < at) continue;
    if (token.start > at) parts.push(text.slice(at, token.start));
    const raw = text.slice(token.start, token.end);
    parts.push(token.kind === "url" ? linkOrText(token.value, raw) : mentionNode(token.value, raw));
    at = token.end;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/**
 * The text of a message from `kind` ("human", "agent" or "system") as nodes:
 * an agent's or the system's leading status mark becomes the page's icon
 * (named for screen readers), and the rest is made by `toNodes`. What people
 * type is shown as they typed it.
 */
export function markedText(kind, text, toNodes = renderText) {
  const mark = kind === "human" ? null : leadingMark(text);
  if (!mark) return [toNodes(text)].flat();
  return [icon(mark.icon, mark.label), ...[toNodes(mark.rest)].flat()];
}
