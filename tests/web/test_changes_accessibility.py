"""Accessibility checks (axe) of what issue 11 adds to the chat page, light and dark.

Every new state at once: an edited message, a deleted one, reactions, an
answer being written, a person from Telegram, a note for one person, rooms
with new messages; then with the editor, the reaction picker and the delete
confirmation open.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_id, message_items, running_hub, screenshot, send
from .test_chat_page import _axe_violations as axe_violations

BOB = Identity("bob", "designer")
ALICE_TG = Identity("tg:12345", "user", "human", "Alice")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_new_states_pass_the_accessibility_checks(pages: Pages, server: ChatServer, scheme: str) -> None:
    hub = running_hub(server)
    server.call(hub.hire("writer", "developer"))
    alice = pages.join("alice", scheme=scheme)
    send(alice, "please review the draft")
    draft = message_id(alice, "please review the draft")

    async def others(hub: Hub) -> None:
        await hub.react(BOB, draft, "🎉")
        await hub.react(ALICE_TG, draft, "+1")
        oops = await hub.receive(BOB, "wrong window")
        await hub.delete(BOB, oops.id)
        await hub.receive(ALICE_TG, "looks good from here", transport="telegram")
        await hub.send("Reviewing it now", sender="writer", streaming=True)
        await hub.receive(BOB, "over here", room="dev")

    server.call(others(hub))
    server.run(lambda: hub.tell("alice", "Your link code is 123-456."))
    mine = message_items(alice, "please review the draft")
    mine.focus()
    mine.press("e")
    editor = alice.get_by_role("textbox", name="Edit your message")
    editor.fill("please review the second draft")
    editor.press("Enter")
    edited = message_items(alice, "please review the second draft")
    expect(edited.locator(".msg-edited")).to_be_visible()
    expect(alice.locator(".msg-tombstone")).to_have_count(1)
    expect(alice.locator(".msg-cursor")).to_have_count(1)
    expect(alice.locator(".notice")).to_have_count(1)
    expect(alice.locator(".room-unread")).to_have_text("1")
    expect(edited.locator(".reaction")).to_have_count(2)
    screenshot(alice, f"changes-{scheme}")
    assert axe_violations(alice) == []

    # With the editor open.
    edited.focus()
    edited.press("e")
    expect(editor).to_be_focused()
    assert axe_violations(alice) == []
    editor.press("Escape")

    # With the reaction picker open.
    edited.hover()
    edited.get_by_role("button", name="React to your message").click()
    expect(alice.get_by_role("group", name="Pick a reaction")).to_be_visible()
    assert axe_violations(alice) == []
    alice.keyboard.press("Escape")

    # With the delete confirmation open.
    edited.focus()
    edited.press("Delete")
    expect(alice.get_by_role("dialog")).to_be_visible()
    assert axe_violations(alice) == []
    alice.keyboard.press("Escape")
    expect(alice.get_by_role("dialog")).to_be_hidden()
