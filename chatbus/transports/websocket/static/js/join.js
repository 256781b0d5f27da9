/*
 * Getting in: the join form (user id, role, optional token), its checks and
 * messages, remembering the choice on this browser to join by itself next
 * time, and switching between the form and the chat.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { prepareComposer } from "./composer.js";
import { $ } from "./dom.js";
import { ROOM, session } from "./session.js";
import { updateTitle } from "./status.js";
import { NAME_RE, seconds, validName } from "./text.js";

const STORAGE_KEY = "chatbus.join";

const ui = {
  skipLink: $("skip-link"),
  joinView: $("join-view"),
  joinForm: $("join-form"),
  userId: $("user-id"),
  userIdError: $("user-id-error"),
  role: $("role"),
  token: $("token"),
  tokenError: $("token-error"),
  remember: $("remember"),
  joinError: $("join-error"),
  joinButton: $("join-button"),
  chatView: $("chat-view"),
  roomName: $("room-name"),
  me: $("me"),
  meName: $("me-name"),
  meRole: $("me-role"),
  peopleToggle: $("people-toggle"),
};

let begin = () => {}; // starts a session as `session.join`; set by wireJoin

const storage = {
  load() {
    try {
      const raw = window.localStorage.getItem(STORAGE_KEY);
      const saved = raw ? JSON.parse(raw) : null;
      return saved && typeof saved === "object" ? saved : null;
    } catch {
      return null;
    }
  },
  save(value) {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(value));
    } catch {
      /* private mode or storage full: the form simply starts empty next time */
    }
  },
  clear() {
    try {
      window.localStorage.removeItem(STORAGE_KEY);
    } catch {
      /* nothing to clear */
    }
  },
};

// ------------------------------------------------------------------ views
/** Show the join form with `message`; a token problem is shown at the token field, which gets the focus. */
export function showJoin(message, { focusToken = false, tokenProblem = "" } = {}) {
  ui.chatView.hidden = true;
  ui.joinView.hidden = false;
  ui.skipLink.hidden = true;
  document.body.dataset.view = "join";
  ui.me.hidden = true;
  ui.peopleToggle.hidden = true;
  ui.roomName.hidden = true;
  showJoinButton();
  document.title = "Join · chatbus";
  ui.joinError.textContent = message || "";
  ui.tokenError.hidden = true;
  ui.token.removeAttribute("aria-invalid");
  if (focusToken) {
    ui.tokenError.textContent = tokenProblem || "Check this token, or ask the chat's operator for yours.";
    ui.tokenError.hidden = false;
    ui.token.setAttribute("aria-invalid", "true");
    ui.token.focus();
    ui.token.select();
  } else if (!ui.userId.value) {
    ui.userId.focus();
  } else {
    ui.joinButton.focus();
  }
}

function showJoinButton() {
  ui.joinButton.disabled = false;
  ui.joinButton.textContent = "Join";
}

function showJoining() {
  ui.joinButton.disabled = true;
  ui.joinButton.textContent = "Joining…";
}

/** The server cannot be reached before we ever got in: say so, and let Join retry at once. */
export function showRetrying(delay) {
  ui.joinView.hidden = false;
  showJoinButton();
  ui.joinError.textContent = `Cannot reach the chat server. Trying again in ${seconds(delay)} s…`;
}

/** The server did not let us in: explain why, next to the field that is wrong when we can tell. */
export function showRefusal(code, text) {
  const mentionsToken = /token/i.test(text);
  let message = text;
  if (!message) {
    message = code === "MISSING_USER_ID" ? "Type a user id to join." : "The server did not let you in. Check your details and try again.";
  }
  if (mentionsToken) showJoin("", { focusToken: true, tokenProblem: message });
  else showJoin(message);
  if (!mentionsToken && /user id|name/i.test(text)) {
    ui.userId.setAttribute("aria-invalid", "true");
    ui.userId.focus();
    ui.userId.select();
  }
}

/** Show the chat instead of the form, as the person the server confirmed. */
export function showChat() {
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  ui.skipLink.hidden = false;
  document.body.dataset.view = "chat";
  ui.me.hidden = false;
  ui.peopleToggle.hidden = false;
  ui.roomName.hidden = false;
  ui.meName.textContent = session.me.userId;
  ui.meRole.textContent = session.me.role ? ` · ${session.me.role}` : "";
  ui.me.title = `You are ${session.me.userId}${session.me.role ? `, ${session.me.role}` : ""}`;
  prepareComposer();
  updateTitle();
}

// ------------------------------------------------------------------ the form
function fillJoinForm() {
  const saved = storage.load();
  if (!saved) return null;
  if (typeof saved.userId === "string") ui.userId.value = saved.userId;
  if (typeof saved.role === "string") ui.role.value = saved.role;
  if (typeof saved.token === "string") ui.token.value = saved.token;
  ui.remember.checked = saved.remember !== false;
  return saved;
}

function validateJoin() {
  const userId = ui.userId.value.trim();
  let problem = "";
  if (!userId) problem = "Type a user id: the name others will see.";
  else if (userId.length > 64) problem = "A user id is at most 64 characters long.";
  else if (!NAME_RE.test(userId)) problem = "Use only Latin letters (a-z, A-Z), digits, _ - or . in the user id (no spaces).";
  else if (!validName(userId)) problem = "A user id needs at least one letter or digit.";
  ui.userIdError.textContent = problem;
  ui.userIdError.hidden = !problem;
  if (problem) ui.userId.setAttribute("aria-invalid", "true");
  else ui.userId.removeAttribute("aria-invalid");
  return problem ? null : userId;
}

function onJoinSubmit(event) {
  event.preventDefault();
  const userId = validateJoin();
  if (!userId) {
    ui.userId.focus();
    return;
  }
  const role = ui.role.value.trim() || "user";
  const token = ui.token.value.trim();
  session.join = { userId, role, token, remember: ui.remember.checked };
  if (!session.join.remember) storage.clear();
  ui.joinError.textContent = "";
  showJoining();
  begin();
}

// ------------------------------------------------------------------ remembering
/** We are in: remember the choice (to join by itself next time), or forget it when not wanted. */
export function rememberJoin() {
  const join = session.join;
  if (!join) return;
  if (join.remember) {
    storage.save({ userId: join.userId, role: join.role, token: join.token || "", remember: true, autoJoin: true });
  } else {
    storage.clear();
  }
}

/** Keep the form filled in next time, but do not join by itself (after leaving or a refusal). */
export function stopAutoJoin() {
  const saved = storage.load();
  if (saved) storage.save({ ...saved, autoJoin: false });
}

/** Show the form, filled in from last time; join by itself when that was remembered. */
export function openJoin() {
  const saved = fillJoinForm();
  if (saved && saved.autoJoin && validName(saved.userId)) {
    session.join = { userId: saved.userId, role: saved.role || "user", token: saved.token || "", remember: true };
    showJoin("");
    showJoining();
    begin();
    return;
  }
  showJoin("");
}

/** `start` begins a session as `session.join` (the form was sent, or a remembered join). */
export function wireJoin(start) {
  begin = start;
  ui.roomName.textContent = `#${ROOM}`;
  ui.joinForm.addEventListener("submit", onJoinSubmit);
  ui.userId.addEventListener("input", () => {
    if (!ui.userIdError.hidden) validateJoin();
  });
  ui.token.addEventListener("input", () => {
    ui.tokenError.hidden = true;
    ui.token.removeAttribute("aria-invalid");
  });
  for (const chip of document.querySelectorAll(".chip[data-role]")) {
    chip.addEventListener("click", () => {
      ui.role.value = chip.dataset.role;
      ui.role.focus();
    });
  }
}
