/*
 * The chatbus WebSocket protocol (version 1) as the web page speaks it:
 * building and reading frames, and one connection that signs in with `auth`,
 * keeps itself alive with ping/pong, reconnects with jittered exponential backoff
 * (from the hint in a restarting server's 1012 close), and resumes with
 * `lastSeenId` and the log's `epoch` so nothing is missed or shown twice, or,
 * when the server's log is not the one those ids came from (`missedReset`),
 * says so, so that whoever shows the chat starts again from the history.
 *
 * This module never touches a page (no document, no window, no storage), so it
 * runs as well in a Worker; tests/web/test_protocol_module.py drives it there.
 * What the page shows is decided by whoever listens to the connection's events.
 */

/** The room of clients that name none; older servers know only this one. */
export const DEFAULT_ROOM = "general";
/** The server's default limit for the frames it replays in `missed`. */
export const REPLAY_LIMIT = 500;
/** The states an agent reports in `agent_status`. */
export const AGENT_STATUSES = ["idle", "working", "stuck", "completed"];
export const PING_EVERY_MS = 25000;
export const PONG_WAIT_MS = 10000;
export const RECONNECT_FIRST_MS = 1000;
export const RECONNECT_MAX_MS = 30000;

/** One frame as the text to send: `{type, data}`, without `data` when there is none. */
export function encodeFrame(type, data) {
  return JSON.stringify(data === undefined ? { type } : { type, data });
}

/** A received frame as `{type, data}` (`data` always an object), or null when it is not a frame. */
export function decodeFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    console.warn("chatbus: ignored a frame that is not JSON");
    return null;
  }
  if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return null;
  return { type: frame.type, data: frame.data && typeof frame.data === "object" ? frame.data : {} };
}

/** A message id as the server assigns them (a positive safe integer, as a number or digits), or null. */
export function messageId(value) {
  const id = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(id) && id >= 1 ? id : null;
}

/** Whether an entry of `missed` or of a `history` page is a whole chat message frame. */
export function isChatFrame(frame) {
  return Boolean(frame && (frame.type === "message" || frame.type === "agent_response") && frame.data);
}

/** `data` with `room` added when the room is not the default one, so older servers see what they know. */
export function inRoom(room, data = {}) {
  if (room !== DEFAULT_ROOM) data.room = room;
  return data;
}

/**
 * The `auth` frame's data: who signs in, the rooms shown (so a resume replays
 * only those), and, after a drop, the last message id already seen with the
 * epoch of the log it belongs to.
 */
export function authData(credentials, lastSeenId, { epoch = null, rooms = [] } = {}) {
  const data = { userId: credentials.userId, role: credentials.role };
  if (credentials.token) data.token = credentials.token;
  if (lastSeenId > 0) {
    data.lastSeenId = lastSeenId;
    if (typeof epoch === "string" && epoch) data.epoch = epoch;
  }
  if (rooms.length) data.rooms = [...rooms];
  return data;
}

/**
 * Whether an `auth_response` says that the ids seen before are of another log
 * (a database reset or replaced): the server says so with `missedReset`, or it
 * names an epoch other than the one we had.
 */
export function logWasReset(data, previousEpoch) {
  if (data.missedReset === true) return true;
  return typeof previousEpoch === "string" && typeof data.epoch === "string" && data.epoch !== previousEpoch;
}

/** The least backoff base a server's hint can set, so that no hint makes clients retry in a tight loop. */
export const RECONNECT_LEAST_MS = 250;
/** The close code of a server that is restarting (1012, service restart); its reason says when to come back. */
export const SERVICE_RESTART = 1012;

/**
 * The wait before reconnect attempt `attempt` (1, 2, ...), with full jitter: a random time
 * between 0 and a cap that starts at `baseMs` and doubles with each attempt, up to
 * RECONNECT_MAX_MS. Clients that lost the same server then come back spread out, not
 * all at once.
 */
export function retryDelay(attempt, random = Math.random, baseMs = RECONNECT_FIRST_MS) {
  const cap = Math.min(RECONNECT_MAX_MS, baseMs * 2 ** (attempt - 1));
  return Math.round(random() * cap);
}

/**
 * The backoff base a restarting server asks for in its close reason
 * ("service restart; reconnect in 2 s"), in milliseconds, or null when the reason
 * names no time.
 */
export function restartHintMs(reason) {
  const found = typeof reason === "string" ? /\breconnect in (\d+(?:\.\d+)?) ?s\b/.exec(reason) : null;
  if (!found) return null;
  return Math.min(RECONNECT_MAX_MS, Math.max(RECONNECT_LEAST_MS, Number(found[1]) * 1000));
}

/**
 * One person's connection to the chat server, across drops and reconnects.
 *
 * Events (subscribe with `on(name, listener)`):
 * - `status` (kind): "connecting", "ready", "waiting" (for a reconnect) or "idle" (stopped);
 *   `restarting` says whether the server closed with 1012 (it is restarting) since we were last in;
 * - `frame` (type, data): every frame from the server but `auth_response`; a refused
 *   `auth_response` arrives as an `AUTH_FAILED` error;
 * - `joined` (data, {resumed, resumedFrom, missed, reset}): the server let us in; `resumed` when
 *   this follows a drop, `resumedFrom` the `lastSeenId` sent, `missed` the replayed frames or null,
 *   `reset` when the server's log is not the one seen before (what was shown must be reloaded);
 * - `closed` (): the socket closed, before the connection decides what comes next;
 * - `retry` (delay): a reconnect is due in `delay` milliseconds;
 * - `refused` (reason): the server closed the door (code 4000 or more) before we were ever in.
 */
export class Connection {
  #ws = null;
  #timers = { retry: 0, ping: 0, pong: 0 };
  #listeners = new Map();
  #pingEveryMs;
  #pongWaitMs;

  /**
   * `url`: the chat server's WebSocket address; `rooms`: the rooms shown, named in `auth`;
   * the timing options exist for tests that cannot wait 25 s.
   */
  constructor(url, { rooms = [], pingEveryMs = PING_EVERY_MS, pongWaitMs = PONG_WAIT_MS } = {}) {
    this.url = url;
    this.rooms = [...rooms];
    this.credentials = null; // {userId, role, token}
    this.phase = "idle"; // idle | connecting | authenticating | ready | waiting | stopped
    this.everConnected = false;
    this.attempt = 0;
    this.delays = []; // reconnect delays of the current outage, for people debugging and the tests
    this.retryAt = 0;
    this.lastSeenId = 0;
    this.epoch = null; // the server's name for the log `lastSeenId` belongs to
    this.restarting = false; // the server closed with 1012 and we are not back in yet
    this.retryBaseMs = RECONNECT_FIRST_MS; // the first backoff cap of this outage: the server's hint, if any
    this.#pingEveryMs = pingEveryMs;
    this.#pongWaitMs = pongWaitMs;
  }

  on(name, listener) {
    const listeners = this.#listeners.get(name) || [];
    listeners.push(listener);
    this.#listeners.set(name, listeners);
    return this;
  }

  /** Begin a new session as `credentials`, forgetting what the previous one had seen. */
  start(credentials) {
    this.credentials = credentials;
    this.#forget();
    this.attempt = 0;
    this.#connect();
  }

  /** End the session for good (until the next `start`): no reconnects. */
  stop(code = 1000, reason = "") {
    this.phase = "stopped";
    this.#closeSocket(code, reason);
    this.#clearTimers();
    this.#forget();
    this.#emit("status", "idle");
  }

  /** While waiting for a reconnect, try at once. */
  reconnectNow() {
    if (this.phase === "waiting") this.#connect();
  }

  /** Close the socket and carry on as if it had dropped: reconnect and resume. */
  drop(code, reason) {
    this.#closeSocket(code, reason);
    this.#closed(null);
  }

  /** Send one frame; false when there is no open socket to send it on. */
  send(type, data) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeFrame(type, data));
    return true;
  }

  #emit(name, ...args) {
    for (const listener of this.#listeners.get(name) || []) listener(...args);
  }

  #forget() {
    this.everConnected = false;
    this.lastSeenId = 0;
    this.epoch = null;
    this.#backToNormal();
  }

  #backToNormal() {
    this.restarting = false;
    this.retryBaseMs = RECONNECT_FIRST_MS;
  }

  #connect() {
    this.#clearTimers();
    this.#closeSocket(1000, "reconnecting");
    this.phase = "connecting";
    this.#emit("status", "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (ws === this.#ws) this.#authenticate();
    };
    ws.onmessage = (event) => {
      if (ws === this.#ws) this.#receive(event.data);
    };
    ws.onclose = (event) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#closed(event);
    };
    ws.onerror = () => {
      /* a close event always follows and is handled there */
    };
  }

  #authenticate() {
    this.phase = "authenticating";
    this.send("auth", authData(this.credentials, this.lastSeenId, { epoch: this.epoch, rooms: this.rooms }));
  }

  #receive(text) {
    this.#heard();
    const frame = decodeFrame(text);
    if (!frame) return;
    try {
      this.#dispatch(frame.type, frame.data);
    } catch (error) {
      console.error("chatbus: could not handle a frame", frame.type, error);
    }
  }

  #dispatch(type, data) {
    if (type === "auth_response") {
      this.#joined(data);
      return;
    }
    if (type === "message" || type === "agent_response") this.#saw(data);
    else if (type === "history" && Array.isArray(data.messages)) this.#sawAll(data.messages);
    this.#emit("frame", type, data);
  }

  #joined(data) {
    if (data.success === false) {
      this.#emit("frame", "error", { code: "AUTH_FAILED", message: data.message || data.error || "" });
      return;
    }
    const resumed = this.everConnected;
    const resumedFrom = this.lastSeenId;
    const reset = resumed && logWasReset(data, this.epoch);
    this.epoch = typeof data.epoch === "string" && data.epoch ? data.epoch : null;
    // Ids of another log say nothing about this one: count again from what this server sends.
    if (reset) this.lastSeenId = 0;
    this.phase = "ready";
    this.attempt = 0;
    this.delays = [];
    this.#backToNormal();
    this.everConnected = true;
    this.#clearTimers();
    this.#emit("status", "ready");
    this.#startKeepalive();
    const missed = Array.isArray(data.missed) ? data.missed : null;
    if (missed) this.#sawAll(missed);
    this.#emit("joined", data, { resumed, resumedFrom, missed, reset });
  }

  /** Remember the newest message id seen, wherever it came from, to resume after it. */
  #saw(data) {
    const id = messageId(data.id);
    if (id !== null && id > this.lastSeenId) this.lastSeenId = id;
  }

  #sawAll(frames) {
    for (const frame of frames) if (isChatFrame(frame)) this.#saw(frame.data);
  }

  #closed(event) {
    const wasJoining = this.phase === "authenticating" || this.phase === "connecting";
    this.#clearTimers();
    if (event && event.code === SERVICE_RESTART) {
      // Not lost: the server is restarting and says when it expects us back.
      this.restarting = true;
      this.retryBaseMs = restartHintMs(event.reason) ?? RECONNECT_FIRST_MS;
    }
    this.#emit("closed");
    if (this.phase === "stopped") return;
    if (!this.everConnected && wasJoining && event && event.code >= 4000) {
      // The server turned us away on purpose before we were in.
      this.stop();
      this.#emit("refused", event.reason);
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    this.phase = "waiting";
    this.attempt += 1;
    const delay = retryDelay(this.attempt, Math.random, this.retryBaseMs);
    this.delays.push(delay);
    this.retryAt = Date.now() + delay;
    this.#timers.retry = setTimeout(() => this.#connect(), delay);
    this.#emit("status", "waiting");
    this.#emit("retry", delay);
  }

  /** Any frame shows the connection is alive; a missing pong means it is not. */
  #heard() {
    clearTimeout(this.#timers.pong);
    this.#timers.pong = 0;
  }

  #startKeepalive() {
    clearInterval(this.#timers.ping);
    this.#timers.ping = setInterval(() => this.#ping(), this.#pingEveryMs);
  }

  #ping() {
    if (this.phase !== "ready") return;
    this.send("ping");
    clearTimeout(this.#timers.pong);
    this.#timers.pong = setTimeout(() => {
      console.warn("chatbus: no answer to ping; reconnecting");
      this.drop(4000, "no pong");
    }, this.#pongWaitMs);
  }

  #closeSocket(code, reason) {
    const ws = this.#ws;
    this.#ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  #clearTimers() {
    clearTimeout(this.#timers.retry);
    clearInterval(this.#timers.ping);
    clearTimeout(this.#timers.pong);
    this.#timers.retry = this.#timers.ping = this.#timers.pong = 0;
  }
}
