"""What agents understand from a mention: the task, a status question, or hello."""

from __future__ import annotations

import pytest

from chatbus.core.message import Agent
from chatbus.plugins.agents import KINDS, default_reply, understand


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("@alice please create a login component", "create a login component"),
        ("@alice can you fix the build?", "fix the build"),
        ("@alice could you please implement OAuth login? thanks!", "implement OAuth login"),
        ("@alice, @bob: please add tests.", "add tests"),
        ("hey @alice can you update the docs please", "update the docs"),
        ("@alice-bot make the header blue", "make the header blue"),
        ("Please Create a README @alice", "create a README"),
        ("@alice I'd like you to write the release notes", "write the release notes"),
        ("@alice please update the status page", "update the status page"),
        ("@alice please review @carol's branch", "review @carol's branch"),
        ("@alice add {agent} to the list; rm -rf /", "add {agent} to the list; rm -rf /"),
        ("@alice please read the spec", "read the spec"),
        ("@alice find the memory leak", "find the memory leak"),
        ("@alice could you analyze the crash dump", "analyze the crash dump"),
        ("@alice benchmark the parser", "benchmark the parser"),
        ("@alice can you help me fix my tests?", "fix my tests"),
        ("@alice could you help us to deploy the site?", "deploy the site"),
        ("@alice can you take a look at the build?", "look at the build"),
        ("@alice please have a quick look at #42", "look at #42"),
        ("@alice the tests are failing, can you have a look?", "look into it (the tests are failing)"),
    ],
)
def test_a_task_request_gives_the_task_without_mention_and_filler(text: str, task: str) -> None:
    intent = understand(text)
    assert intent.kind == "task"
    assert intent.task == task
    assert intent.imperative


def test_a_request_that_does_not_start_with_a_verb_keeps_its_words() -> None:
    intent = understand("@alice the login page is broken, could you fix it?")
    assert intent.kind == "task"
    assert intent.task == "the login page is broken, fix it"
    assert not intent.imperative


@pytest.mark.parametrize(
    "text",
    [
        "@alice status?",
        "@alice what's your status?",
        "@alice how is it going?",
        "@alice what are you working on",
        "@alice are you done?",
        "@alice any progress?",
        "@alice can you give me a status update?",
    ],
)
def test_status_questions(text: str) -> None:
    assert understand(text).kind == "status"


@pytest.mark.parametrize("text", ["@alice", "@alice hi", "hello @alice!", "@alice thanks!", "@alice please"])
def test_bare_mentions_and_greetings(text: str) -> None:
    assert understand(text).kind == "greeting"


def test_anything_else_is_a_question_or_unclear() -> None:
    assert understand("@alice what is the capital of France?").kind == "question"
    assert understand("@alice can you explain the cache?").kind == "question"  # asks for no task verb
    assert understand("what do you think, @alice?").kind == "question"
    assert understand("@alice the build is red").kind == "unclear"


ALICE = Agent("alice", "developer")


def test_the_acknowledgement_names_the_task() -> None:
    text = default_reply(ALICE, "acknowledge", {"task": "create a login component", "imperative": True}, greeting="")
    assert text == "Got it! I'll create a login component."
    text = default_reply(ALICE, "acknowledge", {"task": "the page is broken, fix it", "imperative": False}, greeting="")
    assert text == "Got it! I'll work on this: the page is broken, fix it."


def test_queued_replies_say_where_the_task_stands() -> None:
    first = default_reply(ALICE, "queued", {"task": "b", "position": 1, "current": "a"}, greeting="")
    second = default_reply(ALICE, "queued", {"task": "c", "position": 2, "current": "a"}, greeting="")
    assert first == "I'm busy with another task, so I've queued this one (next in my queue): b. Working on now: a."
    assert second == (
        "I'm busy with another task, so I've queued this one (number 2 in my queue): c. Working on now: a."
    )


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"status": "idle"}, "I'm idle: no task right now."),
        (
            {"status": "working", "task": "x", "progress": 40, "queued": 2},
            "I'm working on this task (40% done): x. 2 more tasks queued.",
        ),
        ({"status": "working", "task": "x", "progress": None}, "I'm working on this task: x."),
        ({"status": "stuck", "task": "x"}, "I'm stuck and have asked the team for help with this task: x."),
        (
            {"status": "completed", "task": "x", "queued": 1},
            "I'm free for the next task. Last completed: x. 1 more task queued.",
        ),
    ],
)
def test_status_replies(details: dict[str, object], expected: str) -> None:
    assert default_reply(ALICE, "status", details, greeting="") == expected


def test_the_other_reply_kinds() -> None:
    greeting = default_reply(ALICE, "greeting", {"sender": "bob"}, greeting="Hi {sender}, {agent} the {role} here.")
    assert greeting == "Hi bob, alice the developer here."
    assert (
        default_reply(ALICE, "greeting", {"sender": "bob"}, greeting="Hi {nobody}") == "Hi bob! I'm alice (developer)."
    )
    assert "@alice status?" in (default_reply(ALICE, "unclear", {"sender": "bob"}, greeting="") or "")
    assert default_reply(ALICE, "completed", {"task": "x", "output": "done"}, greeting="") == "✅ Completed: x\ndone"
    assert default_reply(ALICE, "help", {"task": "x", "issue": "no disk", "progress": 30}, greeting="") == (
        "@team I need help with this task (30% done): x.\nProblem: no disk"
    )
    assert default_reply(ALICE, "timeout", {"task": "x", "seconds": 1800}, greeting="") == (
        "⏹️ I stopped this task after 30 minutes, as it was still running: x."
    )
    assert "interrupted" in (default_reply(ALICE, "interrupted", {"task": "x"}, greeting="") or "")
    assert default_reply(ALICE, "no such kind", {}, greeting="") is None
    assert set(KINDS) == {
        "greeting",
        "unclear",
        "question",
        "acknowledge",
        "queued",
        "status",
        "completed",
        "help",
        "timeout",
        "interrupted",
    }


def test_a_long_task_is_shortened_in_replies() -> None:
    text = default_reply(ALICE, "acknowledge", {"task": "fix " + "x" * 500, "imperative": True}, greeting="") or ""
    assert len(text) < 230 and text.endswith("x…")
