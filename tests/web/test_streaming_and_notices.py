"""An agent's answer being written, and notes for one person, on the chat page.

An answer sent with ``streaming: true`` shows a cursor while it grows by
``message_edited`` frames, and loses it with the one that ends it (no
"(edited)": that is how agents write). A ``notice`` (a /link code) is shown
to that person alone, as a note from the system, not as a message.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_items, running_hub, screenshot, send, shown_texts

WRITER = Identity("writer", "developer", "agent")


def test_an_answer_being_written_shows_a_cursor_until_it_ends(pages: Pages, server: ChatServer) -> None:
    hub = running_hub(server)
    server.call(hub.hire("writer", "developer"))
    alice = pages.join("alice", height=600)
    for n in range(15):
        send(alice, f"earlier {n}")
    expect(message_items(alice, "earlier 14")).to_have_count(1)
    answer = server.call(hub.send("The plan", sender="writer", streaming=True))
    item = alice.locator(f"#msg-{answer.id}")
    expect(item.locator(".msg-text")).to_have_text("The plan")
    expect(item.locator(".msg-cursor")).to_be_visible()
    expect(item).to_have_attribute("aria-busy", "true")
    expect(item).to_contain_text("(still being written)")

    long_text = "The plan: tests first,\n" + "\n".join(f"step {n}" for n in range(12))
    server.call(hub.edit(WRITER, answer.id, long_text, streaming=True))
    expect(item.locator(".msg-text")).to_have_text(long_text)
    expect(item.locator(".msg-cursor")).to_be_visible()
    # A reader at the bottom stays there while it grows.
    expect(item.locator(".msg-cursor")).to_be_in_viewport()
    screenshot(alice, "answer-being-written")

    server.call(hub.edit(WRITER, answer.id, long_text + "\nthen code."))
    expect(item.locator(".msg-cursor")).to_have_count(0)
    expect(item).not_to_have_attribute("aria-busy", "true")
    expect(item).not_to_contain_text("still being written")
    expect(item.locator(".msg-edited")).to_have_count(0)
    expect(item.locator(".msg-text")).to_have_text(long_text + "\nthen code.")
    expect(alice.locator("#announcer")).to_contain_text("writer finished writing: The plan")

    # A page that joins later shows it finished, without "(edited)".
    bob = pages.join("bob")
    later = bob.locator(f"#msg-{answer.id}")
    expect(later.locator(".msg-text")).to_have_text(long_text + "\nthen code.")
    expect(later.locator(".msg-cursor")).to_have_count(0)
    expect(later.locator(".msg-edited")).to_have_count(0)


def test_a_notice_is_a_private_note_from_the_system(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "/link")
    note = alice.locator("#messages .notice")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Only you can see this")
    expect(note.locator(".notice-text")).to_have_text(
        re.compile(r"^To post from another transport.s account as alice, send /link \S+")
    )
    expect(alice.locator("#announcer")).to_contain_text(
        "Note for you only: To post from another transport's account as alice"
    )
    # Not a message: not among the messages or their ids, and nobody else sees it.
    expect(message_items(alice)).to_have_count(1)
    assert shown_texts(alice) == ["/link"]
    assert alice.evaluate("window.chatbus.state().shown") == [1]
    expect(message_items(bob)).to_have_count(1)
    expect(bob.locator("#messages .notice")).to_have_count(0)
    screenshot(alice, "notice")

    # Messages after it come below it; a note about another room says which.
    send(bob, "carry on")
    expect(alice.locator("#messages > li").last).to_contain_text("carry on")
    server.run(lambda: running_hub(server).tell("alice", "Your export of #ops is ready.", room="ops"))
    about_ops = alice.locator("#messages .notice").last
    expect(about_ops).to_contain_text("about #ops")
    # Dismissing a note returns to the message box.
    about_ops.get_by_role("button", name="Dismiss this note").click()
    expect(alice.locator("#messages .notice")).to_have_count(1)
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()
