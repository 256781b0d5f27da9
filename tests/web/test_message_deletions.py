"""Deleting messages on the chat page, in a real Chromium against a real chatbus.

You delete your own message after a confirmation you can answer by keyboard
(a manager may delete anyone's); everyone then sees "message deleted" in its
place, live, in the history of a page that joins later, and in what a page
that was away is replayed.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_items, screenshot, send, shown_texts


def test_you_delete_your_message_after_confirming_by_keyboard(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "the staging password is hunter2")
    send(alice, "never mind")
    expect(message_items(bob)).to_have_count(2)
    expect(message_items(bob).get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)

    # From the message box, Shift+Tab reaches the newest message's actions, then the one above.
    box = alice.get_by_label("Message", exact=True)
    box.focus()
    box.press("Shift+Tab")
    expect(message_items(alice, "never mind").get_by_role("button", name="Reply to alice")).to_be_focused()
    alice.keyboard.press("Shift+Tab")
    alice.keyboard.press("ArrowUp")
    secret = message_items(alice, "the staging password is hunter2")
    expect(secret).to_be_focused()

    # Delete asks first; Escape keeps the message.
    alice.keyboard.press("Delete")
    dialog = alice.get_by_role("dialog", name="Delete your message?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("the staging password is hunter2")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    screenshot(alice, "delete-confirmation")
    alice.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(secret).to_be_focused()
    expect(message_items(bob, "the staging password is hunter2")).to_have_count(1)

    # Delete, then Enter on the confirmation's Delete button.
    alice.keyboard.press("Delete")
    expect(dialog).to_be_visible()
    alice.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    for page in (alice, bob):
        expect(page.locator("#messages li.msg .msg-text")).to_have_text(["message deleted", "never mind"])
        gone = page.locator("#msg-1")
        expect(gone).to_have_class(re.compile(r"\bmsg-deleted\b"))
        expect(gone.locator(".msg-tombstone")).to_have_attribute("title", re.compile(r"^Deleted by alice on "))
        expect(gone.get_by_role("button")).to_have_count(0)  # nothing to reply to, react to or edit
        assert "hunter2" not in (page.locator("#messages").text_content() or "")
    expect(alice.locator("#msg-1")).to_be_focused()
    screenshot(bob, "message-deleted")

    # A page that joins later sees the tombstone from the history, in its place.
    carol = pages.join("carol")
    expect(message_items(carol)).to_have_count(2)
    assert shown_texts(carol) == ["message deleted", "never mind"]


def test_a_manager_deletes_anyones_message(pages: Pages) -> None:
    bob = pages.join("bob")
    meg = pages.join("meg", "manager")
    send(bob, "an off-topic rant")
    rant = message_items(meg, "an off-topic rant")
    expect(rant).to_have_count(1)
    # A manager may delete it, but edits only their own.
    rant.hover()
    expect(rant.get_by_role("button", name="Edit your message")).to_have_count(0)
    rant.get_by_role("button", name="Delete bob's message").click()
    dialog = meg.get_by_role("dialog", name="Delete bob's message?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    for page in (bob, meg):
        expect(page.locator("#msg-1 .msg-tombstone")).to_have_attribute("title", re.compile(r"^Deleted by meg on "))
        expect(page.locator("#msg-1 .msg-text")).to_have_text("message deleted")


def test_a_message_deleted_while_you_were_away_is_replayed_deleted(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    send(alice, "before the break")
    expect(message_items(alice)).to_have_count(1)
    server.stop()

    async def meanwhile(hub: Hub) -> None:
        bob = Identity("bob")
        oops = await hub.receive(bob, "oops, wrong chat")
        await hub.receive(bob, "sorry about that")
        await hub.delete(bob, oops.id)

    server.offline(meanwhile)
    server.start()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(message_items(alice)).to_have_count(3)
    assert shown_texts(alice) == ["before the break", "message deleted", "sorry about that"]
    assert alice.evaluate("window.chatbus.state().shown") == [1, 2, 3]
