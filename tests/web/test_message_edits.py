"""Editing messages on the chat page, in a real Chromium against a real chatbus.

Your own messages have an Edit button (and E on the message, and Up arrow in
the empty message box for your last one); Enter saves, Escape cancels. Everyone
sees the new text in place with "(edited)", who and when, mentions found
again and still shown as text. A refusal of the server (FORBIDDEN, NOT_FOUND)
is shown next to the edit, and the text typed stays.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_id, message_items, running_hub, screenshot, send, wait_until

EDITOR = "Edit your message"


def test_you_edit_your_message_and_everyone_sees_it_edited(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "@bob deploy to stagin")
    mine = message_items(alice, "@bob deploy to stagin")
    expect(mine).to_have_count(1)
    expect(message_items(bob, "@bob deploy to stagin")).to_have_count(1)
    # Only the sender is offered the edit.
    expect(message_items(bob).get_by_role("button", name=EDITOR)).to_have_count(0)

    # The Edit button opens the text in place; Escape leaves it as it was.
    mine.hover()
    mine.get_by_role("button", name=EDITOR).click()
    editor = alice.get_by_role("textbox", name=EDITOR)
    expect(editor).to_be_focused()
    expect(editor).to_have_value("@bob deploy to stagin")
    editor.fill("something else")
    editor.press("Escape")
    expect(editor).to_have_count(0)
    expect(mine).to_be_focused()
    expect(mine.locator(".msg-edited")).to_have_count(0)

    # Up arrow in the empty box edits the last message; Enter saves.
    box = alice.get_by_label("Message", exact=True)
    box.focus()
    box.press("ArrowUp")
    expect(editor).to_be_focused()
    editor.fill("@bob deploy to staging")
    screenshot(alice, "editing-a-message")
    editor.press("Enter")
    expect(editor).to_have_count(0)
    expect(box).to_be_focused()

    for page in (alice, bob):
        edited = message_items(page, "@bob deploy to staging")
        expect(edited).to_have_count(1)
        expect(edited.locator(".msg-edited")).to_contain_text("(edited)")
        expect(edited.locator(".msg-edited")).to_have_attribute("title", re.compile(r"^Edited by alice on .*\d"))
        expect(edited.locator(".msg-edited")).to_contain_text(re.compile(r"by alice at \d"))  # read out
        expect(message_items(page, "@bob deploy to stagin")).to_have_count(0)
    # The mention found again in the new text: highlighted for bob as his own.
    expect(message_items(bob, "@bob deploy to staging").locator(".mention-me")).to_have_text("@bob")
    expect(message_items(bob, "@bob deploy to staging")).to_have_class(re.compile(r"\bmsg-mentions-me\b"))
    screenshot(bob, "message-edited")


def test_an_edit_with_markup_stays_text_and_e_edits_by_keyboard(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "harmless")
    mine = message_items(alice, "harmless")
    expect(mine).to_have_count(1)
    mine.focus()
    mine.press("e")
    editor = alice.get_by_role("textbox", name=EDITOR)
    expect(editor).to_be_focused()
    hostile = "<img src=x onerror=\"window.__pwned='edit'\"> @bob <b>bold</b> ok"
    editor.fill(hostile)
    editor.press("Enter")
    for page in (alice, bob):
        edited = message_items(page, hostile)
        expect(edited).to_have_count(1)
        expect(edited.locator(".mention")).to_have_text("@bob")
        assert page.locator("#messages img, #messages b").count() == 0
        assert page.evaluate("window.__pwned") is None
    # After saving from the message, the focus is back on it.
    expect(message_items(alice, hostile)).to_be_focused()


def test_a_refused_edit_is_shown_and_the_text_stays(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "alice's own words")
    target = message_id(bob, "alice's own words")
    # The page offers no Edit on someone else's message; a stale view might. Open the editor as it would.
    bob.evaluate(
        "async id => { const list = await import('/static/js/messages.js');"
        " const editing = await import('/static/js/editing.js'); editing.startEdit(list.shown.byId.get(id)); }",
        target,
    )
    editor = bob.get_by_role("textbox", name=EDITOR)
    expect(editor).to_be_focused()
    editor.fill("bob's words instead")
    editor.press("Enter")
    error = message_items(bob, "alice's own words").get_by_role("alert")
    expect(error).to_have_text(f"You cannot edit this message: Only alice (or a manager) may edit message {target}.")
    expect(editor).to_have_value("bob's words instead")
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(editor).to_be_editable()
    screenshot(bob, "edit-refused")
    for page in (alice, bob):
        expect(message_items(page, "alice's own words").locator(".msg-edited")).to_have_count(0)
    editor.press("Escape")
    expect(editor).to_have_count(0)


def test_editing_a_message_deleted_meanwhile_says_so(pages: Pages, server: ChatServer) -> None:
    hub = running_hub(server)
    alice_id = Identity("alice", "developer")

    async def chat(hub: Hub) -> None:
        await hub.receive(alice_id, "an old message of mine")
        for n in range(60):
            await hub.send(f"later news {n}", sender="system")

    server.call(chat(hub))
    alice = pages.join("alice", "developer")
    expect(message_items(alice, "later news 59")).to_have_count(1)
    # Scrolled back to the old message.
    old = message_items(alice, "an old message of mine")
    while not old.count():
        alice.locator("#log").evaluate("log => { log.scrollTop = 0; }")
        alice.wait_for_timeout(100)
    old.scroll_into_view_if_needed()

    # While the page is away, a manager deletes it; the replay on return brings only newer messages.
    server.stop()

    async def delete(hub: Hub) -> None:
        await hub.delete(Identity("meg", "manager"), 1)

    server.offline(delete)
    server.start()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    wait_until(alice, "() => !document.querySelector('#log-top-text').textContent.includes('Loading')")

    old.hover()
    old.get_by_role("button", name=EDITOR).click()
    editor = alice.get_by_role("textbox", name=EDITOR)
    editor.fill("an old message of mine, corrected")
    editor.press("Enter")
    expect(alice.get_by_role("alert").filter(has_text="no longer exists")).to_have_text(
        "This message no longer exists (it was deleted), so your edit was not saved. Your text is still here to copy."
    )
    expect(editor).to_have_value("an old message of mine, corrected")
    editor.press("Escape")
    gone = alice.locator("#msg-1")
    expect(gone.locator(".msg-text")).to_have_text("message deleted")
    expect(gone.get_by_role("button", name=EDITOR)).to_have_count(0)
