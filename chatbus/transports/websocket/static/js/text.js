/*
 * Text rules the page shares: which names are valid, how @mentions are read,
 * and how times, long texts and waits are written. No page access here.
 */

/** A user id or room name the server accepts. */
export const NAME_RE = /^[A-Za-z0-9_.\-]{1,64}$/;
/** An @mention as the server reads it: not preceded by a name character or @. */
export const MENTION_RE = /(?<![A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]+)/g;

/** A mention's name as the server counts it: trailing dots/hyphens and a -bot suffix dropped. */
export function mentionName(raw) {
  let name = raw.replace(/[.\-]+$/, "");
  if (name.length > 4 && name.toLowerCase().endsWith("-bot")) name = name.slice(0, -4).replace(/[.\-]+$/, "");
  return name;
}

/** Whether two names are the same person, ignoring case. */
export function sameName(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/** A timestamp as a Date, or null when it is missing or not a time. */
export function parseTime(value) {
  if (typeof value !== "string" && typeof value !== "number") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** A message time as people say it: the time today, "Yesterday 10:15", or the day before that. */
export function shortTime(date) {
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return time;
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === yesterday.toDateString()) return `Yesterday ${time}`;
  const sameYear = date.getFullYear() === today.getFullYear();
  const day = date.toLocaleDateString([], sameYear ? { month: "short", day: "numeric" } : { year: "numeric", month: "short", day: "numeric" });
  return `${day}, ${time}`;
}

/** `text` on one line, cut to `length` characters with an ellipsis. */
export function clip(text, length) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

/** Milliseconds as whole seconds to show, never less than 1. */
export function seconds(ms) {
  return Math.max(1, Math.ceil(ms / 1000));
}
