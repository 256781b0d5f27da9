"""Rooms on the chat page, in a real Chromium against a real chatbus.

The side panel lists the rooms (those the server names when you join, and any
room a message arrives in, with a count of what is new there) and marks the
one shown. Switching happens in place, the address follows (Back and Reload
keep it), the room's history is shown, and a reconnect resumes that room:
the page asks for it in ``auth.rooms`` and shows what it missed there only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, join, message_items, running_hub, screenshot, send, shown_texts

BOB = Identity("bob", "developer")
PHONE = {"width": 375, "height": 667, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def auth_frames(page: Any) -> list[dict[str, Any]]:
    """Collects the ``auth`` frames the page sends from now on."""
    sent: list[dict[str, Any]] = []

    def watch(socket: Any) -> None:
        def on_sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "auth":
                sent.append(frame["data"])

        socket.on("framesent", on_sent)

    page.on("websocket", watch)
    return sent


def test_rooms_are_listed_and_switching_keeps_history_and_resume(pages: Pages, server: ChatServer) -> None:
    hub = running_hub(server)

    async def before(hub: Hub) -> None:
        await hub.receive(BOB, "welcome")
        await hub.receive(BOB, "dev 1", room="dev")

    server.call(before(hub))
    alice = pages.open()
    sent = auth_frames(alice)
    join(alice, "alice")
    rooms = alice.get_by_role("region", name=re.compile("^Rooms"))
    links = rooms.get_by_role("link")
    expect(links).to_have_text(["#general", "#dev"])
    expect(links.first).to_have_attribute("aria-current", "page")
    assert shown_texts(alice) == ["welcome"]

    # A message in a room not listed adds it, with a count of what is new there.
    server.call(hub.receive(BOB, "ops started", room="ops"))
    server.call(hub.receive(BOB, "dev 2", room="dev"))
    expect(links).to_have_text(["#general", "#dev1", "#ops1"])
    expect(rooms.get_by_role("link", name="#ops, 1 new message")).to_be_visible()
    assert shown_texts(alice) == ["welcome"]
    screenshot(alice, "rooms-listed")

    # Switching: in place, the address follows, the room's history is shown.
    rooms.get_by_role("link", name=re.compile("^#dev")).click()
    expect(alice).to_have_url(re.compile(r"/\?room=dev$"))
    expect(alice.locator("#messages li.msg .msg-text")).to_have_text(["dev 1", "dev 2"])
    expect(rooms.get_by_role("link", name="#dev")).to_have_attribute("aria-current", "page")
    expect(links.first).not_to_have_attribute("aria-current", "page")
    expect(alice.locator("#room-name")).to_have_text("#dev")
    expect(alice).to_have_title("#dev · chatbus")
    expect(alice.get_by_label("Message", exact=True)).to_have_attribute("placeholder", "Message #dev")
    expect(alice.locator("#log-top-text")).to_have_text("This is the start of #dev.")
    assert alice.evaluate("window.chatbus.state().room") == "dev"
    send(alice, "hello dev")
    expect(message_items(alice, "hello dev")).to_have_count(1)
    stored, _ = server.call(hub.history("dev"))
    assert [message.text for message in stored] == ["dev 1", "dev 2", "hello dev"]

    # A reconnect resumes the room shown: what was missed there, and nothing of the others.
    server.stop()

    async def meanwhile(hub: Hub) -> None:
        await hub.receive(BOB, "missed in general")
        await hub.receive(BOB, "missed in dev", room="dev")

    server.offline(meanwhile)
    server.start()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(alice.locator("#messages li.msg .msg-text")).to_have_text(["dev 1", "dev 2", "hello dev", "missed in dev"])
    assert sent[0]["rooms"] == ["general"]
    assert sent[-1]["rooms"] == ["dev"] and sent[-1]["lastSeenId"] == 5

    # Back shows the room before, with what it missed meanwhile.
    alice.go_back()
    expect(alice).to_have_url(re.compile(r"/$"))
    expect(alice.locator("#messages li.msg .msg-text")).to_have_text(["welcome", "missed in general"])
    expect(links.first).to_have_attribute("aria-current", "page")

    # By keyboard: a room is a link; Enter switches and the focus stays on it.
    ops = rooms.get_by_role("link", name=re.compile("^#ops"))
    ops.focus()
    alice.keyboard.press("Enter")
    expect(alice.locator("#messages li.msg .msg-text")).to_have_text(["ops started"])
    expect(rooms.get_by_role("link", name="#ops")).to_be_focused()
    expect(rooms.get_by_role("link", name="#ops")).to_have_attribute("aria-current", "page")

    # Reload keeps the room.
    alice.reload()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready")
    expect(alice.locator("#messages li.msg .msg-text")).to_have_text(["ops started"])
    expect(alice.locator("#room-name")).to_have_text("#ops")


def test_switching_rooms_on_a_phone_closes_the_drawer(pages: Pages, server: ChatServer) -> None:
    server.call(running_hub(server).receive(BOB, "dev news", room="dev"))
    page = pages.open(**PHONE)
    join(page, "alice")
    page.get_by_role("button", name=re.compile("People")).tap()
    rooms = page.get_by_role("region", name=re.compile("^Rooms"))
    expect(rooms).to_be_in_viewport()
    rooms.get_by_role("link", name="#dev").tap()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    expect(page.locator("#messages li.msg .msg-text")).to_have_text(["dev news"])
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    expect(page.locator("#room-name")).to_have_text("#dev")
    screenshot(page, "room-switched-narrow")
