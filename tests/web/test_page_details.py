"""Small things a person notices on the chat page, in a real Chromium against a real chatbus.

The @ list leaves the latest message in view, Enter on it puts the name in and
a second Enter sends (the hint under the box says so), the phone's top bar
keeps who you are, a legend says what the marks mean, a completed task reads
as past work, and a rate-limit wait is the same time the server wrote.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from chatbus import RateLimited

from .conftest import ChatServer, Pages, join, message_items, screenshot, send

PHONE = {"width": 375, "height": 667, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def boxes_overlap(one: dict[str, float], other: dict[str, float]) -> bool:
    return not (
        one["x"] + one["width"] <= other["x"]
        or other["x"] + other["width"] <= one["x"]
        or one["y"] + one["height"] <= other["y"]
        or other["y"] + other["height"] <= one["y"]
    )


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_mention_list_keeps_the_latest_message_in_view_and_enter_twice_sends(
    pages: Pages, server: ChatServer, screen: str
) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    bob = pages.join("bob")
    alice = pages.join("alice", **(PHONE if screen == "phone" else {"height": 700}))
    for n in range(20):
        send(bob, f"status update {n}")
    send(bob, "the latest message, which alice is answering")
    latest = message_items(alice, "the latest message, which alice is answering")
    expect(latest).to_be_in_viewport(ratio=1)
    if screen == "desktop":
        expect(alice.locator("#composer-hint")).to_have_text(
            re.compile(r"Enter puts the chosen name in, a second Enter sends")
        )

    box = alice.get_by_label("Message", exact=True)
    box.press_sequentially("thanks, @bui")
    option = alice.get_by_role("option", name=re.compile("builder"))
    expect(option).to_be_visible()
    # The list does not cover the message being answered: it stays whole in view, beside the list.
    expect(latest).to_be_in_viewport(ratio=1)
    listed, shown = alice.locator("#completions").bounding_box(), latest.bounding_box()
    assert listed is not None and shown is not None
    assert not boxes_overlap(listed, shown), (listed, shown)
    screenshot(alice, f"mention-list-{screen}")

    # Enter puts the name in and sends nothing; the second Enter sends.
    box.press("Enter")
    expect(box).to_have_value("thanks, @builder ")
    expect(alice.locator("#completions")).to_be_hidden()
    from_alice = message_items(bob).filter(has=bob.locator(".msg-sender", has_text="alice"))
    alice.wait_for_timeout(300)
    expect(from_alice).to_have_count(0)
    box.press("Enter")
    expect(from_alice).to_have_count(1)
    expect(from_alice.locator(".msg-text")).to_have_text(re.compile(r"^thanks, @builder\s*$"))
    expect(box).to_have_value("")


def test_phone_top_bar_keeps_who_you_are(pages: Pages) -> None:
    page = pages.open(**PHONE)
    join(page, "alexandra-the-designer", "designer")
    me = page.locator("#me")
    name = page.locator("#me-name")
    expect(name).to_be_visible()
    expect(name).to_have_text("alexandra-the-designer")
    expect(me).to_contain_text("You are alexandra-the-designer")  # read out whole by screen readers
    expect(me).to_have_attribute("title", "You are alexandra-the-designer, designer")
    shown = name.bounding_box()
    assert shown is not None and shown["x"] >= 0 and shown["x"] + shown["width"] <= 375
    assert shown["width"] >= 60, "the name is cut to almost nothing"
    # The room keeps its whole name, the buttons stay, and nothing runs off the screen.
    expect(page.locator("#room-name")).to_be_visible()
    assert page.locator("#room-name").evaluate("node => node.scrollWidth <= node.clientWidth")
    for button in (page.get_by_role("button", name="Leave"), page.get_by_role("button", name=re.compile("People"))):
        expect(button).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "top-bar-narrow")

    # A short name is shown whole.
    other = pages.open(**PHONE)
    join(other, "al")
    expect(other.locator("#me-name")).to_be_visible()
    assert other.locator(".me-label").evaluate("node => node.scrollWidth <= node.clientWidth")


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_a_legend_says_what_the_marks_mean(pages: Pages, server: ChatServer, screen: str) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    server.call(server.hub.set_agent_status("builder", "working", "write the changelog", 30))  # type: ignore[union-attr]
    page = pages.join("alice", **(PHONE if screen == "phone" else {}))
    if screen == "phone":
        page.get_by_role("button", name=re.compile("People")).tap()
    legend = page.get_by_role("region", name="What the marks mean")
    legend.scroll_into_view_if_needed()
    expect(legend).to_be_visible()
    items = legend.get_by_role("listitem")
    expect(items).to_have_count(6)
    words = [text.split()[0] for text in items.all_inner_texts()]
    assert words == ["online", "offline", "idle", "working", "stuck", "completed"]
    expect(items.filter(has_text="completed")).to_contain_text("finished")
    # Each mark in the lists is the legend's mark for that state.
    for member, state in (("builder", "working"), ("alice", "online")):
        used = page.locator("#sidebar .member", has_text=member).locator(".member-mark .icon")
        expect(used).to_have_attribute("data-icon", state)
        expect(legend.locator(f'.legend-item[data-icon="{state}"] .icon')).to_be_visible()
    screenshot(page, f"legend-{screen}")


def test_a_completed_task_reads_as_past_work(pages: Pages, server: ChatServer) -> None:
    hub = server.hub
    assert hub is not None
    server.call(hub.hire("builder", "developer"))
    server.call(hub.set_agent_status("builder", "working", "write the changelog", 30))
    server.call(hub.hire("planner", "planner"))
    server.call(hub.set_agent_status("planner", "completed", "plan the launch", 100))
    page = pages.join("alice")
    working = page.locator("#agents-list .member", has_text="builder")
    done = page.locator("#agents-list .member", has_text="planner")

    # Working: a status badge, the task as current text, and a progress bar.
    expect(working.locator(".status")).to_have_text("working")
    expect(working.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "30")
    # Completed: "completed: the task", said as done, with no progress bar.
    expect(done.locator(".member-status-line")).to_have_text("completed:plan the launch")
    expect(done.get_by_role("progressbar")).to_have_count(0)
    expect(done.get_by_role("button")).to_have_accessible_name(
        re.compile(r"planner, planner, agent, completed: plan the launch")
    )

    def look(locator: Any, what: str) -> str:
        return str(locator.evaluate(f"node => getComputedStyle(node).{what}"))

    assert look(working.locator(".status"), "borderTopWidth") == "1px"
    assert look(done.locator(".status"), "borderTopWidth") == "0px", "completed is not shown like a current state"
    assert look(done.locator(".member-task"), "color") != look(working.locator(".member-task"), "color")
    assert look(done.locator(".member-task"), "color") == look(page.locator(".member-role").first, "color")
    screenshot(page, "completed-as-past-work")


def server_wait(text: str) -> str:
    """The waiting time in a rate-limit refusal's text: "20 seconds" or "5 minutes"."""
    found = re.search(r"Wait (\d+ (?:seconds?|minutes))", text)
    assert found, text
    return found.group(1)


def test_the_page_counts_waits_in_the_servers_words(pages: Pages) -> None:
    page = pages.open()
    waits = [1, 2, 30, 59, 60, 61, 119, 120, 121, 150, 179, 180, 181, 599, 3600, 7199, 0.2, 1.5, 119.4]
    shown = page.evaluate(
        "async waits => { const text = await import('/static/js/text.js'); return waits.map((n) => text.waitText(n)); }",
        waits,
    )
    assert shown == [server_wait(str(RateLimited(n))) for n in waits]


@pytest.mark.parametrize(
    ("server_options", "unit"),
    [
        ({"ratelimit": {"burst": 2, "per_second": 0.05, "per_hour": 600}}, "seconds"),
        ({"ratelimit": {"burst": 2, "per_second": 0.004, "per_hour": 600}}, "minutes"),
    ],
)
def test_rate_limit_countdown_starts_at_the_servers_wait(pages: Pages, unit: str) -> None:
    page = pages.open()
    refusals: list[dict[str, Any]] = []

    def watch(socket: Any) -> None:
        def received(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "error" and frame["data"].get("code") == "RATE_LIMITED":
                refusals.append(frame["data"])

        socket.on("framereceived", received)

    page.on("websocket", watch)
    join(page, "alice")
    # Every text the error line shows, from the first one on, however fast the countdown runs.
    page.locator("#error-text").evaluate(
        "node => { window.errorTexts = []; new MutationObserver(() => window.errorTexts.push(node.textContent))"
        ".observe(node, { childList: true, characterData: true, subtree: true }); }"
    )
    send(page, "one")
    send(page, "two")
    expect(message_items(page)).to_have_count(2)
    send(page, "three is too many")
    error = page.locator("#error-line")
    expect(error).to_contain_text("too fast")
    assert len(refusals) == 1
    said = server_wait(refusals[0]["message"])
    assert said.endswith(unit)
    wait = refusals[0]["retryAfter"]
    assert wait == int(wait), "retryAfter is whole seconds"
    wait = int(wait)
    assert said == (f"{wait} seconds" if unit == "seconds" else f"{-(-wait // 60)} minutes")
    first = next(text for text in page.evaluate("window.errorTexts") if "too fast" in text)
    assert f"Wait {said}, then send again" in first, first
    expect(page.get_by_label("Message", exact=True)).to_have_value("three is too many")


def test_replying_to_an_agents_done_message_quotes_it_with_the_pages_mark(pages: Pages, server: ChatServer) -> None:
    server.call(server.hub.hire("builder", "developer"))  # type: ignore[union-attr]
    alice = pages.join("alice")
    server.call(server.hub.send("\u2705 Completed: write the changelog", sender="builder"))  # type: ignore[union-attr]
    done = message_items(alice).filter(has_text="Completed: write the changelog")
    done.hover()
    done.get_by_role("button", name="Reply to builder").click()
    preview = alice.locator("#reply-preview-text")
    expect(preview).to_have_text("Completed: write the changelog")
    expect(preview.get_by_role("img", name="Done")).to_be_visible()
    send(alice, "great, thanks")
    quote = message_items(alice, "great, thanks").locator(".quote-text")
    expect(quote).to_have_text("Completed: write the changelog")
    expect(quote.get_by_role("img", name="Done")).to_be_visible()
