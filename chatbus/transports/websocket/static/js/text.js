/*
 * Text rules the page shares: which names are valid, how @mentions are read,
 * and how times, long texts and waits are written. No page access here.
 */

/** A user id or room name the server accepts. */
export const NAME_RE = /^[A-Za-z0-9_.\-]{1,64}$/;

/** Whether `value` is a name the server accepts: NAME_RE, with at least one letter or digit. */
export function validName(value) {
  return typeof value === "string" && NAME_RE.test(value) && /[A-Za-z0-9]/.test(value);
}
/** An @mention as the server reads it: not preceded by a name character or @. */
export const MENTION_RE = /(?<![A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]+)/g;

/** A mention's name as the server counts it: trailing dots/hyphens and a -bot suffix dropped. */
export function mentionName(raw) {
  let name = raw.replace(/[.\-]+$/, "");
  if (name.length > 4 && name.toLowerCase().endsWith("-bot")) name = name.slice(0, -4).replace(/[.\-]+$/, "");
  return name;
}

/** Whether two names are the same person, ignoring case. */
/** The mention that reaches everyone (an agent asking the team for help uses it). */
export const TEAM = "team";

/** Whether a mention of `name` is meant for `userId`: their own name, or the whole team. */
export function mentionReaches(name, userId) {
  return sameName(name, userId) || sameName(name, TEAM);
}

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

/**
 * A wait as the server words it in a rate-limit refusal, so the page's countdown
 * and the server's text name the same time: whole seconds (at least one) under
 * two minutes ("1 second", "45 seconds"), whole minutes rounded up above
 * ("3 minutes").
 */
export function waitText(secondsLeft) {
  const whole = Math.max(1, Math.ceil(secondsLeft));
  if (whole < 120) return `${whole} second${whole === 1 ? "" : "s"}`;
  return `${Math.ceil(whole / 60)} minutes`;
}

/** The marks agents start a message with, and the page's own icon and words for each. */
const LEADING_MARKS = new Map([
  ["\u2705", ["completed", "Done"]], // white heavy check mark
  ["\u2714", ["completed", "Done"]], // heavy check mark
  ["\u2611", ["completed", "Done"]], // ballot box with check
  ["\u23F9", ["stopped", "Stopped"]], // stop button
  ["\u{1F6D1}", ["stopped", "Stopped"]], // stop sign
  ["\u26A0", ["warning", "Warning"]], // warning sign
  ["\u274C", ["failed", "Failed"]], // cross mark
  ["\u2716", ["failed", "Failed"]], // heavy multiplication x
  ["\u2139", ["note", "Note"]], // information source
]);
const LEADING_MARK_RE = /^([\u2705\u2714\u2611\u23F9\u26A0\u274C\u2716\u2139]|\u{1F6D1})\uFE0F?[ \t]*/u;

/**
 * The status mark at the start of `text` (an agent's "✅ Completed: ..."), as
 * {icon, label, rest}, or null when the text starts with none.
 */
export function leadingMark(text) {
  const found = LEADING_MARK_RE.exec(text);
  if (!found) return null;
  const [icon, label] = LEADING_MARKS.get(found[1]);
  return { icon, label, rest: text.slice(found[0].length) };
}

/** Milliseconds as whole seconds to show, never less than 1. */
export function seconds(ms) {
  return Math.max(1, Math.ceil(ms / 1000));
}
