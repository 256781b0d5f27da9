/*
 * Files and pictures in messages: reading a delivered message's `attachments`
 * (only same-origin `/files/` addresses are taken), pictures shown inline as
 * thumbnails in a box of their own shape (so nothing jumps when they load)
 * that open full size in a dialog, and every other file as a card with its
 * name, kind, size and a download link (sounds and films with a player too).
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $, el } from "./dom.js";
import { icon } from "./icons.js";

/** Pictures the server serves inline (the rest are downloads). */
const PICTURE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** The largest box a thumbnail is drawn in, in CSS pixels; a phone shrinks it further. */
const THUMB_WIDTH = 320;
const THUMB_HEIGHT = 240;

const KIND_WORDS = [
  [/^application\/pdf$/, "PDF"],
  [/^text\/markdown$/, "Markdown"],
  [/^text\/csv$/, "CSV"],
  [/^text\//, "text"],
  [/^application\/json$/, "JSON"],
  [/^application\/(zip|x-zip-compressed)$/, "ZIP archive"],
  [/^image\//, "picture"],
  [/^audio\//, "audio"],
  [/^video\//, "video"],
];

// ----------------------------------------------------------------- reading
/** `value` when it is a path of this server under /files/ (no other site, no way out of /files/), else null. */
export function filesPath(value) {
  if (typeof value !== "string" || !value.startsWith("/files/") || /[\\\s]/.test(value)) return null;
  let parsed;
  try {
    parsed = new URL(value, location.origin);
  } catch {
    return null;
  }
  if (parsed.origin !== location.origin || !parsed.pathname.startsWith("/files/")) return null;
  return `${parsed.pathname}${parsed.search}`;
}

function dimension(value) {
  return Number.isSafeInteger(value) && value > 0 ? value : null;
}

/** One attachment of a delivered message as the page keeps it, or null when it cannot be shown safely. */
function readAttachment(value) {
  if (!value || typeof value !== "object") return null;
  const url = filesPath(value.url);
  if (!url) return null;
  const type = typeof value.contentType === "string" ? value.contentType.split(";")[0].trim().toLowerCase() : "";
  return {
    id: typeof value.id === "string" ? value.id : url,
    name: typeof value.name === "string" && value.name.trim() ? value.name : "file",
    size: Number.isSafeInteger(value.size) && value.size >= 0 ? value.size : null,
    contentType: type || "application/octet-stream",
    url,
    thumbnailUrl: filesPath(value.thumbnailUrl),
    width: dimension(value.width),
    height: dimension(value.height),
  };
}

/** A message frame's `attachments` (a list of file objects) as the page keeps them. */
export function readAttachments(value) {
  if (!Array.isArray(value)) return [];
  return value.map(readAttachment).filter(Boolean);
}

/** Whether `attachment` is shown as a picture (the server serves it inline). */
export function isPicture(attachment) {
  return PICTURE_TYPES.has(attachment.contentType);
}

// ----------------------------------------------------------------- words
/** A size as people read it: "512 bytes", "14 KB", "1.4 MB". */
export function humanSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value)} ${units[unit]}`;
}

/** What kind of file a content type is, in a word: "PDF", "text", "picture"… */
export function kindWord(contentType) {
  const found = KIND_WORDS.find(([pattern]) => pattern.test(contentType));
  return found ? found[1] : "file";
}

/** A message's files in a few words (for quotes and announcements): the name of one, or how many. */
export function attachmentsSummary(attachments) {
  if (!attachments || !attachments.length) return "";
  if (attachments.length === 1) return `${isPicture(attachments[0]) ? "picture" : "file"} ${attachments[0].name}`;
  return `${attachments.length} files`;
}

// ----------------------------------------------------------------- showing
/** The box a thumbnail takes before it loads: the picture's own shape, shrunk to fit. */
function pictureBox(attachment) {
  const { width, height } = attachment;
  if (!width || !height) return { width: null, height: null };
  const scale = Math.min(1, THUMB_WIDTH / width, THUMB_HEIGHT / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function pictureView(attachment) {
  const box = pictureBox(attachment);
  const image = el("img", { className: "att-picture-img", alt: attachment.name, width: box.width, height: box.height, loading: "lazy", decoding: "async" });
  if (!box.width) image.classList.add("att-picture-unsized");
  if (attachment.thumbnailUrl) {
    // No thumbnail (an older server, or one it could not make): the picture itself.
    image.addEventListener("error", () => image.setAttribute("src", attachment.url), { once: true });
  }
  image.setAttribute("src", attachment.thumbnailUrl || attachment.url);
  const size = attachment.size !== null ? `, ${humanSize(attachment.size)}` : "";
  const link = el(
    "a",
    { className: "att-picture", href: attachment.url, target: "_blank", rel: "noopener noreferrer", title: `${attachment.name}: open full size` },
    image,
    el("span", { className: "visually-hidden", text: ` (picture${size}; opens full size)` }),
  );
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    openPicture(attachment, link);
  });
  return link;
}

/** A player for a sound or a film (a voice note from Telegram, say); nothing is fetched until it is played. */
function player(attachment) {
  const kind = /^audio\//.test(attachment.contentType) ? "audio" : /^video\//.test(attachment.contentType) ? "video" : null;
  if (!kind) return null;
  const media = el(kind, { className: `att-player att-${kind}`, controls: true, preload: "none", "aria-label": `Play ${attachment.name}` });
  if (kind === "video" && attachment.width && attachment.height) {
    const box = pictureBox(attachment);
    media.width = box.width;
    media.height = box.height;
  }
  media.setAttribute("src", attachment.url);
  return media;
}

function fileCard(attachment) {
  const details = [kindWord(attachment.contentType), attachment.size !== null ? humanSize(attachment.size) : ""].filter(Boolean).join(" · ");
  const download = el(
    "a",
    { className: "att-download", href: attachment.url, download: attachment.name },
    "Download",
    el("span", { className: "visually-hidden", text: ` ${attachment.name} (${details})` }),
  );
  const card = el(
    "div",
    { className: "att-file" },
    icon("file"),
    el("span", { className: "att-file-text" }, el("span", { className: "att-file-name", title: attachment.name, text: attachment.name }), el("span", { className: "att-file-details", text: details })),
    download,
  );
  const media = player(attachment);
  return media ? el("div", { className: "att-media" }, card, media) : card;
}

/** The files of `message` as page nodes (pictures first, in a row), or null when it has none. */
export function attachmentsView(message) {
  const attachments = message.attachments || [];
  if (message.deleted || !attachments.length) return null;
  const pictures = attachments.filter(isPicture);
  const files = attachments.filter((attachment) => !isPicture(attachment));
  return el(
    "div",
    { className: "msg-attachments" },
    pictures.length ? el("div", { className: "att-pictures" }, pictures.map(pictureView)) : null,
    files.map(fileCard),
  );
}

// ----------------------------------------------------------------- full size
let dialogUi = null;
let returnFocus = null;

function pictureDialog() {
  if (dialogUi) return dialogUi;
  dialogUi = {
    dialog: $("image-dialog"),
    title: $("image-dialog-title"),
    picture: $("image-dialog-picture"),
    size: $("image-dialog-size"),
    open: $("image-dialog-open"),
    download: $("image-dialog-download"),
    close: $("image-dialog-close"),
  };
  return dialogUi;
}

/** Show `attachment` full size in the picture dialog; focus goes back to `from` when it closes. */
export function openPicture(attachment, from) {
  const ui = pictureDialog();
  ui.title.textContent = attachment.name;
  ui.picture.alt = attachment.name;
  if (attachment.width && attachment.height) {
    ui.picture.width = attachment.width;
    ui.picture.height = attachment.height;
  } else {
    ui.picture.removeAttribute("width");
    ui.picture.removeAttribute("height");
  }
  ui.picture.setAttribute("src", attachment.url);
  const shape = attachment.width && attachment.height ? `${attachment.width} × ${attachment.height} pixels` : "";
  ui.size.textContent = [attachment.size !== null ? humanSize(attachment.size) : "", shape].filter(Boolean).join(", ");
  ui.open.setAttribute("href", attachment.url);
  ui.download.setAttribute("href", attachment.url);
  ui.download.setAttribute("download", attachment.name);
  returnFocus = from || null;
  ui.dialog.showModal();
  ui.close.focus();
}

export function wireAttachments() {
  const ui = pictureDialog();
  ui.close.addEventListener("click", () => ui.dialog.close());
  // A click on the backdrop (outside the dialog's box) closes it too.
  ui.dialog.addEventListener("click", (event) => {
    if (event.target !== ui.dialog) return;
    const box = ui.dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) ui.dialog.close();
  });
  ui.dialog.addEventListener("close", () => {
    ui.picture.removeAttribute("src");
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
    returnFocus = null;
  });
}
