"""Who wrote and from where, on the chat page, in a real Chromium against a real chatbus.

People of another transport carry that transport's id (``tg:12345``) and a
display name: the page shows the name, a badge for the transport, and keeps
two people of the same name apart (the id in the tooltip and read out, each
their own colour), in messages, in the list of people and in "is typing".
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_items, running_hub, screenshot, send

ALICE_TG = Identity("tg:12345", "user", "human", "Alice")
OTHER_ALICE_TG = Identity("tg:67890", "user", "human", "Alice")


def test_people_of_other_transports_show_by_name_with_a_badge(pages: Pages, server: ChatServer) -> None:
    hub = running_hub(server)
    page = pages.join("alice")
    bob = pages.join("bob")
    for person in (ALICE_TG, OTHER_ALICE_TG):
        server.call(hub.connect(person, "telegram"))
    server.call(hub.receive(ALICE_TG, "hello from the group", transport="telegram"))
    server.call(hub.receive(OTHER_ALICE_TG, "me too, from my phone", transport="telegram"))
    send(bob, "hi all")

    first, second = message_items(page, "hello from the group"), message_items(page, "me too, from my phone")
    for item, user_id in ((first, "tg:12345"), (second, "tg:67890")):
        sender = item.locator(".msg-sender")
        expect(sender).to_have_text("Alice")  # the name, not the id
        expect(sender).to_have_attribute("title", f"Alice ({user_id}, Telegram)")
        expect(item.locator(".badge-transport")).to_have_text("Telegram")
        # Two go by the same name: the id is shown beside it (and read out).
        expect(item.locator(".msg-sender-id")).to_have_text(f" ({user_id})")
        expect(item.locator(".msg-sender-id")).to_be_visible()
    # Each their own colour, though their names are the same.
    hues = [
        item.locator(".avatar").evaluate("node => node.style.getPropertyValue('--hue')") for item in (first, second)
    ]
    assert hues[0] != hues[1]
    # People of the web chat have no badge and no id to add.
    from_bob = message_items(page, "hi all")
    expect(from_bob.locator(".badge-transport")).to_have_count(0)
    expect(from_bob.locator(".msg-sender")).to_have_attribute("title", "bob")
    expect(from_bob.locator(".msg-sender-id")).to_have_count(0)
    # The reply button and announcements say the name too.
    expect(second.get_by_role("button", name="Reply to Alice")).to_have_count(1)
    expect(page.locator("#announcer")).to_contain_text("Alice: me too, from my phone")

    # The list of people: by name, with the badge, the id telling them apart.
    listed = page.locator("#people-list .member").filter(has=page.locator(".badge-transport"))
    expect(listed).to_have_count(2)
    expect(listed.locator(".badge-transport")).to_have_text(["Telegram", "Telegram"])
    expect(listed.locator(".member-name")).to_have_text(["Alice", "Alice"])
    expect(listed.locator(".member-id")).to_have_text(["tg:12345", "tg:67890"])
    names = sorted(listed.get_by_role("button").evaluate_all("nodes => nodes.map((n) => n.getAttribute('aria-label'))"))
    assert names[0].startswith("Alice (tg:12345, Telegram)") and names[1].startswith("Alice (tg:67890, Telegram)")
    screenshot(page, "people-from-telegram")

    # "is typing" says the name.
    server.run(lambda: hub.typing(ALICE_TG, "general", "telegram"))
    expect(page.locator("#typing")).to_have_text("Alice is typing…")

    # Going offline takes the right one off the list.
    server.call(hub.disconnect(OTHER_ALICE_TG, "telegram"))
    expect(listed).to_have_count(1)
    expect(listed.get_by_role("button")).to_have_attribute("aria-label", re.compile(r"^Alice \(tg:12345"))
