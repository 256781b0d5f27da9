/*
 * Who is in the chat, as data: the people and agents online with their role,
 * kind and (for agents) status, task and progress; every name seen in the
 * chat, for @ completion; and what to call each id (its display name) and
 * where it comes from (its transport: people of other transports have ids like
 * `tg:12345`). The sidebar and the messages draw this; nothing here touches
 * the page.
 */
import { AGENT_STATUSES } from "./protocol.js";
import { session } from "./session.js";

/** id -> {id, role, kind, status, currentTask, progress} of everyone online. */
export const members = new Map();
/** name -> kind ("human" or "agent") of everyone seen online or in a message. */
export const namesSeen = new Map();

/** id -> {name, transport}: what each person or agent is shown as, and where they write from. */
const identities = new Map();

/** The transports whose people are shown with a badge, by the name their users know. */
const TRANSPORT_NAMES = { telegram: "Telegram", slack: "Slack", matrix: "Matrix", irc: "IRC", email: "Email" };

/**
 * Remember what `id` is called and where they write from (from a message,
 * presence or typing frame); true when that is news (a new id or another name).
 */
export function noteIdentity(id, displayName, transport) {
  if (typeof id !== "string" || !id) return false;
  const known = identities.get(id) || { name: id, transport: null };
  const before = identities.has(id) ? known.name : null;
  if (typeof displayName === "string" && displayName.trim()) known.name = displayName.trim();
  if (typeof transport === "string" && transport) known.transport = transport;
  identities.set(id, known);
  return known.name !== before;
}

/** Whether more than one person is known by `name` (ignoring case): then their ids are shown beside it. */
export function nameIsShared(name) {
  const folded = String(name).toLowerCase();
  let count = 0;
  for (const known of identities.values()) if (known.name.toLowerCase() === folded) count += 1;
  return count > 1;
}

/** What to show for `id`: its display name when one is known, else the id itself. */
export function displayNameOf(id) {
  return identities.get(id)?.name || id;
}

/** The transport `id` writes from, when known. */
export function transportOf(id) {
  return identities.get(id)?.transport || null;
}

/** The badge for a transport other than the web chat ("Telegram" for `telegram`), or null for the web. */
export function transportLabel(transport) {
  if (typeof transport !== "string" || !transport || transport === "websocket") return null;
  return TRANSPORT_NAMES[transport] || transport.charAt(0).toUpperCase() + transport.slice(1);
}

/**
 * Who `id` is, in full, for tooltips and screen readers: the display name, and
 * the id and transport when they tell two people of the same name apart
 * ("Alice (tg:12345, Telegram)").
 */
export function whoIs(id, name = displayNameOf(id), transport = transportOf(id)) {
  const details = [];
  if (name !== id) details.push(id);
  const label = transportLabel(transport);
  if (label) details.push(label);
  return details.length ? `${name} (${details.join(", ")})` : name;
}

/** A name seen as a message's sender, so @ completion offers it even when they are offline. */
export function noteSender(name, kind) {
  namesSeen.set(name, kind);
}

export function clearPeople() {
  members.clear();
  namesSeen.clear();
  identities.clear();
}

/** A progress figure as a whole percentage from 0 to 100, or null when it is not a number. */
function progressOf(value) {
  return typeof value === "number" && Number.isFinite(value) ? Math.max(0, Math.min(100, Math.round(value))) : null;
}

/** Add or update one member; fields left undefined keep what was known. */
function upsertMember(id, fields) {
  const current = members.get(id) || { id, role: "", kind: "human", status: "online", currentTask: null, progress: null };
  const next = { ...current };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) next[key] = value;
  if (next.kind === "agent" && !AGENT_STATUSES.includes(next.status)) {
    next.status = current.kind === "agent" && AGENT_STATUSES.includes(current.status) ? current.status : "idle";
  }
  members.set(id, next);
  namesSeen.set(id, next.kind);
  return next;
}

/** Everyone online as `auth_response` lists them (`users`, or only ids in `agents` from older servers). */
export function loadMembers(data) {
  const previous = new Map(members);
  members.clear();
  if (Array.isArray(data.users)) {
    for (const user of data.users) {
      if (user && typeof user.id === "string") loadUser(user, previous.get(user.id));
    }
  } else if (Array.isArray(data.agents)) {
    for (const id of data.agents) if (typeof id === "string") upsertMember(id, { kind: "human", status: "online" });
  }
  if (session.me && !members.has(session.me.userId)) {
    upsertMember(session.me.userId, { role: session.me.role, kind: "human", status: "online" });
  }
}

function loadUser(user, before) {
  noteIdentity(user.id, user.displayName, user.transport);
  const current = upsertMember(user.id, {
    role: typeof user.role === "string" ? user.role : "",
    kind: user.kind === "agent" ? "agent" : "human",
    status: typeof user.status === "string" ? user.status : "online",
    currentTask: typeof user.currentTask === "string" && user.currentTask ? user.currentTask : undefined,
    progress: progressOf(user.progress) ?? undefined,
  });
  // An agent still in the same state keeps the task and progress it reported before the reconnect.
  if (before && before.kind === "agent" && current.kind === "agent" && before.status === current.status && current.currentTask === null) {
    current.currentTask = before.currentTask;
    current.progress = before.progress;
  }
}

/** A `presence` frame: someone came online or went away. False when nothing changed (our own other tab closing). */
export function applyPresence(data) {
  noteIdentity(data.userId, data.displayName, data.transport);
  if (data.status === "offline") {
    if (session.me && data.userId === session.me.userId) return false; // another tab of ours closed
    members.delete(data.userId);
    return true;
  }
  upsertMember(data.userId, {
    role: typeof data.role === "string" ? data.role : undefined,
    kind: data.kind === "agent" ? "agent" : data.kind === "human" ? "human" : undefined,
    // presence says "online"; an agent's own status comes from agent_status
    status: data.kind === "agent" ? undefined : "online",
  });
  return true;
}

/** An `agent_status` frame: what an agent is doing now. */
export function applyAgentStatus(data) {
  upsertMember(data.userId, {
    kind: "agent",
    status: AGENT_STATUSES.includes(data.status) ? data.status : "idle",
    currentTask: typeof data.currentTask === "string" && data.currentTask ? data.currentTask : null,
    progress: progressOf(data.progress),
  });
}
