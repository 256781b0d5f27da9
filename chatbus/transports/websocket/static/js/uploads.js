/*
 * Sending files: the files chosen for the next message (attach.js) become
 * chips above the message box. Each one is uploaded at once (POST /files,
 * with the access token in token mode, else the user id) with a progress bar
 * and a button that cancels it; a file the server refuses says why in the
 * error line. The message box sends the ids of the uploaded files with the
 * next message (composer.js), waiting for uploads still under way.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { humanSize, isPicture, readAttachments } from "./attachments.js";
import { $, el } from "./dom.js";
import { icon } from "./icons.js";
import { isNearBottom, scrollToBottom } from "./scroll.js";
import { session } from "./session.js";
import { announce, showError } from "./status.js";

/** The server's default for how many files one message may carry, until it says otherwise. */
const DEFAULT_PER_MESSAGE = 10;
/** Uploads under way at once; the rest wait their turn (the server takes a few per address at a time). */
const AT_ONCE = 2;
/** Times a file is sent again when the server is busy with other uploads from this address (429). */
const BUSY_RETRIES = 5;

const ui = {
  tray: $("tray"),
  list: $("tray-list"),
  note: $("tray-note"),
  box: $("composer-input"),
};

/**
 * A file's name as the page shows it: a direction mark or control character in a local file's
 * name (the server refuses those) becomes "\ufffd", so "a\u202egnp.txt" cannot pass for "atxt.png"
 * nor turn the rest of the error line around it backwards.
 */
function shown(name) {
  return String(name).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "\ufffd");
}

/** The files chosen for the next message: {key, file, name (as shown), sent (as uploaded), size, state, attachment, xhr, problem, el, ...}. */
const items = [];
const limits = { perMessage: DEFAULT_PER_MESSAGE, fileBytes: 0 };
let nextKey = 1;
let waitingSend = null; // a send waiting for the uploads to finish

/** What the server says of its file limits when it says so (`files` of auth_response): per message, per file. */
export function useFileLimits(data) {
  const files = data && typeof data.files === "object" && data.files ? data.files : {};
  limits.perMessage = Number.isSafeInteger(files.maxPerMessage) && files.maxPerMessage > 0 ? files.maxPerMessage : DEFAULT_PER_MESSAGE;
  limits.fileBytes = Number.isSafeInteger(files.maxFileBytes) && files.maxFileBytes > 0 ? files.maxFileBytes : 0;
}

// ----------------------------------------------------------------- what the box asks
/** Whether any file is chosen for the next message. */
export function hasFiles() {
  return items.length > 0;
}

/** Whether a file is still being uploaded or waits its turn. */
export function uploading() {
  return items.some((item) => item.state === "uploading" || item.state === "queued");
}

/** Whether a chosen file could not be uploaded (it has to be removed or tried again first). */
export function uploadFailed() {
  return items.some((item) => item.state === "failed");
}

/** The uploaded files (as the server described them) for the next message. */
export function uploadedFiles() {
  return items.filter((item) => item.state === "done").map((item) => item.attachment);
}

/** Send with `send` once every upload is done (none failed); the tray says it is waiting. */
export function sendAfterUploads(send) {
  if (!waitingSend) announce("Your message goes out as soon as the files are uploaded.");
  waitingSend = send;
  renderNote();
}

/** The message went out: the files it carried leave the tray. */
export function sentFiles() {
  for (const item of items.filter((entry) => entry.state === "done")) drop(item);
  waitingSend = null;
  renderTray();
}

/** Files of a message the server refused, or that was lost in a drop: back in the tray. */
export function restoreFiles(attachments) {
  for (const attachment of attachments || []) {
    if (items.some((item) => item.attachment && item.attachment.id === attachment.id)) continue;
    const item = newItem(null, attachment.name, attachment.size);
    Object.assign(item, { state: "done", attachment });
    items.push(item);
    ui.list.append(renderItem(item));
  }
  renderTray();
}

/** Cancel every upload and forget every file (a new session). */
export function clearFiles() {
  for (const item of [...items]) drop(item);
  waitingSend = null;
  renderTray();
}

// ----------------------------------------------------------------- choosing files
function newItem(file, name, size) {
  return { key: nextKey++, file, name: shown(name || "file"), sent: name || "file", size: Number.isFinite(size) ? size : 0, state: "queued", busy: 0, timer: 0, loaded: 0, total: 0, xhr: null, attachment: null, problem: "", el: null };
}

/** Take `files` (a FileList or an array) for the next message, up to the server's limits, and upload them. */
export function addFiles(files) {
  const given = [...files].filter((file) => file instanceof Blob);
  if (!given.length) return;
  // The chips take room from the messages: whoever read the latest one still sees it.
  const atBottom = isNearBottom();
  const room = Math.max(0, limits.perMessage - items.length);
  const problems = [];
  if (given.length > room) {
    const left = given.length - room;
    problems.push(`One message takes at most ${limits.perMessage} files, so ${left} ${left === 1 ? "was" : "were"} left out; send them in another message.`);
  }
  let added = 0;
  for (const file of given.slice(0, room)) {
    const name = file.name || "pasted file";
    if (limits.fileBytes && file.size > limits.fileBytes) {
      problems.push(`“${shown(name)}” is ${humanSize(file.size)}, more than the ${humanSize(limits.fileBytes)} this chat takes.`);
      continue;
    }
    const item = newItem(file, name, file.size);
    items.push(item);
    ui.list.append(renderItem(item));
    added += 1;
  }
  pump();
  if (problems.length) showError(problems.join(" "));
  if (added) announce(`${added} file${added === 1 ? "" : "s"} attached; uploading.`);
  renderTray();
  if (atBottom) scrollToBottom();
}

/** Forget `item`, stopping its upload. */
function drop(item) {
  const index = items.indexOf(item);
  if (index >= 0) items.splice(index, 1);
  clearTimeout(item.timer);
  if (item.xhr) {
    const xhr = item.xhr;
    item.xhr = null;
    xhr.abort();
  }
  if (item.el) item.el.remove();
}

/** The reader removed `item` (or cancelled its upload): the focus goes to the next chip, else the box. */
function removeItem(item, words) {
  const index = items.indexOf(item);
  drop(item);
  announce(words);
  const next = items[index] || items[index - 1];
  const button = next && next.el ? next.el.querySelector("button") : null;
  (button || ui.box).focus();
  renderTray();
  settle();
  pump();
}

// ----------------------------------------------------------------- uploading
/** Start the next waiting uploads, a few at a time. */
function pump() {
  let running = items.filter((item) => item.state === "uploading").length;
  for (const item of items) {
    if (running >= AT_ONCE) break;
    if (item.state !== "queued" || item.timer) continue;
    upload(item);
    running += 1;
  }
}

function upload(item) {
  const xhr = new XMLHttpRequest();
  Object.assign(item, { xhr, state: "uploading", loaded: 0, total: item.size, problem: "" });
  xhr.open("POST", "/files");
  // Who uploads: the token in token mode, as at sign-in; the id where the chat needs no token.
  const token = session.join && session.join.token;
  if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
  const userId = session.me ? session.me.userId : session.join && session.join.userId;
  if (userId) xhr.setRequestHeader("X-Chatbus-User", userId);
  xhr.upload.addEventListener("progress", (event) => {
    if (item.xhr !== xhr) return;
    item.loaded = event.loaded;
    if (event.lengthComputable) item.total = event.total;
    renderProgress(item);
  });
  xhr.addEventListener("load", () => item.xhr === xhr && uploaded(item, xhr));
  xhr.addEventListener("error", () => item.xhr === xhr && failed(item, 0, null));
  const form = new FormData();
  form.append("file", item.file, item.sent);
  xhr.send(form);
  redraw(item);
}

function jsonOf(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function uploaded(item, xhr) {
  item.xhr = null;
  const body = jsonOf(xhr.responseText);
  if (xhr.status === 429 && item.busy < BUSY_RETRIES) {
    busy(item, xhr);
    return;
  }
  if (xhr.status !== 200 && xhr.status !== 201) {
    failed(item, xhr.status, body);
    return;
  }
  const [attachment] = readAttachments([body]);
  if (!attachment) {
    failed(item, -1, null);
    return;
  }
  Object.assign(item, { state: "done", attachment, name: shown(attachment.name), size: attachment.size ?? item.size });
  announce(`${item.name} is uploaded.`);
  redraw(item);
  settle();
  pump();
}

/** Why an upload failed, for the chip (a few words) and the error line (what happened and what to do). */
const PROBLEMS = {
  0: ["no connection", "the connection to the server failed. Check your network, then try again."],
  400: ["not a valid file", "the server could not take it as a valid file."],
  401: ["not signed in", "the server did not accept your sign-in. Leave, then join again with a valid access token."],
  403: ["not allowed", "the server does not let you upload files."],
  413: ["too big", "it is bigger than this chat takes."],
  415: ["type not taken", "this chat does not take files of this type."],
  429: ["server busy", "the server is busy with other uploads of yours. Try it again in a moment."],
  507: ["server full", "the server has no room for more files. Ask the chat's operator."],
};

/** The server is busy with other uploads from this address: wait its turn again, a few times. */
function busy(item, xhr) {
  item.xhr = null;
  item.busy += 1;
  const wait = Math.min(10, Math.max(1, Number(xhr.getResponseHeader("Retry-After")) || 1));
  Object.assign(item, { state: "queued", loaded: 0 });
  item.timer = setTimeout(() => {
    item.timer = 0;
    pump();
  }, wait * 1000);
  redraw(item);
}

function failed(item, status, body) {
  item.xhr = null;
  const said = body && body.error && typeof body.error.message === "string" ? body.error.message.trim() : "";
  const [short, long] = PROBLEMS[status] || ["failed", status > 0 ? `the server answered with an error (HTTP ${status}). Try again in a moment.` : "the server's answer was not understood."];
  Object.assign(item, { state: "failed", problem: short, retry: ![400, 413, 415].includes(status) });
  showError(`“${item.name}” was not uploaded: ${said || long}`);
  redraw(item);
  settle();
  pump();
}

/** An upload finished or was removed: a send that waited for it goes out now, unless one failed. */
function settle() {
  if (!waitingSend || uploading()) {
    renderNote();
    return;
  }
  const send = waitingSend;
  waitingSend = null;
  renderNote();
  if (!uploadFailed()) send();
}

// ----------------------------------------------------------------- the tray
function renderTray() {
  ui.tray.hidden = items.length === 0;
  ui.tray.classList.toggle("tray-many", items.length > 1);
  renderNote();
}

function renderNote() {
  const waiting = waitingSend && uploading();
  const text = waiting ? "Your message goes out as soon as the files are uploaded." : "";
  if (ui.note.textContent !== text) ui.note.textContent = text;
  ui.note.hidden = !text;
}

function detailText(item) {
  if (item.state === "uploading") {
    const total = item.total || item.size;
    const percent = total ? Math.min(100, Math.floor((item.loaded / total) * 100)) : 0;
    return `${percent}% of ${humanSize(total)}`;
  }
  if (item.state === "failed") return `Not uploaded: ${item.problem}`;
  if (item.state === "queued") return `Waiting to upload, ${humanSize(item.size)}`;
  return humanSize(item.size);
}

function renderProgress(item) {
  if (!item.el) return;
  const total = item.total || item.size;
  const bar = item.el.querySelector("progress");
  if (bar && total) bar.value = Math.min(100, (item.loaded / total) * 100);
  const detail = item.el.querySelector(".upload-detail");
  const text = detailText(item);
  if (detail && detail.textContent !== text) detail.textContent = text;
}

function chipButton(key, text, label, handler) {
  const button = el("button", { type: "button", className: `upload-button upload-${key}`, "aria-label": label, title: label, dataset: { key } }, text);
  button.addEventListener("click", handler);
  return button;
}

function chipButtons(item) {
  if (item.state === "uploading" || item.state === "queued") {
    return [chipButton("cancel", "×", `Cancel the upload of ${item.name}`, () => removeItem(item, `The upload of ${item.name} was cancelled.`))];
  }
  const buttons = [];
  if (item.state === "failed" && item.retry && item.file) buttons.push(chipButton("retry", "Retry", `Upload ${item.name} again`, () => retry(item)));
  buttons.push(chipButton("remove", "×", `Remove ${item.name}`, () => removeItem(item, `${item.name} was removed from your message.`)));
  return buttons;
}

function retry(item) {
  Object.assign(item, { state: "queued", busy: 0 });
  redraw(item);
  pump();
  const button = item.el.querySelector("button");
  if (button) button.focus();
}

function chipMark(item) {
  const attachment = item.attachment;
  if (attachment && isPicture(attachment) && (attachment.thumbnailUrl || attachment.url)) {
    const thumb = el("img", { className: "upload-thumb", alt: "", width: "32", height: "32" });
    thumb.setAttribute("src", attachment.thumbnailUrl || attachment.url);
    return thumb;
  }
  const picture = attachment ? isPicture(attachment) : item.file && /^image\//.test(item.file.type);
  return icon(picture ? "image" : item.state === "failed" ? "warning" : "file");
}

/** One chip: a mark (or the uploaded picture), name, progress or size, and its buttons. */
function renderItem(item) {
  const node = el("li", { className: "upload", dataset: { key: String(item.key) } });
  item.el = node;
  redraw(item);
  return node;
}

/** Draw `item`'s chip again for its state, keeping the focus inside it when it was there. */
function redraw(item) {
  const node = item.el;
  if (!node) return;
  const focused = node.contains(document.activeElement);
  node.dataset.state = item.state;
  const bar = item.state === "uploading" ? el("progress", { className: "upload-progress", max: "100", "aria-label": `Uploading ${item.name}` }) : null;
  node.replaceChildren(
    chipMark(item),
    el(
      "span",
      { className: "upload-text" },
      el("span", { className: "upload-name", title: item.name, text: item.name }),
      bar,
      el("span", { className: "upload-detail", text: detailText(item) }),
    ),
    ...chipButtons(item),
  );
  renderProgress(item);
  if (focused) node.querySelector("button").focus();
}

export function wireUploads() {
  renderTray();
}
