/*
 * Changing your own messages: editing one in place (its Edit button, E on the
 * message, or Up arrow in the empty message box for your last one; Enter
 * saves, Escape cancels) and deleting one after a confirmation (its Delete
 * button or the Delete key; a manager may delete anyone's). The server's
 * refusal (FORBIDDEN, NOT_FOUND, a text too long, a dropped connection) is
 * shown next to the edit it refuses, and the text typed stays.
 *
 * Safety rule for this module: text that came from the network is only ever put
 * on the page with textContent, text nodes or attribute properties, never as
 * HTML.
 */
import { requestChange } from "./changes.js";
import { focusComposer } from "./composer.js";
import { $, el, fitHeight } from "./dom.js";
import { applyDeleted, canEdit, isMine } from "./message-model.js";
import { refreshMessage } from "./message-view.js";
import { setActiveMessage, shown } from "./messages.js";
import { closePicker } from "./reactions.js";
import { isMe } from "./session.js";
import { showError } from "./status.js";
import { clip } from "./text.js";

const ui = {
  input: $("composer-input"),
  dialog: $("delete-dialog"),
  dialogTitle: $("delete-title"),
  dialogQuote: $("delete-quote"),
  confirm: $("delete-confirm"),
  cancel: $("delete-cancel"),
};

let editing = null; // {message, node, box, error, save, saving, fromComposer}
let deleting = null; // {message, returnTo}

// ------------------------------------------------------------ editing
function editorFor(message) {
  const box = el("textarea", { className: "msg-editor-box", id: `edit-box-${message.id}`, rows: "1", "aria-describedby": `edit-hint-${message.id} edit-error-${message.id}` });
  const error = el("p", { className: "msg-editor-error", id: `edit-error-${message.id}`, role: "alert" });
  const cancel = el("button", { type: "button", className: "ghost-button", text: "Cancel", dataset: { key: "edit-cancel" } });
  const save = el("button", { type: "button", className: "primary-button", text: "Save", dataset: { key: "edit-save" } });
  const node = el(
    "div",
    { className: "msg-editor" },
    el("label", { className: "visually-hidden", for: box.id, text: "Edit your message" }),
    box,
    error,
    el("div", { className: "msg-editor-bar" }, el("span", { className: "msg-editor-hint", id: `edit-hint-${message.id}`, text: "Enter saves, Shift+Enter starts a new line, Escape cancels." }), cancel, save),
  );
  box.addEventListener("keydown", onEditorKey);
  box.addEventListener("input", () => fitHeight(box));
  cancel.addEventListener("click", () => cancelEdit());
  save.addEventListener("click", () => saveEdit());
  return { node, box, error, save };
}

/**
 * Edit `message` in place. The page offers this on your own messages only;
 * the server has the last word (a stale view may offer what is no longer yours).
 */
export function startEdit(message, { fromComposer = false } = {}) {
  if (message.deleted || !message.el) return;
  if (editing && editing.message === message) {
    editing.box.focus();
    return;
  }
  cancelEdit({ restoreFocus: false });
  closePicker();
  const parts = editorFor(message);
  editing = { message, ...parts, saving: false, fromComposer };
  message.el.classList.add("editing");
  message.el.querySelector(".msg-content").after(parts.node);
  setActiveMessage(message.el, { focus: false });
  parts.box.value = message.text;
  fitHeight(parts.box);
  parts.box.focus();
  parts.box.setSelectionRange(parts.box.value.length, parts.box.value.length);
  message.el.scrollIntoView({ block: "nearest" });
}

/** Close the editor without saving; the focus goes back where the edit began unless `restoreFocus` is false. */
export function cancelEdit({ restoreFocus = true } = {}) {
  if (!editing) return;
  const { message, node, fromComposer } = editing;
  editing = null;
  node.remove();
  message.el.classList.remove("editing");
  if (!restoreFocus) return;
  if (fromComposer || !message.el.isConnected) focusComposer();
  else message.el.focus();
}

function showEditError(text) {
  editing.error.textContent = text;
  editing.box.setAttribute("aria-invalid", "true");
}

function setSaving(saving) {
  editing.saving = saving;
  editing.box.readOnly = saving;
  editing.save.textContent = saving ? "Saving…" : "Save";
}

function saveEdit() {
  if (!editing || editing.saving) return;
  const { message, box } = editing;
  const text = box.value;
  if (!text.trim()) {
    showEditError("A message cannot be empty. To remove it, delete it instead.");
    return;
  }
  if (text === message.text) {
    cancelEdit();
    return;
  }
  editing.error.textContent = "";
  box.removeAttribute("aria-invalid");
  const asked = editing;
  if (!requestChange("edit", { id: message.id, text }, (code, words) => editRefused(asked, code, words))) {
    showEditError("You are not connected right now. Your edit is kept here: save it once the chat is connected.");
    return;
  }
  setSaving(true);
}

/** What to tell the editor of `message` when the server refused the edit. */
function editRefusal(code, text) {
  if (code === "FORBIDDEN") return `You cannot edit this message: ${text || "it is not yours."}`;
  if (code === "NOT_FOUND") return "This message no longer exists (it was deleted), so your edit was not saved. Your text is still here to copy.";
  if (code === "DROPPED") return "The connection dropped before your edit was saved. It is kept here: save it again once the chat is connected.";
  if (code === "NO_ANSWER") return "The server did not answer. Your edit is kept here: try saving it again.";
  return `Your edit was not saved: ${text || "the server refused it."}`;
}

function editRefused(asked, code, text) {
  if (code === "NOT_FOUND") markGone(asked.message);
  if (editing !== asked) {
    showError(editRefusal(code, text));
    return;
  }
  setSaving(false);
  showEditError(editRefusal(code, text));
  editing.box.focus();
}

/** The server refused a change because the message is gone: show it as deleted. */
function markGone(message) {
  if (applyDeleted(message, {})) refreshMessage(message);
}

function onEditorKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    saveEdit();
  } else if (event.key === "Escape") {
    cancelEdit();
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
}

/** A `message_edited` arrived for `message`: when it is the edit being saved here, the editor closes. */
export function editArrived(message, data) {
  if (editing && editing.message === message && editing.saving && isMe(data.editedBy)) cancelEdit();
}

/** Up arrow in the empty message box: edit your newest message in this room. */
function editLast() {
  for (let index = shown.ids.length - 1; index >= 0; index -= 1) {
    const message = shown.byId.get(shown.ids[index]);
    if (canEdit(message)) {
      startEdit(message, { fromComposer: true });
      return true;
    }
  }
  return false;
}

function onComposerKey(event) {
  if (event.key !== "ArrowUp" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
  if (ui.input.value === "" && editLast()) event.preventDefault();
}

// ------------------------------------------------------------ deleting
/** Ask before deleting `message` (yours, or anyone's for a manager). */
export function confirmDelete(message) {
  if (message.deleted) return;
  closePicker();
  deleting = { message, returnTo: document.activeElement };
  ui.dialogTitle.textContent = isMine(message) ? "Delete your message?" : `Delete ${message.displayName}'s message?`;
  ui.dialogQuote.textContent = clip(message.text, 200);
  ui.dialog.showModal();
  ui.confirm.focus();
}

function deleteRefusal(code, text) {
  if (code === "FORBIDDEN") return `You cannot delete this message: ${text || "it is not yours."}`;
  if (code === "NOT_FOUND") return "That message was already deleted.";
  if (code === "DROPPED") return "The connection dropped before the message was deleted. Once the chat is connected, delete it again if it is still there.";
  return `The message was not deleted: ${text || "the server refused it."}`;
}

function deleteConfirmed() {
  if (!deleting) return;
  const { message } = deleting;
  deleting.returnTo = message.el;
  const sent = requestChange("delete", { id: message.id }, (code, text) => {
    if (code === "NOT_FOUND") markGone(message);
    showError(deleteRefusal(code, text));
  });
  if (!sent) showError("You are not connected right now. Delete the message again once the chat is connected.");
  ui.dialog.close();
}

function dialogClosed() {
  const returnTo = deleting && deleting.returnTo;
  deleting = null;
  if (returnTo && returnTo.isConnected) returnTo.focus();
  else focusComposer();
}

/** `message` was deleted: an edit of it cannot be saved, and there is nothing left to delete. */
export function messageGone(message) {
  if (editing && editing.message === message && !editing.saving) {
    showEditError("This message was deleted while you were editing it. Your text is still here to copy.");
  }
  if (deleting && deleting.message === message) ui.dialog.close();
}

/** Close the editor and the dialog (another room is shown, or the session ends). */
export function stopChanging() {
  cancelEdit({ restoreFocus: false });
  if (ui.dialog.open) ui.dialog.close();
}

export function wireEditing() {
  ui.input.addEventListener("keydown", onComposerKey);
  ui.confirm.addEventListener("click", deleteConfirmed);
  ui.cancel.addEventListener("click", () => ui.dialog.close());
  ui.dialog.addEventListener("close", dialogClosed);
}
