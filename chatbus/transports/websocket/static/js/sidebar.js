/*
 * Who is here and what they are doing: the list of agents (with status, task
 * and progress) and people online (by display name, with a badge for people
 * of other transports), kept current by `presence` and
 * `agent_status` frames, each with the page's mark for their state and a
 * legend of those marks; the "is typing…" line; and, on a phone, the drawer
 * the list lives in. Selecting someone mentions them in the message box.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { refreshCompletion } from "./completion.js";
import { appendMention, focusComposerEnd } from "./composer.js";
import { $, avatar, el } from "./dom.js";
import { icon } from "./icons.js";
import { AGENT_STATUSES, DEFAULT_ROOM } from "./protocol.js";
import { revealNamesakes } from "./message-view.js";
import { applyAgentStatus, applyPresence, displayNameOf, loadMembers, members, nameIsShared, noteIdentity, transportLabel, transportOf, whoIs } from "./people.js";
import { ROOM, isMe, session } from "./session.js";

const TYPING_SHOW_FOR_MS = 6000;

const ui = {
  sidebar: $("sidebar"),
  sidebarClose: $("sidebar-close"),
  peopleToggle: $("people-toggle"),
  peopleCount: $("people-count"),
  agentsList: $("agents-list"),
  agentsCount: $("agents-count"),
  agentsEmpty: $("agents-empty"),
  peopleList: $("people-list"),
  humansCount: $("humans-count"),
  legend: $("legend"),
  typing: $("typing"),
};

/** What each mark in the lists means, in the order the legend shows them. */
const LEGEND = [
  ["online", "online", "in the chat now"],
  ["offline", "offline", "not connected (the top bar shows it when your connection drops)"],
  ["idle", "idle", "agent waiting for a task"],
  ["working", "working", "agent on a task now"],
  ["stuck", "stuck", "agent asked the team for help"],
  ["completed", "completed", "agent finished its last task"],
];

const typing = new Map(); // userId -> shown until (ms)
let typingTimer = 0;

// ------------------------------------------------------------ frames
/** Everyone online, from `auth_response`. */
export function showMembers(data) {
  loadMembers(data);
  renderMembers();
}

export function onPresence(data) {
  if (typeof data.userId !== "string") return;
  if (!applyPresence(data)) return;
  revealNamesakes();
  if (data.status === "offline") {
    typing.delete(data.userId);
    renderTyping();
  }
  renderMembers();
}

export function onAgentStatus(data) {
  if (typeof data.userId !== "string") return;
  applyAgentStatus(data);
  renderMembers();
}

export function onTyping(data) {
  if (typeof data.userId !== "string") return;
  noteIdentity(data.userId, data.displayName, data.transport);
  if (isMe(data.userId)) return;
  if ((data.room || DEFAULT_ROOM) !== ROOM) return;
  typing.set(data.userId, Date.now() + TYPING_SHOW_FOR_MS);
  renderTyping();
}

// ------------------------------------------------------------ typing line
/** `userId`'s message arrived, so they stopped typing. */
export function stopTyping(userId) {
  if (typing.delete(userId)) renderTyping();
}

/** Forget who is typing (the line is redrawn by `renderTyping`). */
export function clearTyping() {
  typing.clear();
}

export function renderTyping() {
  clearTimeout(typingTimer);
  const at = Date.now();
  for (const [name, until] of typing) if (until <= at) typing.delete(name);
  const names = [...typing.keys()].map(displayNameOf);
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
  if (names.length) {
    const next = Math.min(...typing.values()) - at;
    typingTimer = setTimeout(renderTyping, Math.max(200, next));
  }
}

// ------------------------------------------------------------ the lists
export function renderMembers() {
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".member")?.dataset.id;
  const all = [...members.values()];
  const me = session.me ? session.me.userId : null;
  const agents = all.filter((m) => m.kind === "agent").sort((a, b) => a.id.localeCompare(b.id));
  const humans = all
    .filter((m) => m.kind !== "agent")
    .sort((a, b) => (a.id === me ? -1 : b.id === me ? 1 : a.id.localeCompare(b.id)));
  ui.agentsList.replaceChildren(...agents.map(renderMember));
  ui.peopleList.replaceChildren(...humans.map(renderMember));
  ui.agentsCount.textContent = String(agents.length);
  ui.humansCount.textContent = String(humans.length);
  ui.peopleCount.textContent = String(all.length);
  ui.agentsEmpty.hidden = agents.length > 0;
  if (focusedId) {
    const again = [...ui.sidebar.querySelectorAll(".member")].find((node) => node.dataset.id === focusedId);
    again?.querySelector("button")?.focus();
  }
  refreshCompletion();
}

function renderMember(member) {
  const me = isMe(member.id);
  const isAgent = member.kind === "agent";
  const name = displayNameOf(member.id);
  const via = isAgent ? null : transportLabel(transportOf(member.id));
  const nameLine = el(
    "span",
    { className: "member-name-line" },
    el("span", { className: "member-name", text: name }),
    name !== member.id && nameIsShared(name) ? el("span", { className: "member-id", text: member.id }) : null,
    isAgent ? el("span", { className: "badge badge-agent", text: "agent" }) : null,
    me ? el("span", { className: "badge badge-you", text: "you" }) : null,
    via ? el("span", { className: "badge badge-transport", text: via }) : null,
  );
  const details = el("span", { className: "member-details" }, nameLine);
  if (member.role) details.append(el("span", { className: "member-role", text: member.role }));
  const who = whoIs(member.id);
  let label = `${who}${member.role ? `, ${member.role}` : ""}`;
  if (isAgent) label += agentDetails(member, details);
  else label += me ? ", you" : ", online";
  const state = isAgent ? agentStatus(member) : "online";
  const button = el(
    "button",
    { type: "button", className: "member-button", title: me ? "This is you" : `Mention ${who}`, "aria-label": me ? label : `${label}. Mention ${name}` },
    avatar(name, isAgent ? "agent" : "human", member.id),
    details,
    el("span", { className: "member-mark" }, icon(state, state)),
  );
  if (me) button.disabled = true;
  else button.addEventListener("click", () => mention(member.id));
  return el("li", { className: `member member-${isAgent ? "agent" : "human"}`, dataset: { id: member.id, status: member.status || "" } }, button);
}

function agentStatus(member) {
  return AGENT_STATUSES.includes(member.status) ? member.status : "idle";
}

/**
 * Add an agent's status, task and progress to `details`; the words for its label, to append.
 * A completed task reads as past work ("completed: the task", no progress bar); a task
 * being worked on reads as current.
 */
function agentDetails(member, details) {
  const status = agentStatus(member);
  const done = status === "completed";
  const word = done && member.currentTask ? "completed:" : status;
  const statusLine = el("span", { className: `member-status-line member-status-${status}` }, el("span", { className: `status status-${status}`, text: word }));
  if (member.currentTask) {
    const task = el("span", { className: done ? "member-task member-task-done" : "member-task", text: member.currentTask });
    task.title = done ? `Completed: ${member.currentTask}` : member.currentTask;
    statusLine.append(task);
  }
  details.append(statusLine);
  let label = `, agent, ${status}`;
  if (member.currentTask) label += `: ${member.currentTask}`;
  if (!done && member.progress !== null && member.progress !== undefined) {
    details.append(progressBar(member));
    label += `, ${member.progress}% done`;
  }
  return label;
}

function progressBar(member) {
  const fill = el("span", { className: "progress-fill" });
  fill.style.width = `${member.progress}%`;
  return el(
    "span",
    { className: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(member.progress), "aria-label": `${member.id} progress` },
    el("span", { className: "progress-track" }, fill),
    el("span", { className: "progress-text", text: `${member.progress}%` }),
  );
}

/** Mention someone from the list: "@name " goes into the box, the drawer closes. */
function mention(name) {
  appendMention(name);
  closeSidebar();
  focusComposerEnd();
}

/** The legend of the marks the lists use: the same icon, its word, and what it means. */
function renderLegend() {
  ui.legend.replaceChildren(
    ...LEGEND.map(([name, word, meaning]) =>
      el("li", { className: "legend-item", dataset: { icon: name } }, icon(name), el("span", { className: "legend-word", text: word }), el("span", { className: "legend-meaning", text: meaning })),
    ),
  );
}

// ------------------------------------------------------------ the drawer
function openSidebar() {
  ui.sidebar.classList.add("open");
  ui.peopleToggle.setAttribute("aria-expanded", "true");
  ui.sidebarClose.focus();
}

/** Close the drawer (on a phone); true when it was open. */
export function closeSidebar() {
  if (!ui.sidebar.classList.contains("open")) return false;
  ui.sidebar.classList.remove("open");
  ui.peopleToggle.setAttribute("aria-expanded", "false");
  return true;
}

export function wireSidebar() {
  renderLegend();
  ui.peopleToggle.addEventListener("click", () => {
    if (ui.sidebar.classList.contains("open")) closeSidebar();
    else openSidebar();
  });
  ui.sidebarClose.addEventListener("click", () => {
    closeSidebar();
    ui.peopleToggle.focus();
  });
  ui.sidebar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.sidebar.classList.contains("open")) {
      closeSidebar();
      ui.peopleToggle.focus();
    }
  });
  document.addEventListener("click", (event) => {
    // On a phone the list of people is a drawer: a tap outside it closes it.
    if (!ui.sidebar.classList.contains("open")) return;
    if (ui.sidebar.contains(event.target) || ui.peopleToggle.contains(event.target)) return;
    closeSidebar();
  });
}
