/*
 * The ways to choose files for the next message: the attach button (a file
 * picker), files dropped anywhere on the chat (with a hint while they are
 * dragged over it) and pictures pasted into it. What happens to them is
 * uploads.js.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { $ } from "./dom.js";
import { setIcon } from "./icons.js";
import { addFiles } from "./uploads.js";

const ui = {
  chat: $("chat-view"),
  attach: $("attach-button"),
  input: $("file-input"),
  dropHint: $("drop-hint"),
  box: $("composer-input"),
};

let dragDepth = 0;

function carriesFiles(event) {
  const types = event.dataTransfer && event.dataTransfer.types;
  return Boolean(types) && [...types].includes("Files");
}

function showDropHint(on) {
  ui.dropHint.hidden = !on;
  ui.chat.classList.toggle("dropping", on);
}

function wireDropping() {
  ui.chat.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    showDropHint(true);
  });
  ui.chat.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  ui.chat.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) showDropHint(false);
  });
  ui.chat.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    showDropHint(false);
    addFiles(event.dataTransfer.files);
    ui.box.focus();
  });
  // A file dropped anywhere else must not replace the chat with the file.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (carriesFiles(event)) event.preventDefault();
    });
  }
}

/** A picture (or file) pasted while the chat is shown is attached; the edit box of a message keeps its own paste, and text stays text. */
function onPaste(event) {
  if (ui.chat.hidden || !event.clipboardData) return;
  const target = event.target;
  if (target !== ui.box && target.closest && target.closest("input, textarea, [contenteditable]")) return;
  const data = event.clipboardData;
  // Text copied from a word processor often brings a picture of itself along: the text is what is meant.
  if ([...data.types].includes("text/plain") && data.getData("text/plain").trim()) return;
  const files = [...data.files];
  if (!files.length) {
    for (const entry of data.items || []) {
      const file = entry.kind === "file" ? entry.getAsFile() : null;
      if (file) files.push(file);
    }
  }
  if (!files.length) return;
  event.preventDefault();
  addFiles(files);
}

export function wireAttach() {
  setIcon(ui.attach, "attach");
  ui.attach.addEventListener("click", () => ui.input.click());
  ui.input.addEventListener("change", () => {
    addFiles(ui.input.files);
    ui.input.value = "";
    ui.box.focus();
  });
  wireDropping();
  document.addEventListener("paste", onPaste);
}
