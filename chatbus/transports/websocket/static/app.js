/*
 * The chatbus web chat page.
 *
 * Speaks the chatbus WebSocket protocol (version 1) to the server that served
 * this page: join with `auth`, read `message` / `agent_response` frames, page
 * back through `history`, show `presence`, `agent_status` and `typing`, and
 * resume after a dropped connection with `lastSeenId` so nothing is missed or
 * shown twice.
 *
 * Safety rule for this file: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------- settings
  const NAME_RE = /^[A-Za-z0-9_.\-]{1,64}$/;
  const ROOM = (() => {
    const asked = new URLSearchParams(location.search).get("room");
    return asked && NAME_RE.test(asked) ? asked : "general";
  })();
  const DEFAULT_ROOM = "general";
  const STORAGE_KEY = "chatbus.join";
  const HISTORY_PAGE = 50;
  const REPLAY_LIMIT = 500; // the server's default replay limit for `missed`
  const TYPING_SEND_EVERY_MS = 3000;
  const TYPING_SHOW_FOR_MS = 6000;
  const TYPING_AFTER_SEND_MS = 1200;
  const PING_EVERY_MS = 25000;
  const PONG_WAIT_MS = 10000;
  const RECONNECT_FIRST_MS = 1000;
  const RECONNECT_MAX_MS = 30000;
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const NEAR_BOTTOM_PX = 80;
  const LOAD_OLDER_WITHIN_PX = 150;
  const ROLE_CHOICES = ["developer", "designer", "tester", "manager"];
  const AGENT_STATUSES = ["idle", "working", "stuck", "completed"];
  // An @mention as the server reads it: not preceded by a name character or @.
  const MENTION_RE = /(?<![A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]+)/g;
  const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/g;

  // ------------------------------------------------------------------ helpers
  const $ = (id) => document.getElementById(id);

  /** Build an element. Strings among `children` become text nodes, never HTML. */
  function el(tag, props = {}, ...children) {
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

  const now = () => Date.now();
  const prefersReducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
      return window.crypto.randomUUID();
    }
    return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
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

  function avatar(name, kind) {
    const node = el("span", { className: `avatar avatar-${kind}`, "aria-hidden": "true", text: initialOf(name) });
    node.style.setProperty("--hue", String(hueOf(name)));
    return node;
  }

  /** A mention's name as the server counts it: trailing dots/hyphens and a -bot suffix dropped. */
  function mentionName(raw) {
    let name = raw.replace(/[.\-]+$/, "");
    if (name.length > 4 && name.toLowerCase().endsWith("-bot")) name = name.slice(0, -4).replace(/[.\-]+$/, "");
    return name;
  }

  function sameName(a, b) {
    return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
  }

  function parseTime(value) {
    if (typeof value !== "string" && typeof value !== "number") return null;
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function shortTime(date) {
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const today = new Date();
    if (date.toDateString() === today.toDateString()) return time;
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === yesterday.toDateString()) return `Yesterday ${time}`;
    const sameYear = date.getFullYear() === today.getFullYear();
    const day = date.toLocaleDateString([], sameYear ? { month: "short", day: "numeric" } : { year: "numeric", month: "short", day: "numeric" });
    return `${day}, ${time}`;
  }

  function clip(text, length) {
    const flat = String(text).replace(/\s+/g, " ").trim();
    return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
  }

  function seconds(ms) {
    return Math.max(1, Math.ceil(ms / 1000));
  }

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

  // -------------------------------------------------------------------- state
  const state = {
    join: null, // {userId, role, token, remember} as typed in the form
    me: null, // {userId, role} as the server confirmed it
    ws: null,
    phase: "idle", // idle | connecting | authenticating | ready | waiting | stopped
    everConnected: false,
    attempt: 0,
    delays: [], // reconnect delays of the current outage, for people debugging and the tests
    retryTimer: 0,
    retryAt: 0,
    countdownTimer: 0,
    pingTimer: 0,
    pongTimer: 0,
    lastSeenId: 0,
    messages: new Map(), // id -> {id, type, data, el, date}
    ids: [], // ids shown, ascending
    pendingQuotes: new Map(), // id of a message not shown yet -> quote buttons waiting for it
    hasMore: true,
    historyRequests: [], // FIFO of {before, resolve}
    members: new Map(), // id -> {id, role, kind, status, currentTask, progress}
    namesSeen: new Map(), // name -> kind, from messages, for @ completion
    typing: new Map(), // userId -> expires at
    typingTimer: 0,
    lastTypingSent: 0,
    typingUnsupported: false,
    replyTo: null, // {id, sender, text}
    outstanding: new Map(), // clientId -> {text, replyTo, at}
    rateLimitedUntil: 0,
    rateTimer: 0,
    unread: 0,
    newBelow: 0,
    divider: null,
    activeMessage: null,
    completion: null, // {start, query, items, index}
  };

  // ------------------------------------------------------------------ elements
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
    connection: $("connection"),
    connectionText: $("connection-text"),
    retryNow: $("retry-now"),
    me: $("me"),
    meName: $("me-name"),
    meRole: $("me-role"),
    leave: $("leave"),
    peopleToggle: $("people-toggle"),
    peopleCount: $("people-count"),
    log: $("log"),
    loadOlder: $("load-older"),
    logTopText: $("log-top-text"),
    messages: $("messages"),
    jumpNew: $("jump-new"),
    typing: $("typing"),
    errorLine: $("error-line"),
    errorText: $("error-text"),
    errorDismiss: $("error-dismiss"),
    replyPreview: $("reply-preview"),
    replySender: $("reply-preview-sender"),
    replyText: $("reply-preview-text"),
    replyCancel: $("reply-cancel"),
    composer: $("composer"),
    input: $("composer-input"),
    completions: $("completions"),
    send: $("send-button"),
    sidebar: $("sidebar"),
    sidebarClose: $("sidebar-close"),
    agentsList: $("agents-list"),
    agentsCount: $("agents-count"),
    agentsEmpty: $("agents-empty"),
    peopleList: $("people-list"),
    humansCount: $("humans-count"),
    announcer: $("announcer"),
  };

  const baseTitle = `#${ROOM} · chatbus`;

  // ---------------------------------------------------------------- join form
  function showJoin(message, { focusToken = false, tokenProblem = "" } = {}) {
    ui.chatView.hidden = true;
    ui.joinView.hidden = false;
    ui.skipLink.hidden = true;
    document.body.dataset.view = "join";
    ui.me.hidden = true;
    ui.peopleToggle.hidden = true;
    ui.roomName.hidden = true;
    ui.joinButton.disabled = false;
    ui.joinButton.textContent = "Join";
    document.title = "Join · chatbus";
    ui.joinError.textContent = message || "";
    ui.tokenError.hidden = true;
    ui.token.removeAttribute("aria-invalid");
    if (focusToken) {
      // The problem is shown next to the token field, which gets the focus.
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
    else if (!NAME_RE.test(userId)) problem = "Use only letters, digits, _ - or . in the user id (no spaces).";
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
    state.join = { userId, role, token, remember: ui.remember.checked };
    if (!state.join.remember) storage.clear();
    ui.joinError.textContent = "";
    ui.joinButton.disabled = true;
    ui.joinButton.textContent = "Joining…";
    startSession();
  }

  function rememberJoin() {
    const join = state.join;
    if (!join) return;
    if (join.remember) {
      storage.save({ userId: join.userId, role: join.role, token: join.token || "", remember: true, autoJoin: true });
    } else {
      storage.clear();
    }
  }

  // ------------------------------------------------------------------ session
  function resetChat() {
    state.me = null;
    state.everConnected = false;
    state.lastSeenId = 0;
    state.messages.clear();
    state.ids = [];
    state.pendingQuotes.clear();
    state.hasMore = true;
    for (const request of state.historyRequests) request.resolve(false);
    state.historyRequests = [];
    state.members.clear();
    state.namesSeen.clear();
    state.typing.clear();
    state.outstanding.clear();
    state.unread = 0;
    state.newBelow = 0;
    state.divider = null;
    state.activeMessage = null;
    state.rateLimitedUntil = 0;
    ui.messages.replaceChildren();
    ui.input.value = "";
    cancelReply();
    hideError();
    closeCompletion();
    renderMembers();
    renderTyping();
    renderNewBelow();
    renderLogTop();
  }

  function startSession() {
    resetChat();
    state.attempt = 0;
    connect();
  }

  function enterChat() {
    ui.joinView.hidden = true;
    ui.chatView.hidden = false;
    ui.skipLink.hidden = false;
    document.body.dataset.view = "chat";
    ui.me.hidden = false;
    ui.peopleToggle.hidden = false;
    ui.roomName.hidden = false;
    ui.meName.textContent = state.me.userId;
    ui.meRole.textContent = state.me.role ? ` · ${state.me.role}` : "";
    ui.input.placeholder = `Message #${ROOM}`;
    autosize();
    updateTitle();
  }

  function leave() {
    state.phase = "stopped";
    closeSocket(1000, "left the chat");
    clearTimers();
    setConnection("idle");
    const saved = storage.load();
    if (saved) storage.save({ ...saved, autoJoin: false });
    resetChat();
    showJoin("You left the chat. Join again whenever you like.");
  }

  // --------------------------------------------------------------- connection
  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/`;
  }

  function clearTimers() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
    state.retryTimer = state.countdownTimer = state.pingTimer = state.pongTimer = 0;
  }

  function closeSocket(code, reason) {
    const ws = state.ws;
    state.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  function connect() {
    clearTimers();
    closeSocket(1000, "reconnecting");
    state.phase = "connecting";
    setConnection("connecting");
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      if (ws !== state.ws) return;
      state.phase = "authenticating";
      const data = { userId: state.join.userId, role: state.join.role };
      if (state.join.token) data.token = state.join.token;
      if (state.lastSeenId > 0) data.lastSeenId = state.lastSeenId;
      sendFrame("auth", data);
    };
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      heard();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        console.warn("chatbus: ignored a frame that is not JSON");
        return;
      }
      if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
      try {
        handleFrame(frame.type, frame.data && typeof frame.data === "object" ? frame.data : {});
      } catch (error) {
        console.error("chatbus: could not handle a frame", frame.type, error);
      }
    };
    ws.onclose = (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      onSocketClosed(event);
    };
    ws.onerror = () => {
      /* a close event always follows and is handled there */
    };
  }

  function onSocketClosed(event) {
    const wasAuthenticating = state.phase === "authenticating" || state.phase === "connecting";
    clearTimers();
    state.typing.clear();
    renderTyping();
    for (const request of state.historyRequests) request.resolve(false);
    state.historyRequests = [];
    renderLogTop();
    if (state.phase === "stopped") return;
    if (!state.everConnected && wasAuthenticating && event && event.code >= 4000) {
      // The server turned us away on purpose before we were in.
      state.phase = "stopped";
      setConnection("idle");
      showJoin(event.reason || "The server refused to let you in. Check your details and try again.");
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    state.phase = "waiting";
    state.attempt += 1;
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** (state.attempt - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.delays.push(delay);
    state.retryAt = now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    setConnection("waiting");
    state.countdownTimer = setInterval(() => setConnection("waiting"), 1000);
    if (!state.everConnected) {
      // Still on the join form: say so, and let the person press Join to retry at once.
      ui.joinView.hidden = false;
      ui.joinButton.disabled = false;
      ui.joinButton.textContent = "Join";
      ui.joinError.textContent = `Cannot reach the chat server. Trying again in ${seconds(delay)} s…`;
    }
  }

  function reconnectNow() {
    if (state.phase === "waiting") connect();
  }

  /** Any frame shows the connection is alive; a missing pong means it is not. */
  function heard() {
    clearTimeout(state.pongTimer);
    state.pongTimer = 0;
  }

  function startKeepalive() {
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => {
      if (state.phase !== "ready") return;
      sendFrame("ping");
      clearTimeout(state.pongTimer);
      state.pongTimer = setTimeout(() => {
        console.warn("chatbus: no answer to ping; reconnecting");
        closeSocket(4000, "no pong");
        onSocketClosed(null);
      }, PONG_WAIT_MS);
    }, PING_EVERY_MS);
  }

  function sendFrame(type, data) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(data === undefined ? { type } : { type, data }));
    return true;
  }

  function setConnection(kind) {
    let text;
    let show = false;
    if (kind === "connecting") text = state.everConnected ? "Reconnecting…" : "Connecting…";
    else if (kind === "ready") text = "Connected";
    else if (kind === "waiting") {
      const left = seconds(state.retryAt - now());
      text = navigator.onLine === false
        ? "Offline: waiting for the network"
        : `Disconnected: retrying in ${left} s`;
      show = true;
    } else text = "Not connected";
    ui.connection.dataset.state = kind;
    document.body.dataset.connection = kind;
    if (ui.connectionText.textContent !== text) ui.connectionText.textContent = text;
    ui.retryNow.hidden = !show;
    ui.send.disabled = kind !== "ready";
    ui.send.title = kind === "ready" ? "" : "Not connected right now";
  }

  // ------------------------------------------------------------------- frames
  function handleFrame(type, data) {
    switch (type) {
      case "auth_response":
        onAuthResponse(data);
        break;
      case "message":
      case "agent_response":
        onChatFrame(type, data, "live");
        break;
      case "history":
        onHistory(data);
        break;
      case "presence":
        onPresence(data);
        break;
      case "agent_status":
        onAgentStatus(data);
        break;
      case "typing":
        onTyping(data);
        break;
      case "error":
        onError(data);
        break;
      case "pong":
        break;
      default:
        break; // newer servers may send frames this page does not know yet
    }
  }

  function onAuthResponse(data) {
    if (data.success === false) {
      onError({ code: "AUTH_FAILED", message: data.message || data.error || "" });
      return;
    }
    const resumed = state.everConnected;
    const resumedFrom = state.lastSeenId;
    state.me = {
      userId: typeof data.userId === "string" && data.userId ? data.userId : state.join.userId,
      role: typeof data.role === "string" ? data.role : state.join.role,
    };
    state.phase = "ready";
    state.attempt = 0;
    state.delays = [];
    state.everConnected = true;
    clearTimers();
    setConnection("ready");
    startKeepalive();
    rememberJoin();
    if (!resumed) {
      enterChat();
      ui.input.focus();
    }
    loadMembers(data);

    const missed = Array.isArray(data.missed) ? data.missed : null;
    if (missed) {
      for (const frame of missed) {
        if (frame && (frame.type === "message" || frame.type === "agent_response") && frame.data) {
          onChatFrame(frame.type, frame.data, "missed");
        }
      }
      if (missed.length) announce(`${missed.length} message${missed.length === 1 ? "" : "s"} arrived while you were disconnected.`);
    }
    if (!resumed || resumedFrom === 0) {
      requestHistory(null, "initial");
    } else if (!missed || missed.length >= REPLAY_LIMIT) {
      // A server that does not replay, or more was missed than it replays: fetch the latest page.
      requestHistory(null, "latest");
    }
    settleOutstanding();
    renderLogTop();
  }

  /** After a resume, a sent message that never came back is put back in the box. */
  function settleOutstanding() {
    if (!state.outstanding.size) return;
    const lost = [...state.outstanding.values()];
    state.outstanding.clear();
    const texts = lost.map((entry) => entry.text).join("\n");
    ui.input.value = ui.input.value ? `${texts}\n${ui.input.value}` : texts;
    autosize();
    showError("The connection dropped before your last message was confirmed. It is back in the box: send it again if it is not in the chat.");
  }

  function loadMembers(data) {
    const previous = new Map(state.members);
    state.members.clear();
    if (Array.isArray(data.users)) {
      for (const user of data.users) {
        if (!user || typeof user.id !== "string") continue;
        upsertMember(user.id, {
          role: typeof user.role === "string" ? user.role : "",
          kind: user.kind === "agent" ? "agent" : "human",
          status: typeof user.status === "string" ? user.status : "online",
          currentTask: typeof user.currentTask === "string" && user.currentTask ? user.currentTask : undefined,
          progress: typeof user.progress === "number" && Number.isFinite(user.progress) ? Math.max(0, Math.min(100, Math.round(user.progress))) : undefined,
        });
        const before = previous.get(user.id);
        const current = state.members.get(user.id);
        if (before && before.kind === "agent" && current.kind === "agent" && before.status === current.status && current.currentTask === null) {
          current.currentTask = before.currentTask;
          current.progress = before.progress;
        }
      }
    } else if (Array.isArray(data.agents)) {
      for (const id of data.agents) if (typeof id === "string") upsertMember(id, { kind: "human", status: "online" });
    }
    if (state.me && !state.members.has(state.me.userId)) {
      upsertMember(state.me.userId, { role: state.me.role, kind: "human", status: "online" });
    }
    renderMembers();
  }

  function upsertMember(id, fields) {
    const current = state.members.get(id) || { id, role: "", kind: "human", status: "online", currentTask: null, progress: null };
    const next = { ...current };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) next[key] = value;
    if (next.kind === "agent" && !AGENT_STATUSES.includes(next.status)) next.status = current.kind === "agent" && AGENT_STATUSES.includes(current.status) ? current.status : "idle";
    state.members.set(id, next);
    state.namesSeen.set(id, next.kind);
    return next;
  }

  function onPresence(data) {
    if (typeof data.userId !== "string") return;
    if (data.status === "offline") {
      if (state.me && data.userId === state.me.userId) return; // another tab of ours closed
      state.members.delete(data.userId);
      state.typing.delete(data.userId);
      renderTyping();
    } else {
      upsertMember(data.userId, {
        role: typeof data.role === "string" ? data.role : undefined,
        kind: data.kind === "agent" ? "agent" : data.kind === "human" ? "human" : undefined,
        // presence says "online"; an agent's own status comes from agent_status
        status: data.kind === "agent" ? undefined : "online",
      });
    }
    renderMembers();
  }

  function onAgentStatus(data) {
    if (typeof data.userId !== "string") return;
    const progress = typeof data.progress === "number" && Number.isFinite(data.progress)
      ? Math.max(0, Math.min(100, Math.round(data.progress)))
      : null;
    upsertMember(data.userId, {
      kind: "agent",
      status: AGENT_STATUSES.includes(data.status) ? data.status : "idle",
      currentTask: typeof data.currentTask === "string" && data.currentTask ? data.currentTask : null,
      progress,
    });
    renderMembers();
  }

  function onTyping(data) {
    if (typeof data.userId !== "string") return;
    if (state.me && data.userId === state.me.userId) return;
    if ((data.room || DEFAULT_ROOM) !== ROOM) return;
    state.typing.set(data.userId, now() + TYPING_SHOW_FOR_MS);
    renderTyping();
  }

  function onError(data) {
    const code = typeof data.code === "string" ? data.code : "ERROR";
    const text = typeof data.message === "string" && data.message.trim() ? data.message.trim() : "";
    if (state.phase === "authenticating" || state.phase === "connecting") {
      authFailed(code, text);
      return;
    }
    switch (code) {
      case "RATE_LIMITED": {
        const wait = typeof data.retryAfter === "number" && data.retryAfter > 0 ? data.retryAfter : 1;
        state.rateLimitedUntil = now() + wait * 1000;
        restoreOutstanding(data);
        showRateLimit();
        break;
      }
      case "MESSAGE_TOO_LARGE":
        restoreOutstanding(data);
        showError(`Your message was not sent: ${text || "it is too long."} It is back in the box so you can shorten it.`);
        break;
      case "INVALID_MESSAGE":
        restoreOutstanding(data);
        showError(`The server did not accept that: ${text || "the message was not valid."}`);
        break;
      case "NOT_AUTHENTICATED":
        showError("The server forgot who you are; joining again…");
        closeSocket(1000, "joining again");
        onSocketClosed(null);
        break;
      case "UNKNOWN_TYPE":
        // A server that predates the history and typing extensions: do without them.
        if (state.historyRequests.length) {
          onHistory({ messages: [], hasMore: false });
        } else {
          state.typingUnsupported = true;
        }
        break;
      case "INTERNAL_ERROR":
        restoreOutstanding(data);
        showError("Something went wrong on the server. Your message is back in the box; try again in a moment.");
        break;
      default:
        showError(text ? `${text}` : `The server reported a problem (${code}).`);
        break;
    }
  }

  function authFailed(code, text) {
    state.phase = "stopped";
    closeSocket(1000, "could not join");
    clearTimers();
    setConnection("idle");
    const mentionsToken = /token/i.test(text);
    let message = text;
    if (!message) {
      message = code === "MISSING_USER_ID" ? "Type a user id to join." : "The server did not let you in. Check your details and try again.";
    }
    if (storage.load()) storage.save({ ...storage.load(), autoJoin: false });
    resetChat();
    if (mentionsToken) showJoin("", { focusToken: true, tokenProblem: message });
    else showJoin(message);
    if (!mentionsToken && /user id|name/i.test(text)) {
      ui.userId.setAttribute("aria-invalid", "true");
      ui.userId.focus();
      ui.userId.select();
    }
  }

  // ----------------------------------------------------------------- messages
  function normalise(type, data) {
    const id = typeof data.id === "number" ? data.id : typeof data.id === "string" && /^\d+$/.test(data.id) ? Number(data.id) : NaN;
    if (!Number.isSafeInteger(id) || id < 1) return null;
    const replyTo = typeof data.replyTo === "number" ? data.replyTo : typeof data.replyTo === "string" && /^\d+$/.test(data.replyTo) ? Number(data.replyTo) : null;
    const sender = typeof data.sender === "string" && data.sender ? data.sender : "unknown";
    let kind = type === "agent_response" ? (sender === "system" ? "system" : "agent") : "human";
    if (type === "agent_response" && (data.kind === "agent" || data.kind === "system")) kind = data.kind;
    return {
      id,
      type,
      kind,
      sender,
      role: typeof data.role === "string" ? data.role : "",
      text: typeof data.text === "string" ? data.text : String(data.text ?? ""),
      date: parseTime(data.timestamp),
      timestamp: typeof data.timestamp === "string" ? data.timestamp : "",
      mentions: Array.isArray(data.mentions) ? data.mentions.filter((m) => typeof m === "string") : [],
      isCommand: data.isCommand === true,
      replyTo: replyTo && replyTo > 0 ? replyTo : null,
      room: typeof data.room === "string" && data.room ? data.room : DEFAULT_ROOM,
      transport: typeof data.transport === "string" ? data.transport : null,
      clientId: typeof data.clientId === "string" ? data.clientId : null,
      el: null,
    };
  }

  function isMine(message) {
    return Boolean(state.me) && message.kind === "human" && message.sender === state.me.userId;
  }

  function mentionsMe(message) {
    if (!state.me || isMine(message)) return false;
    if (message.mentions.some((name) => sameName(name, state.me.userId))) return true;
    for (const match of message.text.matchAll(MENTION_RE)) {
      if (sameName(mentionName(match[1]), state.me.userId)) return true;
    }
    return false;
  }

  /**
   * Add one message frame. `source` is "live" (just sent), "missed" (replayed
   * after a reconnect) or "history" (an older page). Duplicates by id are dropped.
   */
  function onChatFrame(type, data, source) {
    const message = normalise(type, data);
    if (!message) return false;
    if (message.id > state.lastSeenId) state.lastSeenId = message.id;
    if (message.room !== ROOM) return false;
    if (state.messages.has(message.id)) return false;
    if (message.kind !== "system") state.namesSeen.set(message.sender, message.kind);
    confirmOutstanding(message);

    const fresh = source !== "history";
    const atBottom = isNearBottom();
    const wasEmpty = state.ids.length === 0;
    const appended = wasEmpty || message.id > state.ids[state.ids.length - 1];
    insertMessage(message);
    if (wasEmpty) renderLogTop();

    if (fresh) {
      if (state.typing.delete(message.sender)) renderTyping();
      const mine = isMine(message);
      if (!mine) {
        if (document.hidden) {
          state.unread += 1;
          markDivider(message);
          updateTitle();
        }
        if (source === "live") announceMessage(message);
      } else {
        clearDivider();
      }
      if (appended) {
        if (mine || atBottom) {
          scrollToBottom();
        } else {
          state.newBelow += 1;
          markDivider(message);
          renderNewBelow();
        }
      }
    }
    return true;
  }

  function confirmOutstanding(message) {
    if (!isMine(message) || !state.outstanding.size) return;
    if (message.clientId && state.outstanding.delete(message.clientId)) return;
    for (const [key, entry] of state.outstanding) {
      if (entry.text === message.text) {
        state.outstanding.delete(key);
        return;
      }
    }
  }

  function restoreOutstanding(data) {
    if (!state.outstanding.size) return;
    let key = typeof data.clientId === "string" && state.outstanding.has(data.clientId) ? data.clientId : null;
    if (!key) key = [...state.outstanding.keys()].pop();
    const entry = state.outstanding.get(key);
    state.outstanding.delete(key);
    ui.input.value = ui.input.value ? `${entry.text}\n${ui.input.value}` : entry.text;
    if (entry.replyTo && !state.replyTo) startReply(entry.replyTo, { focus: false });
    autosize();
  }

  function indexFor(id) {
    let low = 0;
    let high = state.ids.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (state.ids[mid] < id) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  function insertMessage(message) {
    const index = indexFor(message.id);
    message.el = renderMessage(message);
    const nextId = state.ids[index];
    const nextEl = nextId !== undefined ? state.messages.get(nextId).el : null;
    // Keep a "new messages" divider right before the message it belongs to.
    const before = nextEl && nextEl.previousElementSibling && nextEl.previousElementSibling === state.divider ? state.divider : nextEl;
    ui.messages.insertBefore(message.el, before);
    state.ids.splice(index, 0, message.id);
    state.messages.set(message.id, message);
    updateGrouping(message);
    if (nextId !== undefined) updateGrouping(state.messages.get(nextId));
    const waiting = state.pendingQuotes.get(message.id);
    if (waiting) {
      state.pendingQuotes.delete(message.id);
      for (const quote of waiting) fillQuote(quote, message);
    }
    // Tabbing into the list lands on the newest message unless the reader is in it.
    const reading = state.activeMessage && state.activeMessage.isConnected && state.activeMessage.contains(document.activeElement);
    if (!reading && message.id === state.ids[state.ids.length - 1]) setActiveMessage(message.el, { focus: false });
  }

  /** Consecutive messages from one sender within a few minutes share one header. */
  function updateGrouping(message) {
    const index = indexFor(message.id);
    const previous = index > 0 ? state.messages.get(state.ids[index - 1]) : null;
    const grouped = Boolean(
      previous &&
        previous.sender === message.sender &&
        previous.kind === message.kind &&
        !message.replyTo &&
        message.date &&
        previous.date &&
        message.date - previous.date < GROUP_WITHIN_MS &&
        message.date - previous.date >= 0 &&
        message.el.previousElementSibling === previous.el,
    );
    message.el.classList.toggle("grouped", grouped);
  }

  function renderMessage(message) {
    const mine = isMine(message);
    const classes = ["msg", `msg-${message.kind}`];
    if (mine) classes.push("msg-mine");
    if (mentionsMe(message)) classes.push("msg-mentions-me");
    if (message.isCommand) classes.push("msg-command");

    const header = el(
      "div",
      { className: "msg-head" },
      el("span", { className: "msg-sender", text: message.sender }),
      message.role && message.role !== "user" && message.kind !== "system" ? el("span", { className: "msg-role", text: message.role }) : null,
      message.kind !== "human" ? el("span", { className: `badge badge-${message.kind}`, text: message.kind === "agent" ? "agent" : "system" }) : null,
      mine ? el("span", { className: "badge badge-you", text: "you" }) : null,
      message.transport && message.transport !== "websocket" ? el("span", { className: "via", text: `via ${message.transport}` }) : null,
      message.date
        ? el("time", { className: "msg-time", datetime: message.timestamp, title: message.date.toLocaleString(), text: shortTime(message.date) })
        : null,
    );

    const body = el("div", { className: "msg-body" }, header);
    if (message.replyTo) body.append(renderQuote(message.replyTo));
    body.append(el("p", { className: "msg-text" }, renderText(message.text)));

    const reply = el("button", {
      type: "button",
      className: "msg-action",
      tabindex: "-1",
      "aria-label": `Reply to ${message.sender}`,
      text: "Reply",
    });
    reply.addEventListener("click", () => startReply(message));

    const li = el(
      "li",
      {
        className: classes.join(" "),
        id: `msg-${message.id}`,
        tabindex: "-1",
        dataset: { id: String(message.id) },
      },
      avatar(message.sender, message.kind),
      body,
      el("div", { className: "msg-actions" }, reply),
    );
    return li;
  }

  function renderQuote(targetId) {
    const quote = el("button", { type: "button", className: "quote", tabindex: "-1" });
    quote.dataset.target = String(targetId);
    quote.addEventListener("click", () => jumpTo(targetId));
    const target = state.messages.get(targetId);
    if (target) {
      fillQuote(quote, target);
    } else {
      quote.append(el("span", { className: "quote-sender", text: `Reply to message #${targetId}` }), el("span", { className: "quote-text", text: "Select to load it" }));
      quote.setAttribute("aria-label", `In reply to message ${targetId}; select to find it`);
      const waiting = state.pendingQuotes.get(targetId) || [];
      waiting.push(quote);
      state.pendingQuotes.set(targetId, waiting);
    }
    return quote;
  }

  function fillQuote(quote, target) {
    const snippet = clip(target.text, 140);
    quote.replaceChildren(el("span", { className: "quote-sender", text: target.sender }), el("span", { className: "quote-text", text: snippet }));
    quote.setAttribute("aria-label", `In reply to ${target.sender}: ${snippet}. Select to go to that message.`);
  }

  /** Message text as nodes: plain text, links (http/https only) and @mentions. */
  function renderText(text) {
    const parts = [];
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
    tokens.sort((a, b) => a.start - b.start);
    let at = 0;
    for (const token of tokens) {
      if (token.start < at) continue;
      if (token.start > at) parts.push(text.slice(at, token.start));
      const raw = text.slice(token.start, token.end);
      if (token.kind === "url") {
        let safe = null;
        try {
          const parsed = new URL(token.value);
          if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
        } catch {
          safe = null;
        }
        if (safe) {
          const link = el("a", { className: "msg-link", rel: "noopener noreferrer nofollow", target: "_blank", text: raw });
          link.href = safe;
          parts.push(link);
        } else {
          parts.push(raw);
        }
      } else {
        const self = state.me && sameName(token.value, state.me.userId);
        parts.push(el("span", { className: self ? "mention mention-me" : "mention", text: raw }));
      }
      at = token.end;
    }
    if (at < text.length) parts.push(text.slice(at));
    return parts;
  }

  function announceMessage(message) {
    const prefix = mentionsMe(message) ? `${message.sender} mentioned you` : message.sender;
    announce(`${prefix}: ${clip(message.text, 200)}`);
  }

  function announce(text) {
    const line = el("p", { text });
    ui.announcer.append(line);
    while (ui.announcer.childElementCount > 5) ui.announcer.firstElementChild.remove();
    setTimeout(() => line.remove(), 15000);
  }

  // ---------------------------------------------------------- history paging
  function requestHistory(before, kind = "older") {
    return new Promise((resolve) => {
      const data = { limit: HISTORY_PAGE };
      if (before) data.before = before;
      if (ROOM !== DEFAULT_ROOM) data.room = ROOM;
      if (!sendFrame("history", data)) {
        resolve(false);
        return;
      }
      state.historyRequests.push({ before, kind, resolve });
      renderLogTop();
    });
  }

  function onHistory(data) {
    const request = state.historyRequests.shift() || { before: null, kind: "latest", resolve: () => {} };
    const frames = Array.isArray(data.messages) ? data.messages : [];
    const fromBottom = ui.log.scrollHeight - ui.log.scrollTop;
    for (const frame of frames) {
      if (frame && (frame.type === "message" || frame.type === "agent_response") && frame.data) {
        onChatFrame(frame.type, frame.data, "history");
      }
    }
    if (request.kind !== "latest") state.hasMore = data.hasMore === true;
    if (request.kind === "initial") scrollToBottom();
    else if (request.kind === "older") ui.log.scrollTop = ui.log.scrollHeight - fromBottom;
    renderLogTop();
    request.resolve(true);
    // A short first page may not fill the screen; keep paging until it does.
    if (state.hasMore && ui.log.scrollHeight <= ui.log.clientHeight + LOAD_OLDER_WITHIN_PX) loadOlder();
  }

  function loadOlder() {
    if (state.phase !== "ready" || !state.hasMore) return Promise.resolve(false);
    const pending = state.historyRequests.find((request) => request.kind === "older");
    if (pending) return pending.promise || Promise.resolve(false);
    const oldest = state.ids[0];
    if (!oldest) return Promise.resolve(false);
    const promise = requestHistory(oldest, "older");
    const request = state.historyRequests[state.historyRequests.length - 1];
    if (request) request.promise = promise;
    return promise;
  }

  function renderLogTop() {
    const loading = state.historyRequests.length > 0;
    const ready = state.phase === "ready";
    ui.loadOlder.hidden = loading || !state.hasMore || !ready || state.ids.length === 0;
    let text = "";
    if (loading) text = "Loading messages…";
    else if (!state.hasMore) text = state.ids.length ? `This is the start of #${ROOM}.` : `No messages in #${ROOM} yet. Say hello!`;
    if (ui.logTopText.textContent !== text) ui.logTopText.textContent = text;
  }

  async function jumpTo(id) {
    let guard = 0;
    while (!state.messages.has(id) && state.hasMore && state.ids.length && state.ids[0] > id && guard < 40) {
      guard += 1;
      const loaded = await loadOlder();
      if (!loaded) break;
    }
    const target = state.messages.get(id);
    if (!target) {
      showError("That message is no longer available.");
      return;
    }
    target.el.scrollIntoView({ block: "center", behavior: prefersReducedMotion() ? "auto" : "smooth" });
    setActiveMessage(target.el, { focus: true });
    target.el.classList.remove("flash");
    void target.el.offsetWidth; // restart the highlight animation
    target.el.classList.add("flash");
  }

  // -------------------------------------------------------- scrolling, unread
  function isNearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    ui.log.scrollTop = ui.log.scrollHeight;
    state.newBelow = 0;
    renderNewBelow();
  }

  function renderNewBelow() {
    const count = state.newBelow;
    ui.jumpNew.hidden = count === 0;
    ui.jumpNew.textContent = count === 1 ? "1 new message ↓" : `${count} new messages ↓`;
  }

  function markDivider(message) {
    if (state.divider && state.divider.isConnected) return;
    state.divider = el("li", { className: "divider", role: "separator", "aria-label": "New messages" }, el("span", { text: "New messages" }));
    ui.messages.insertBefore(state.divider, message.el);
  }

  function clearDivider() {
    if (state.divider) state.divider.remove();
    state.divider = null;
  }

  function onLogScroll() {
    if (isNearBottom() && state.newBelow) {
      state.newBelow = 0;
      renderNewBelow();
    }
    if (ui.log.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
  }

  function updateTitle() {
    const title = state.unread > 0 ? `(${state.unread}) ${baseTitle}` : baseTitle;
    if (document.title !== title) document.title = title;
  }

  function onVisibilityChange() {
    if (!document.hidden) {
      state.unread = 0;
      updateTitle();
      if (state.phase === "waiting") reconnectNow();
    }
  }

  // ---------------------------------------------------------- message focus
  function messageItems() {
    return [...ui.messages.querySelectorAll("li.msg")];
  }

  function setActiveMessage(li, { focus }) {
    if (state.activeMessage && state.activeMessage !== li) {
      state.activeMessage.tabIndex = -1;
      for (const button of state.activeMessage.querySelectorAll("button")) button.tabIndex = -1;
    }
    state.activeMessage = li;
    li.tabIndex = 0;
    for (const button of li.querySelectorAll("button")) button.tabIndex = 0;
    if (focus) li.focus({ preventScroll: false });
  }

  function onMessagesKeydown(event) {
    const li = event.target.closest && event.target.closest("li.msg");
    if (!li) return;
    if (event.target !== li) {
      if (event.key === "Escape") {
        li.focus();
        event.preventDefault();
      }
      return;
    }
    const items = messageItems();
    const index = items.indexOf(li);
    let next = null;
    switch (event.key) {
      case "ArrowUp":
        next = items[index - 1];
        if (!next) loadOlder();
        break;
      case "ArrowDown":
        next = items[index + 1];
        break;
      case "Home":
        next = items[0];
        break;
      case "End":
        next = items[items.length - 1];
        break;
      case "r":
      case "R": {
        const message = state.messages.get(Number(li.dataset.id));
        if (message) startReply(message);
        event.preventDefault();
        return;
      }
      case "Escape":
        ui.input.focus();
        event.preventDefault();
        return;
      default:
        return;
    }
    event.preventDefault();
    if (next) {
      setActiveMessage(next, { focus: true });
      next.scrollIntoView({ block: "nearest" });
    }
  }

  function onMessagesFocusIn(event) {
    const li = event.target.closest && event.target.closest("li.msg");
    if (li && li !== state.activeMessage) setActiveMessage(li, { focus: false });
  }

  // -------------------------------------------------------------- composing
  function autosize() {
    ui.input.style.height = "auto";
    const max = Math.max(120, Math.round(window.innerHeight * 0.3));
    ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, max)}px`;
  }

  function startReply(message, { focus = true } = {}) {
    state.replyTo = { id: message.id, sender: message.sender, text: message.text };
    ui.replySender.textContent = message.sender;
    ui.replyText.textContent = clip(message.text, 120);
    ui.replyPreview.hidden = false;
    if (focus) ui.input.focus();
  }

  function cancelReply() {
    state.replyTo = null;
    ui.replyPreview.hidden = true;
    ui.replySender.textContent = "";
    ui.replyText.textContent = "";
  }

  function sendMessage() {
    const text = ui.input.value;
    if (!text.trim()) {
      ui.input.focus();
      return;
    }
    if (state.phase !== "ready") {
      showError("You are not connected right now. Your message stays in the box; send it once the chat is connected again.");
      return;
    }
    if (now() < state.rateLimitedUntil) {
      showRateLimit();
      return;
    }
    const clientId = newClientId();
    const data = { text, id: clientId };
    if (state.replyTo) data.replyTo = state.replyTo.id;
    if (ROOM !== DEFAULT_ROOM) data.room = ROOM;
    if (!sendFrame("message", data)) {
      showError("The message could not be sent because the connection just dropped. It stays in the box.");
      return;
    }
    state.outstanding.set(clientId, { text, replyTo: state.replyTo, at: now() });
    ui.input.value = "";
    autosize();
    cancelReply();
    closeCompletion();
    clearDivider();
    if (ui.errorLine.dataset.kind !== "rate") hideError();
    // Typing again right after sending shows again soon, but no sooner than
    // servers relay typing (about once a second per connection).
    state.lastTypingSent = Math.min(state.lastTypingSent, now() - TYPING_SEND_EVERY_MS + TYPING_AFTER_SEND_MS);
    scrollToBottom();
  }

  function onComposerKeydown(event) {
    if (state.completion && handleCompletionKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      sendMessage();
    } else if (event.key === "Escape") {
      if (state.replyTo) {
        cancelReply();
        event.preventDefault();
      } else if (!ui.errorLine.hidden) {
        hideError();
        event.preventDefault();
      }
    }
  }

  function onComposerInput() {
    autosize();
    updateCompletion();
    if (state.phase === "ready" && !state.typingUnsupported && ui.input.value.trim() && now() - state.lastTypingSent > TYPING_SEND_EVERY_MS) {
      state.lastTypingSent = now();
      sendFrame("typing", ROOM !== DEFAULT_ROOM ? { room: ROOM } : {});
    }
  }

  // ------------------------------------------------------- @ completion
  function completionCandidates(query) {
    const me = state.me ? state.me.userId : null;
    const kinds = new Map(state.namesSeen);
    for (const member of state.members.values()) kinds.set(member.id, member.kind);
    const lower = query.toLowerCase();
    const scored = [];
    for (const [name, kind] of kinds) {
      if (name === me || name === "system") continue;
      const index = name.toLowerCase().indexOf(lower);
      if (index < 0) continue;
      const online = state.members.has(name);
      scored.push({ name, kind, role: state.members.get(name)?.role || "", score: (index === 0 ? 0 : 2) + (online ? 0 : 1) });
    }
    scored.sort((a, b) => a.score - b.score || a.name.localeCompare(b.name));
    return scored.slice(0, 8);
  }

  function updateCompletion() {
    const caret = ui.input.selectionStart;
    if (caret !== ui.input.selectionEnd) return closeCompletion();
    const before = ui.input.value.slice(0, caret);
    const match = /(?:^|[^A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]{0,64})$/.exec(before);
    if (!match) return closeCompletion();
    const items = completionCandidates(match[1]);
    if (!items.length) return closeCompletion();
    const previous = state.completion;
    const keep = previous ? items.findIndex((item) => item.name === previous.items[previous.index]?.name) : -1;
    state.completion = { start: caret - match[1].length - 1, query: match[1], items, index: keep >= 0 ? keep : 0 };
    renderCompletion();
  }

  function renderCompletion() {
    const completion = state.completion;
    ui.completions.replaceChildren(
      ...completion.items.map((item, index) => {
        const option = el(
          "li",
          { role: "option", id: `completion-${index}`, className: "completion", "aria-selected": index === completion.index ? "true" : "false" },
          avatar(item.name, item.kind),
          el("span", { className: "completion-name", text: item.name }),
          item.kind === "agent" ? el("span", { className: "badge badge-agent", text: "agent" }) : null,
          item.role ? el("span", { className: "completion-role", text: item.role }) : null,
        );
        option.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep the focus in the message box
          acceptCompletion(index);
        });
        return option;
      }),
    );
    ui.completions.hidden = false;
    ui.input.setAttribute("aria-activedescendant", `completion-${completion.index}`);
  }

  function closeCompletion() {
    state.completion = null;
    ui.completions.hidden = true;
    ui.completions.replaceChildren();
    ui.input.removeAttribute("aria-activedescendant");
  }

  function acceptCompletion(index) {
    const completion = state.completion;
    if (!completion) return;
    const item = completion.items[index];
    const value = ui.input.value;
    const end = completion.start + 1 + completion.query.length;
    const after = value.slice(end);
    const insert = `@${item.name}${after.startsWith(" ") ? "" : " "}`;
    ui.input.value = value.slice(0, completion.start) + insert + after;
    const caret = completion.start + insert.length + (after.startsWith(" ") ? 1 : 0);
    ui.input.setSelectionRange(caret, caret);
    closeCompletion();
    autosize();
    ui.input.focus();
  }

  function handleCompletionKey(event) {
    const completion = state.completion;
    const count = completion.items.length;
    switch (event.key) {
      case "ArrowDown":
        completion.index = (completion.index + 1) % count;
        break;
      case "ArrowUp":
        completion.index = (completion.index - 1 + count) % count;
        break;
      case "Enter":
      case "Tab":
        if (event.shiftKey && event.key === "Enter") return false;
        event.preventDefault();
        acceptCompletion(completion.index);
        return true;
      case "Escape":
        event.preventDefault();
        closeCompletion();
        return true;
      default:
        return false;
    }
    event.preventDefault();
    renderCompletion();
    return true;
  }

  function mention(name) {
    const value = ui.input.value;
    const spacer = value && !/\s$/.test(value) ? " " : "";
    ui.input.value = `${value}${spacer}@${name} `;
    autosize();
    closeSidebar();
    ui.input.focus();
    ui.input.setSelectionRange(ui.input.value.length, ui.input.value.length);
  }

  // ------------------------------------------------------------ typing line
  function renderTyping() {
    clearTimeout(state.typingTimer);
    const at = now();
    for (const [name, until] of state.typing) if (until <= at) state.typing.delete(name);
    const names = [...state.typing.keys()];
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    if (ui.typing.textContent !== text) ui.typing.textContent = text;
    if (names.length) {
      const next = Math.min(...state.typing.values()) - at;
      state.typingTimer = setTimeout(renderTyping, Math.max(200, next));
    }
  }

  // ------------------------------------------------------------ error line
  function showError(text, kind = "error") {
    clearInterval(state.rateTimer);
    ui.errorLine.dataset.kind = kind;
    ui.errorText.textContent = text;
    ui.errorLine.hidden = false;
  }

  function hideError() {
    clearInterval(state.rateTimer);
    ui.errorLine.hidden = true;
    ui.errorText.textContent = "";
    delete ui.errorLine.dataset.kind;
  }

  function showRateLimit() {
    const update = () => {
      const left = state.rateLimitedUntil - now();
      if (left <= 0) {
        hideError();
        ui.send.disabled = state.phase !== "ready";
        return;
      }
      const text = `You are sending messages too fast. Wait ${seconds(left)} s, then send again; your message is still in the box.`;
      if (ui.errorText.textContent !== text) ui.errorText.textContent = text;
    };
    showError("", "rate");
    update();
    state.rateTimer = setInterval(update, 250);
  }

  // ---------------------------------------------------------------- sidebar
  function renderMembers() {
    const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".member")?.dataset.id;
    const members = [...state.members.values()];
    const me = state.me ? state.me.userId : null;
    const agents = members.filter((m) => m.kind === "agent").sort((a, b) => a.id.localeCompare(b.id));
    const humans = members
      .filter((m) => m.kind !== "agent")
      .sort((a, b) => (a.id === me ? -1 : b.id === me ? 1 : a.id.localeCompare(b.id)));
    ui.agentsList.replaceChildren(...agents.map(renderMember));
    ui.peopleList.replaceChildren(...humans.map(renderMember));
    ui.agentsCount.textContent = String(agents.length);
    ui.humansCount.textContent = String(humans.length);
    ui.peopleCount.textContent = String(members.length);
    ui.agentsEmpty.hidden = agents.length > 0;
    if (focusedId) {
      const again = [...ui.sidebar.querySelectorAll(".member")].find((node) => node.dataset.id === focusedId);
      again?.querySelector("button")?.focus();
    }
    if (state.completion) updateCompletion();
  }

  function renderMember(member) {
    const me = state.me && member.id === state.me.userId;
    const isAgent = member.kind === "agent";
    const nameLine = el(
      "span",
      { className: "member-name-line" },
      el("span", { className: "member-name", text: member.id }),
      isAgent ? el("span", { className: "badge badge-agent", text: "agent" }) : null,
      me ? el("span", { className: "badge badge-you", text: "you" }) : null,
    );
    const details = el("span", { className: "member-details" }, nameLine);
    if (member.role) details.append(el("span", { className: "member-role", text: member.role }));
    let label = `${member.id}${member.role ? `, ${member.role}` : ""}`;
    if (isAgent) {
      const status = AGENT_STATUSES.includes(member.status) ? member.status : "idle";
      const statusLine = el("span", { className: "member-status-line" }, el("span", { className: `status status-${status}`, text: status }));
      if (member.currentTask) statusLine.append(el("span", { className: "member-task", text: member.currentTask, title: member.currentTask }));
      details.append(statusLine);
      label += `, agent, ${status}`;
      if (member.currentTask) label += `: ${member.currentTask}`;
      if (member.progress !== null && member.progress !== undefined) {
        const fill = el("span", { className: "progress-fill" });
        fill.style.width = `${member.progress}%`;
        details.append(
          el(
            "span",
            { className: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(member.progress), "aria-label": `${member.id} progress` },
            el("span", { className: "progress-track" }, fill),
            el("span", { className: "progress-text", text: `${member.progress}%` }),
          ),
        );
        label += `, ${member.progress}% done`;
      }
    } else {
      label += me ? ", you" : ", online";
    }
    const button = el(
      "button",
      { type: "button", className: "member-button", title: me ? "This is you" : `Mention ${member.id}`, "aria-label": me ? label : `${label}. Mention ${member.id}` },
      avatar(member.id, isAgent ? "agent" : "human"),
      details,
      el("span", { className: "presence-dot", "aria-hidden": "true" }),
    );
    if (me) button.disabled = true;
    else button.addEventListener("click", () => mention(member.id));
    return el("li", { className: `member member-${isAgent ? "agent" : "human"}`, dataset: { id: member.id, status: member.status || "" } }, button);
  }

  function openSidebar() {
    ui.sidebar.classList.add("open");
    ui.peopleToggle.setAttribute("aria-expanded", "true");
    ui.sidebarClose.focus();
  }

  function closeSidebar() {
    if (!ui.sidebar.classList.contains("open")) return;
    ui.sidebar.classList.remove("open");
    ui.peopleToggle.setAttribute("aria-expanded", "false");
  }

  // ------------------------------------------------------------------ start
  function wire() {
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
    ui.leave.addEventListener("click", leave);
    ui.retryNow.addEventListener("click", reconnectNow);
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      sendMessage();
    });
    ui.input.addEventListener("keydown", onComposerKeydown);
    ui.input.addEventListener("input", onComposerInput);
    ui.input.addEventListener("click", updateCompletion);
    ui.input.addEventListener("blur", () => setTimeout(closeCompletion, 150));
    ui.replyCancel.addEventListener("click", () => {
      cancelReply();
      ui.input.focus();
    });
    ui.errorDismiss.addEventListener("click", () => {
      hideError();
      ui.input.focus();
    });
    ui.jumpNew.addEventListener("click", () => {
      scrollToBottom();
      ui.input.focus();
    });
    ui.loadOlder.addEventListener("click", () => loadOlder());
    ui.log.addEventListener("scroll", onLogScroll, { passive: true });
    ui.messages.addEventListener("keydown", onMessagesKeydown);
    ui.messages.addEventListener("focusin", onMessagesFocusIn);
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
    document.addEventListener("visibilitychange", onVisibilityChange);
    window.addEventListener("online", reconnectNow);
    window.addEventListener("offline", () => {
      if (state.phase === "waiting") setConnection("waiting");
    });
    window.addEventListener("resize", autosize);
    // Page-side hooks for the browser tests and for people debugging in the console.
    window.chatbus = Object.freeze({
      state: () => ({
        phase: state.phase,
        userId: state.me ? state.me.userId : null,
        lastSeenId: state.lastSeenId,
        attempt: state.attempt,
        delays: [...state.delays],
        shown: [...state.ids],
        hasMore: state.hasMore,
      }),
    });
  }

  function boot() {
    wire();
    const saved = fillJoinForm();
    if (saved && saved.autoJoin && typeof saved.userId === "string" && NAME_RE.test(saved.userId)) {
      state.join = { userId: saved.userId, role: saved.role || "user", token: saved.token || "", remember: true };
      showJoin("");
      ui.joinButton.disabled = true;
      ui.joinButton.textContent = "Joining…";
      startSession();
      return;
    }
    showJoin("");
  }

  boot();
})();
