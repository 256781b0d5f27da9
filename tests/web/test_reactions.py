"""Reactions on the chat page, in a real Chromium against a real chatbus.

React picks from a few emoji and those already on the message; reactions
show as chips with counts that say who reacted; your own chip takes yours
back; other people's reactions arrive live; a page that joins later shows
them from the history.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_id, message_items, running_hub, screenshot, send

PARTY = "🎉"


def test_react_with_the_picker_and_take_it_back(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "shipped!")
    on_bob = message_items(bob, "shipped!")
    expect(on_bob).to_have_count(1)

    # The picker offers a few emoji; arrow keys move along it.
    on_bob.hover()
    react = on_bob.get_by_role("button", name="React to alice's message")
    react.click()
    expect(react).to_have_attribute("aria-expanded", "true")
    picker = bob.get_by_role("group", name="Pick a reaction")
    picks = picker.get_by_role("button")
    expect(picks).to_have_count(6)
    expect(picks.first).to_be_focused()
    for _ in range(3):
        bob.keyboard.press("ArrowRight")
    expect(picker.get_by_role("button", name=f"React with {PARTY}")).to_be_focused()
    screenshot(bob, "reaction-picker")
    bob.keyboard.press("Enter")
    expect(picker).to_have_count(0)
    expect(react).to_be_focused()

    # Both see the chip and its count; it says who reacted.
    for page, who in ((alice, "bob"), (bob, "You")):
        chip = message_items(page, "shipped!").get_by_role("button", name=re.compile(f"^{PARTY} 1"))
        expect(chip).to_have_accessible_name(f"{PARTY} 1: {who}")
        expect(chip).to_have_attribute("title", re.compile(f"^{who} reacted with {PARTY}"))
    expect(message_items(bob, "shipped!").locator(".reaction")).to_have_attribute("aria-pressed", "true")

    # Alice adds hers with the chip; bob takes his back with his.
    message_items(alice, "shipped!").locator(".reaction").click()
    for page, who in ((alice, "You and bob"), (bob, "You and alice")):
        expect(message_items(page, "shipped!").locator(".reaction")).to_have_accessible_name(f"{PARTY} 2: {who}")
    message_items(bob, "shipped!").locator(".reaction").click()
    for page, who, pressed in ((alice, "You", "true"), (bob, "alice", "false")):
        chip = message_items(page, "shipped!").locator(".reaction")
        expect(chip).to_have_accessible_name(f"{PARTY} 1: {who}")
        expect(chip).to_have_attribute("aria-pressed", pressed)
        expect(chip.locator(".reaction-count")).to_have_text("1")

    # Reactions from elsewhere arrive live, with the emoji people used.
    hub = running_hub(server)
    shipped = message_id(alice, "shipped!")
    server.call(hub.react(Identity("carol"), shipped, "+1"))
    server.call(hub.react(Identity("dave"), shipped, PARTY))
    chips = message_items(bob, "shipped!").locator(".reaction")
    expect(chips).to_have_text([f"{PARTY}2", "+11"])
    expect(chips.nth(1)).to_have_attribute("title", re.compile(r"^carol reacted with \+1"))
    screenshot(bob, "reactions")
    # The picker offers the ones already there too.
    on_bob.hover()
    react.click()
    expect(picker.get_by_role("button")).to_have_count(7)
    expect(picker.get_by_role("button", name="React with +1")).to_be_visible()
    bob.keyboard.press("Escape")
    expect(picker).to_have_count(0)
    expect(react).to_be_focused()

    # A page that joins later shows the reactions from the history.
    erin = pages.join("erin")
    later = message_items(erin, "shipped!").locator(".reaction")
    expect(later).to_have_count(2)
    expect(later.first).to_have_accessible_name(f"{PARTY} 2: alice and dave")
    expect(later.nth(1)).to_have_accessible_name("+1 1: carol")


def test_reactions_by_keyboard_cost_one_tab_stop(pages: Pages) -> None:
    alice = pages.join("alice")
    send(alice, "keyboard only")
    box = alice.get_by_label("Message", exact=True)
    box.focus()
    # Shift+Tab reaches the message's actions: one stop, arrows move along them.
    box.press("Shift+Tab")
    mine = message_items(alice, "keyboard only")
    expect(mine.get_by_role("button", name="Reply to alice")).to_be_focused()
    alice.keyboard.press("ArrowRight")
    react = mine.get_by_role("button", name="React to your message")
    expect(react).to_be_focused()
    alice.keyboard.press("Enter")
    alice.keyboard.press("Enter")  # the first emoji
    chip = mine.locator(".reaction")
    expect(chip).to_have_accessible_name("👍 1: You")
    # The actions remember the last one used; Shift+Tab from them reaches the chips.
    expect(react).to_be_focused()
    alice.keyboard.press("Shift+Tab")
    expect(chip).to_be_focused()
    alice.keyboard.press("Enter")  # takes it back
    expect(mine.locator(".reaction")).to_have_count(0)
    expect(mine).to_be_focused()
