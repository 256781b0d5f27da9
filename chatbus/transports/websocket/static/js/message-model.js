/*
 * A chat message as data: read from a `message` / `agent_response` frame
 * (with its current state: edited text, deleted, reactions, still being
 * written, its files), changed by `message_edited`, `message_deleted` and `reaction`
 * frames, and the questions the page asks of it (is it mine, may I change
 * it, does it mention me). Nothing here touches the page.
 */
import { readAttachments } from "./attachments.js";
import { DEFAULT_ROOM, messageId } from "./protocol.js";
import { isManager, isMe, session } from "./session.js";
import { MENTION_RE, mentionName, mentionReaches, parseTime } from "./text.js";

function stringOr(value, fallback) {
  return typeof value === "string" ? value : fallback;
}

/** `{emoji: [userId, ...]}` as a Map of emoji to the ids that reacted with it, in the server's order. */
function reactionsOf(value) {
  const reactions = new Map();
  if (!value || typeof value !== "object" || Array.isArray(value)) return reactions;
  for (const [emoji, users] of Object.entries(value)) {
    if (!Array.isArray(users)) continue;
    const ids = [...new Set(users.filter((id) => typeof id === "string" && id))];
    if (ids.length) reactions.set(emoji, ids);
  }
  return reactions;
}

/** What may change after a message was sent, as a frame of `history` or `missed` carries it now. */
function stateOf(data) {
  const deleted = data.deleted === true;
  const reactions = deleted ? new Map() : reactionsOf(data.reactions);
  return {
    text: deleted ? "" : typeof data.text === "string" ? data.text : String(data.text ?? ""),
    mentions: Array.isArray(data.mentions) ? data.mentions.filter((m) => typeof m === "string") : [],
    editedAt: parseTime(data.editedAt),
    editedBy: stringOr(data.editedBy, null),
    deleted,
    deletedAt: parseTime(data.deletedAt),
    deletedBy: stringOr(data.deletedBy, null),
    reactions,
    counts: new Map([...reactions].map(([emoji, ids]) => [emoji, ids.length])),
    streaming: !deleted && data.streaming === true,
    attachments: deleted ? [] : readAttachments(data.attachments),
  };
}

function kindOf(type, data, sender) {
  if (type !== "agent_response") return "human";
  if (data.kind === "agent" || data.kind === "system") return data.kind;
  return sender === "system" ? "system" : "agent";
}

/** A message frame's data as the page keeps it, or null when it has no valid id. */
export function normalise(type, data) {
  const id = messageId(data.id);
  if (id === null) return null;
  const replyTo = messageId(data.replyTo);
  const sender = typeof data.sender === "string" && data.sender ? data.sender : "unknown";
  const displayName = typeof data.displayName === "string" && data.displayName.trim() ? data.displayName.trim() : sender;
  return {
    id,
    type,
    kind: kindOf(type, data, sender),
    sender,
    displayName,
    role: stringOr(data.role, ""),
    date: parseTime(data.timestamp),
    timestamp: stringOr(data.timestamp, ""),
    isCommand: data.isCommand === true,
    replyTo,
    room: typeof data.room === "string" && data.room ? data.room : DEFAULT_ROOM,
    transport: stringOr(data.transport, null),
    clientId: stringOr(data.clientId, null),
    ...stateOf(data),
    changedAt: 0, // when a live change frame last changed it (performance.now())
    el: null,
  };
}

/** Whether a frame of `history` or `missed` says something else about `message` than the page shows. */
export function stateDiffers(message, data) {
  const fresh = stateOf(data);
  const time = (date) => (date ? date.getTime() : 0);
  const reactions = (map) => JSON.stringify([...map]);
  return (
    fresh.text !== message.text ||
    fresh.deleted !== message.deleted ||
    fresh.streaming !== message.streaming ||
    time(fresh.editedAt) !== time(message.editedAt) ||
    reactions(fresh.reactions) !== reactions(message.reactions)
  );
}

/** Take the state a frame of `history` or `missed` carries (it is newer than what is shown). */
export function takeState(message, data) {
  Object.assign(message, stateOf(data));
}

/** A `message_edited` frame: the new text (and whether it is still being written). */
export function applyEdited(message, data) {
  if (message.deleted) return false;
  message.text = typeof data.text === "string" ? data.text : message.text;
  message.mentions = Array.isArray(data.mentions) ? data.mentions.filter((m) => typeof m === "string") : [];
  message.editedAt = parseTime(data.editedAt) || new Date();
  message.editedBy = stringOr(data.editedBy, message.editedBy);
  message.streaming = data.streaming === true;
  message.changedAt = performance.now();
  return true;
}

/** A `message_deleted` frame: the text and reactions are gone, the place stays. */
export function applyDeleted(message, data) {
  if (message.deleted) return false;
  Object.assign(message, {
    text: "",
    mentions: [],
    deleted: true,
    deletedAt: parseTime(data.deletedAt) || new Date(),
    deletedBy: stringOr(data.deletedBy, null),
    reactions: new Map(),
    counts: new Map(),
    streaming: false,
    attachments: [],
    changedAt: performance.now(),
  });
  return true;
}

/**
 * A `reaction` frame: `userId` added (`on`) or took back `emoji`. The server's
 * `counts` are the numbers after the change, for every emoji on the message.
 */
export function applyReaction(message, data) {
  if (message.deleted || typeof data.emoji !== "string" || typeof data.userId !== "string") return false;
  const ids = (message.reactions.get(data.emoji) || []).filter((id) => id !== data.userId);
  if (data.on !== false) ids.push(data.userId);
  message.reactions.set(data.emoji, ids);
  const counts = data.counts && typeof data.counts === "object" ? data.counts : null;
  const counted = (emoji, users) => (counts ? (Number.isSafeInteger(counts[emoji]) ? counts[emoji] : 0) : users.length);
  if (counts) for (const emoji of Object.keys(counts)) if (!message.reactions.has(emoji)) message.reactions.set(emoji, []);
  message.counts = new Map();
  for (const [emoji, users] of [...message.reactions]) {
    const count = counted(emoji, users);
    if (count > 0) message.counts.set(emoji, count);
    else message.reactions.delete(emoji);
  }
  message.changedAt = performance.now();
  return true;
}

/** Whether the person using this page sent `message`. */
export function isMine(message) {
  return message.kind === "human" && isMe(message.sender);
}

/** Whether this page offers to edit `message`: your own messages only. */
export function canEdit(message) {
  return !message.deleted && isMine(message);
}

/** Whether this page offers to delete `message`: your own, or anyone's for a manager. */
export function canDelete(message) {
  return !message.deleted && (isMine(message) || isManager());
}

/** Whether the person using this page reacted to `message` with `emoji`. */
export function reactedByMe(message, emoji) {
  return Boolean(session.me) && (message.reactions.get(emoji) || []).includes(session.me.userId);
}

/**
 * Whether to mark `message` "(edited)": a person's message whose text changed,
 * or an agent's changed by someone else. An agent's answer growing while it is
 * written, and the edit that ends it, are how agents write, not corrections.
 */
export function showsEdited(message) {
  if (message.deleted || message.streaming || !message.editedAt) return false;
  return message.kind === "human" || (message.editedBy !== null && message.editedBy !== message.sender);
}

/** Whether `message` mentions the person using this page. */
export function mentionsMe(message) {
  if (!session.me || isMine(message) || message.deleted) return false;
  if (message.mentions.some((name) => mentionReaches(name, session.me.userId))) return true;
  for (const match of message.text.matchAll(MENTION_RE)) {
    if (mentionReaches(mentionName(match[1]), session.me.userId)) return true;
  }
  return false;
}
