"""The web chat page in a real Chromium against a real chatbus server."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import (
    WAIT_MS,
    ChatServer,
    Pages,
    join,
    message_items,
    screenshot,
    send,
    shown_texts,
    wait_connected,
    wait_until,
)


def test_two_people_chat_with_each_other(pages: Pages) -> None:
    alice = pages.join("alice", "developer")
    bob = pages.join("bob", "designer")

    # Each sees the other in the list of people, with their role.
    expect(alice.locator("#people-list .member", has_text="bob")).to_contain_text("designer")
    expect(bob.locator("#people-list .member", has_text="alice")).to_contain_text("developer")

    send(alice, "Hello Bob, the mock-ups look great")
    received = message_items(bob, "Hello Bob, the mock-ups look great")
    expect(received).to_have_count(1)
    expect(received.locator(".msg-sender")).to_have_text("alice")
    expect(received.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    # The sender sees the message once too, marked as their own.
    expect(message_items(alice, "Hello Bob, the mock-ups look great")).to_have_count(1)
    expect(message_items(alice, "Hello Bob, the mock-ups look great").locator(".badge-you")).to_have_text("you")
    expect(alice.get_by_label("Message", exact=True)).to_have_value("")

    # Typing shows on the other side.
    bob.get_by_label("Message", exact=True).press_sequentially("thanks", delay=20)
    expect(alice.locator("#typing")).to_have_text("bob is typing…")

    # Shift+Enter makes a new line, Enter sends; a mention of the reader is stronger.
    box = bob.get_by_label("Message", exact=True)
    box.fill("")
    box.press_sequentially("Thanks @alice!")
    box.press("Shift+Enter")
    box.press_sequentially("Second line")
    box.press("Enter")
    reply = message_items(alice).filter(has_text="Second line")
    expect(reply).to_have_count(1)
    assert reply.locator(".msg-text").text_content() == "Thanks @alice!\nSecond line"
    expect(reply).to_have_class(re.compile(r"\bmsg-mentions-me\b"))
    expect(reply.locator(".mention-me")).to_have_text("@alice")
    expect(alice.locator("#typing")).to_have_text("")
    # For bob the same mention is highlighted, but not as his own.
    on_bob = message_items(bob).filter(has_text="Second line")
    expect(on_bob.locator(".mention")).to_have_text("@alice")
    expect(on_bob.locator(".mention-me")).to_have_count(0)

    # @team reaches everyone: it is marked for each reader but the sender.
    send(alice, "@team standup in 5")
    expect(message_items(bob, "@team standup in 5")).to_have_class(re.compile(r"\bmsg-mentions-me\b"))
    expect(message_items(bob, "@team standup in 5").locator(".mention-me")).to_have_text("@team")
    expect(message_items(alice, "@team standup in 5")).not_to_have_class(re.compile(r"\bmsg-mentions-me\b"))

    screenshot(alice, "chat-desktop-light")

    # When bob leaves, alice's list updates.
    bob.get_by_role("button", name="Leave").click()
    expect(alice.locator("#people-list .member", has_text="bob")).to_have_count(0)


def test_reply_shows_the_quoted_message_and_jumps_to_it(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    send(alice, "Which colour for the login button?")
    for n in range(12):
        send(alice, f"filler message {n}")
    expect(message_items(bob, "filler message 11")).to_have_count(1)

    # Bob replies with the Reply button of the question.
    question = message_items(bob, "Which colour for the login button?")
    question.hover()
    question.get_by_role("button", name="Reply to alice").click()
    expect(bob.locator("#reply-preview")).to_be_visible()
    expect(bob.locator("#reply-preview")).to_contain_text("Which colour for the login button?")
    send(bob, "Blue, like the logo")

    for page in (alice, bob):
        answer = message_items(page, "Blue, like the logo")
        expect(answer).to_have_count(1)
        quote = answer.locator(".quote")
        expect(quote.locator(".quote-sender")).to_have_text("alice")
        expect(quote.locator(".quote-text")).to_have_text("Which colour for the login button?")
    expect(bob.locator("#reply-preview")).to_be_hidden()

    # Clicking the quote brings the original into view and gives it focus.
    question_on_alice = message_items(alice, "Which colour for the login button?")
    alice.locator("#log").evaluate("log => { log.scrollTop = log.scrollHeight; }")
    message_items(alice, "Blue, like the logo").locator(".quote").click()
    expect(question_on_alice).to_be_focused()
    expect(question_on_alice).to_be_in_viewport()

    # A reply can be cancelled; the next message then quotes nothing.
    question.hover()
    question.get_by_role("button", name="Reply to alice").click()
    bob.get_by_role("button", name="Cancel the reply").click()
    expect(bob.locator("#reply-preview")).to_be_hidden()
    send(bob, "Never mind")
    expect(message_items(alice, "Never mind").locator(".quote")).to_have_count(0)

    # By keyboard: focus a message, press R, type, Enter.
    first = message_items(bob, "filler message 0")
    first.focus()
    first.press("ArrowDown")
    expect(message_items(bob, "filler message 1")).to_be_focused()
    message_items(bob, "filler message 1").press("r")
    expect(bob.get_by_label("Message", exact=True)).to_be_focused()
    expect(bob.locator("#reply-preview-text")).to_have_text("filler message 1")
    send(bob, "keyboard reply")
    expect(message_items(alice, "keyboard reply").locator(".quote-text")).to_have_text("filler message 1")


XSS_TEXTS = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<b>bold?</b> <i>italic?</i> <a href=\"javascript:window.__pwned='link'\">click me</a>",
    "</p><svg onload=\"window.__pwned='svg'\"></svg>",
    "[link](javascript:alert(1)) &lt;escaped&gt; &amp; @<img src=x onerror=\"window.__pwned='mention'\">",
]


def test_markup_in_messages_is_shown_as_text_and_never_runs(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice", role="<img src=x onerror=\"window.__pwned='role'\">")
    bob = pages.join("bob")
    for text in XSS_TEXTS:
        send(alice, text)
    expect(message_items(alice)).to_have_count(len(XSS_TEXTS))  # stored before the agent speaks
    # An agent's task and reply with markup go through other code paths.
    server.call(server.hub.hire("helper", "<b>agent</b>"))  # type: ignore[union-attr]
    server.call(server.hub.set_agent_status("helper", "working", "<img src=x onerror=\"window.__pwned='task'\">", 10))  # type: ignore[union-attr]
    server.call(server.hub.send("<script>window.__pwned='agent'</script>", sender="helper"))  # type: ignore[union-attr]

    expected = [*XSS_TEXTS, "<script>window.__pwned='agent'</script>"]
    for page in (alice, bob):
        expect(message_items(page)).to_have_count(len(expected))
        assert shown_texts(page) == expected
        expect(page.locator("#agents-list .member", has_text="helper")).to_contain_text("onerror")
        # No element was made from a message, a role or a task.
        assert page.locator("#messages img, #messages script, #messages svg, #messages b, #messages i").count() == 0
        assert page.locator("#sidebar img, #sidebar script, #sidebar b").count() == 0
        assert page.locator("#messages a").count() == 0
        assert page.evaluate("window.__pwned") is None
    expect(bob.locator("#people-list .member", has_text="alice")).to_contain_text("<img src=x onerror=")
    screenshot(bob, "markup-shown-as-text")


def test_links_open_only_for_web_addresses(pages: Pages) -> None:
    alice = pages.join("alice")
    send(alice, "see https://example.org/docs?page=2. and javascript:alert(1)")
    link = message_items(alice).locator("a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://example.org/docs?page=2")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(link).to_have_text("https://example.org/docs?page=2")


def test_page_reconnects_after_a_restart_and_shows_missed_messages_once(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    send(alice, "before the restart")
    expect(message_items(alice, "before the restart")).to_have_count(1)  # stored before the next one
    server.call(server.hub.send("system says hi", sender="system"))  # type: ignore[union-attr]
    expect(message_items(alice)).to_have_count(2)

    server.stop()
    expect(alice.locator("#connection")).to_have_attribute("data-state", re.compile("waiting|connecting"))
    expect(alice.locator("#connection-text")).to_contain_text(re.compile("Disconnected|Reconnecting"))

    async def meanwhile(hub: Hub) -> None:
        bob = Identity("bob", "tester")
        await hub.receive(bob, "sent while you were away 1")
        await hub.receive(bob, "sent while you were away 2", reply_to=1)
        await hub.send("the system noticed", sender="system")

    server.offline(meanwhile)
    server.start()

    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(message_items(alice)).to_have_count(5)
    assert shown_texts(alice) == [
        "before the restart",
        "system says hi",
        "sent while you were away 1",
        "sent while you were away 2",
        "the system noticed",
    ]
    expect(message_items(alice, "sent while you were away 2").locator(".quote-text")).to_have_text("before the restart")
    # Live messages flow again, still once each.
    send(alice, "after the restart")
    expect(message_items(alice, "after the restart")).to_have_count(1)
    expect(message_items(alice)).to_have_count(6)
    ids = alice.evaluate("window.chatbus.state().shown")
    assert ids == sorted(set(ids)) and len(ids) == 6

    # A second restart with nothing missed changes nothing.
    server.restart()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    send(alice, "after the second restart")
    expect(message_items(alice)).to_have_count(7)
    assert shown_texts(alice)[-2:] == ["after the restart", "after the second restart"]


def test_older_messages_load_when_scrolling_up(pages: Pages, server: ChatServer) -> None:
    async def chatter(hub: Hub) -> None:
        for n in range(1, 131):
            await hub.send(f"old message {n}", sender="system")

    server.call(chatter(server.hub))  # type: ignore[arg-type]
    alice = pages.join("alice", height=700)
    expect(message_items(alice, "old message 130")).to_have_count(1)
    first_page = message_items(alice).count()
    assert 50 <= first_page < 130
    # The newest message is in view; scrolling up pages back until the start.
    expect(message_items(alice, "old message 130")).to_be_in_viewport()
    for _ in range(5):
        shown = message_items(alice).count()
        if shown == 130:
            break
        alice.locator("#log").evaluate("log => { log.scrollTop = 0; }")
        wait_until(alice, "n => document.querySelectorAll('#messages li.msg').length > n", arg=shown)
    expect(message_items(alice)).to_have_count(130)
    expect(alice.locator("#log-top-text")).to_have_text("This is the start of #general.")
    assert shown_texts(alice) == [f"old message {n}" for n in range(1, 131)]


def test_new_messages_marker_when_scrolled_up(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice", height=600)
    bob = pages.join("bob")
    for n in range(25):
        send(bob, f"message {n}")
    expect(message_items(alice, "message 24")).to_be_in_viewport()

    alice.locator("#log").evaluate("log => { log.scrollTop = 0; }")
    send(bob, "while alice reads older messages")
    send(bob, "and another one")
    marker = alice.locator("#jump-new")
    expect(marker).to_have_text("2 new messages ↓")
    expect(message_items(alice, "and another one")).not_to_be_in_viewport()
    expect(alice.locator("#messages .divider")).to_have_count(1)
    marker.click()
    expect(message_items(alice, "and another one")).to_be_in_viewport()
    expect(marker).to_be_hidden()


def test_unread_count_in_the_title_while_the_tab_is_hidden(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    expect(alice).to_have_title("#general · chatbus")
    alice.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    send(bob, "are you there?")
    send(bob, "ping")
    expect(alice).to_have_title("(2) #general · chatbus")
    alice.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    expect(alice).to_have_title("#general · chatbus")


def test_mention_completion_offers_people_and_agents(pages: Pages, server: ChatServer) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    pages.join("bella")
    alice = pages.join("alice")
    box = alice.get_by_label("Message", exact=True)
    box.press_sequentially("ask @b")
    options = alice.get_by_role("option")
    expect(options).to_have_count(2)
    expect(alice.get_by_role("option", name=re.compile("builder"))).to_contain_text("agent")
    box.press("ArrowDown")
    selected = alice.locator('[role="option"][aria-selected="true"]')
    expect(selected).to_have_count(1)
    chosen = selected.locator(".completion-name").text_content()
    box.press("Enter")
    expect(box).to_have_value(f"ask @{chosen} ")
    expect(alice.locator("#completions")).to_be_hidden()
    # Escape closes the list without changing the text.
    box.press_sequentially("and @bu")
    expect(options).to_have_count(1)
    box.press("Escape")
    expect(alice.locator("#completions")).to_be_hidden()
    expect(box).to_have_value(f"ask @{chosen} and @bu")


@pytest.mark.parametrize("server_options", [{"rate_limit": {"burst": 2, "per_second": 0.05, "per_hour": 600}}])
def test_rate_limit_shows_the_wait_and_keeps_the_text(pages: Pages) -> None:
    alice = pages.join("alice")
    send(alice, "one")
    send(alice, "two")
    expect(message_items(alice)).to_have_count(2)
    send(alice, "three is too many")
    error = alice.locator("#error-line")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"too fast\. Wait \d+ s"))
    expect(alice.get_by_label("Message", exact=True)).to_have_value("three is too many")
    expect(message_items(alice, "three is too many")).to_have_count(0)
    # Pressing Enter again before the wait is over sends nothing.
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(error).to_contain_text("Wait")
    alice.wait_for_timeout(300)
    expect(message_items(alice)).to_have_count(2)
    screenshot(alice, "rate-limited")


@pytest.mark.parametrize(
    "server_options",
    [{"auth": {"mode": "token", "tokens": {"s3cret-token": {"userId": "alice", "role": "developer"}}}}],
)
def test_token_join_is_explained_and_remembered(pages: Pages, server: ChatServer) -> None:
    page = pages.open()
    page.get_by_label("Your user id").fill("alice")
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#token-error")).to_contain_text("Wrong or missing token")
    expect(page.get_by_label("Access token")).to_be_focused()
    expect(page.get_by_label("Access token")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "join-token-needed")

    page.get_by_label("Access token").fill("s3cret-token")
    page.get_by_role("button", name="Join").click()
    wait_connected(page)
    expect(page.locator("#me-name")).to_have_text("alice")
    expect(page.locator("#me-role")).to_contain_text("developer")

    # The next visit joins by itself with the remembered choice.
    page.reload()
    wait_connected(page)
    expect(page.locator("#me-name")).to_have_text("alice")
    # Leaving shows the form again, filled in, and stops joining by itself.
    page.get_by_role("button", name="Leave").click()
    expect(page.locator("#join-view")).to_be_visible()
    expect(page.get_by_label("Your user id")).to_have_value("alice")
    page.reload()
    expect(page.locator("#join-view")).to_be_visible()
    expect(page.get_by_label("Your user id")).to_have_value("alice")
    expect(page.locator("#chat-view")).to_be_hidden()


def test_join_form_explains_bad_user_ids(pages: Pages) -> None:
    page = pages.open()
    expect(page.get_by_role("heading", name="Join the chat")).to_be_visible()
    page.get_by_label("Your user id").fill("not valid!")
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#user-id-error")).to_contain_text("Latin letters (a-z, A-Z), digits")
    expect(page.get_by_label("Your user id")).to_be_focused()
    # A role can be picked from the common ones or typed.
    page.get_by_role("button", name="tester").click()
    expect(page.get_by_label("Your role")).to_have_value("tester")
    join(page, "carol")
    expect(page.locator("#me-role")).to_contain_text("tester")
    screenshot(page, "chat-empty")


def test_narrow_screen_keeps_the_message_box_usable(pages: Pages, server: ChatServer) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    bob = pages.join("bob")
    page = pages.open(width=375, height=667, is_mobile=True, has_touch=True, device_scale_factor=2)
    screenshot(page, "join-narrow")
    join(page, "alice", "manager")
    send(bob, "A long message without spaces: " + "x" * 300)
    send(bob, "Hi @alice, could you check https://example.org/a/very/long/path/that/does/not/fit/on/a/phone?")
    expect(message_items(page)).to_have_count(2)

    box = page.get_by_label("Message", exact=True)
    send_button = page.get_by_role("button", name="Send")
    for locator in (box, send_button):
        expect(locator).to_be_in_viewport(ratio=1)
        rect = locator.bounding_box()
        assert rect is not None and rect["x"] >= 0 and rect["x"] + rect["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box.tap()
    box.press_sequentially("from my phone")
    send_button.tap()
    expect(message_items(bob, "from my phone")).to_have_count(1)
    expect(box).to_have_value("")
    screenshot(page, "chat-narrow")

    # The list of people is a drawer behind a button.
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    page.get_by_role("button", name=re.compile("People")).tap()
    expect(page.locator("#sidebar")).to_be_in_viewport(ratio=1)
    expect(page.locator("#agents-list")).to_contain_text("builder")
    screenshot(page, "people-narrow")
    page.get_by_role("button", name="Close the list of people").tap()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()

    # The longer connection notice still fits the top bar, with its Retry button.
    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "waiting")
    expect(page.get_by_role("button", name="Retry now")).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "disconnected-narrow")


def test_dark_scheme(pages: Pages) -> None:
    light = pages.join("alice", scheme="light")
    dark = pages.join("bob", scheme="dark")
    send(light, "Hi @bob, how does it look at night?")
    expect(message_items(dark)).to_have_count(1)

    def background(page: Any) -> str:
        return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))

    def brightness(color: str) -> float:
        red, green, blue = (int(part) for part in re.findall(r"\d+", color)[:3])
        return (red * 299 + green * 587 + blue * 114) / 1000

    assert brightness(background(dark)) < 60
    assert brightness(background(light)) > 200
    screenshot(dark, "chat-desktop-dark")


def test_agent_answers_a_mention_and_its_status_changes(pages: Pages, server: ChatServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    worker = (
        "import pathlib, sys, time\n"
        "print('PROGRESS 40', flush=True)\n"
        f"go = pathlib.Path({str(go)!r})\n"
        "deadline = time.monotonic() + 30\n"
        "while not go.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('built ' + sys.argv[1])\n"
    )
    server.call(server.hub.hire("builder", "developer", [sys.executable, "-c", worker, "{task}"]))  # type: ignore[union-attr]
    alice = pages.join("alice", "manager")
    agent = alice.locator("#agents-list .member", has_text="builder")
    expect(agent).to_contain_text("idle")

    send(alice, "@builder please build the release notes")
    acknowledgement = message_items(alice).filter(has=alice.locator(".msg-sender", has_text="builder")).first
    expect(acknowledgement).to_be_visible()
    expect(acknowledgement.locator(".badge-agent")).to_have_text("agent")
    expect(acknowledgement.locator(".quote-text")).to_have_text("@builder please build the release notes")

    # While the worker runs: working, with its task and progress.
    expect(agent.locator(".status")).to_have_text("working")
    expect(agent).to_contain_text("build the release notes")
    expect(agent.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "40")
    screenshot(alice, "agent-working")

    go.write_text("go")
    # Then the task reads as past work: "completed: <task>", no progress bar any more.
    expect(agent.locator(".status")).to_have_text("completed:", timeout=WAIT_MS * 2)
    expect(agent.locator(".member-task-done")).to_have_text("build the release notes")
    expect(agent.locator('[role="progressbar"]')).to_have_count(0)
    done = message_items(alice).filter(has_text="Completed: build the release notes")
    expect(done).to_have_count(1, timeout=WAIT_MS * 2)
    expect(done.locator(".msg-sender")).to_have_text("builder")
    expect(done).to_contain_text("built build the release notes")
    # The agent's ✅ is the page's own mark, named for screen readers.
    expect(done.get_by_role("img", name="Done")).to_be_visible()
    screenshot(alice, "agent-completed")


def _axe_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_accessibility_checks_pass(pages: Pages, server: ChatServer, scheme: str) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    server.call(server.hub.set_agent_status("builder", "working", "write the changelog", 30))  # type: ignore[union-attr]
    page = pages.open(scheme=scheme)
    assert _axe_violations(page) == []
    join(page, "alice", "developer")
    bob = pages.join("bob")
    send(bob, "Hi @alice, see https://example.org")
    send(page, "@builder status?")
    expect(message_items(page)).to_have_count(3)
    message_items(page).last.hover()
    assert _axe_violations(page) == []


def test_reconnects_with_growing_delays_and_retry_now(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    server.stop()
    wait_until(alice, "() => window.chatbus.state().delays.length >= 3")
    # Full jitter: attempt n waits anywhere up to 1 s * 2^(n-1).
    first, second, third = alice.evaluate("window.chatbus.state().delays")[:3]
    assert 0 <= first <= 1000 and 0 <= second <= 2000 and 0 <= third <= 4000
    expect(alice.locator("#connection-text")).to_contain_text(re.compile(r"Connection lost\. Reconnecting in \d+ s"))
    screenshot(alice, "disconnected")
    # A message typed meanwhile is kept, with a note, until it can be sent.
    send(alice, "typed while offline")
    expect(alice.locator("#error-line")).to_contain_text("not connected")
    expect(alice.get_by_label("Message", exact=True)).to_have_value("typed while offline")

    # "Retry now" does not wait for the timer: wait for a retry seconds away (full jitter draws some
    # short ones), so the page's own timer cannot reconnect first on a busy machine.
    after = alice.evaluate("window.chatbus.state().attempt")
    long_wait = (
        "(after) => { const s = window.chatbus.state(); return s.phase === 'waiting' && s.attempt > after"
        " && s.delays[s.delays.length - 1] >= 3000; }"
    )
    wait_until(alice, long_wait, arg=after, timeout_ms=60_000)
    server.start()
    alice.get_by_role("button", name="Retry now").click()
    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=2500)
    expect(alice.locator("#connection-text")).to_have_text("Connected")
    assert alice.evaluate("window.chatbus.state().delays") == []
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(message_items(alice, "typed while offline")).to_have_count(1)


def test_keyboard_only_use_and_screen_reader_announcements(pages: Pages) -> None:
    bob = pages.join("bob")
    alice = pages.open()
    # Everything on the join form is reachable with Tab, in reading order.
    alice.get_by_label("Your user id").focus()
    alice.keyboard.type("alice")
    alice.keyboard.press("Tab")
    expect(alice.get_by_label("Your role")).to_be_focused()
    alice.keyboard.type("tester")
    alice.keyboard.press("Enter")
    wait_connected(alice)
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()

    send(bob, "first from bob")
    send(bob, "second from bob")
    # New messages from others are read out by screen readers.
    expect(alice.locator("#announcer")).to_contain_text("bob: second from bob")
    # The first thing Tab reaches is a link that leads to the message box.
    skip = alice.get_by_role("link", name="Skip to the message box")
    assert alice.evaluate(
        "document.querySelector('a, button, input, textarea, [tabindex]') === document.querySelector('.skip-link')"
    )
    skip.focus()
    expect(skip).to_be_in_viewport()
    alice.keyboard.press("Enter")
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()

    # Shift+Tab from the box reaches the newest message and its Reply button.
    alice.keyboard.press("Shift+Tab")
    expect(alice.get_by_role("button", name="Reply to bob").last).to_be_focused()
    alice.keyboard.press("Shift+Tab")
    expect(message_items(alice, "second from bob")).to_be_focused()
    alice.keyboard.press("ArrowUp")
    expect(message_items(alice, "first from bob")).to_be_focused()
    alice.keyboard.press("Escape")
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()


@pytest.mark.parametrize("server_options", [{"max_text_length": 40}])
def test_too_long_message_is_explained_and_kept(pages: Pages) -> None:
    alice = pages.join("alice")
    text = "This message is much longer than forty characters, sadly."
    send(alice, text)
    expect(alice.locator("#error-line")).to_contain_text("the limit is 40")
    expect(alice.get_by_label("Message", exact=True)).to_have_value(text)
    expect(message_items(alice)).to_have_count(0)
    # Dismissing the notice returns to the box; a shorter text goes through.
    alice.get_by_role("button", name="Dismiss this notice").click()
    expect(alice.locator("#error-line")).to_be_hidden()
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()
    send(alice, "Short and sweet.")
    expect(message_items(alice, "Short and sweet.")).to_have_count(1)
