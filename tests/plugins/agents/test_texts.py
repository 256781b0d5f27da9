"""Agents' replies read right whatever form the task was asked in: an order, a
request, a question, a statement; with the asker's "my" and "me" said back as
"your" and "you"."""

from __future__ import annotations

import re

import pytest

from chatbus.core.message import Agent
from chatbus.plugins.agents import default_reply, understand
from chatbus.plugins.agents.texts import for_me
from chatbus.testing import MemoryTransport, make_hub

ALICE = Agent("alice", "developer")

#: (what a person writes, the acknowledgement alice answers)
ASKED = [
    ("@alice create a login component", "Got it! I'll create a login component."),
    ("@alice please fix the tests", "Got it! I'll fix the tests."),
    ("@alice can you deploy?", "Got it! I'll deploy."),
    ("@alice Could you please update my branch?", "Got it! I'll update your branch."),
    ("@alice would you mind reviewing PR 42?", "Got it! I'll review PR 42."),
    ("@alice I need you to write the release notes for me", "Got it! I'll write the release notes."),
    ("@alice can you send me the logs when you are done?", "Got it! I'll send you the logs when I am done."),
    ("hey @alice, send me your notes please", "Got it! I'll send you my notes."),
    ("@alice Fix the flaky test in test_my_api.py.", "Got it! I'll fix the flaky test in test_my_api.py."),
    ("@alice go ahead and merge my-branch into main", "Got it! I'll merge my-branch into main."),
    ("@alice fixing the build, please", "Got it! I'll fix the build."),
    ("@alice could you look into the failing build?", "Got it! I'll look into the failing build."),
    (
        "@alice the build is red, can you look into it?",
        "Got it! I'll work on this: the build is red, look into it.",
    ),
    (
        "hey @alice, the tests fail on main, please fix them",
        "Got it! I'll work on this: the tests fail on main, fix them.",
    ),
]


@pytest.mark.parametrize(("asked", "acknowledged"), ASKED)
def test_the_acknowledgement_reads_right_for_any_way_of_asking(asked: str, acknowledged: str) -> None:
    intent = understand(asked)
    assert intent.kind == "task" and intent.task
    details = {"task": intent.task, "imperative": intent.imperative, "sender": "carol"}
    assert default_reply(ALICE, "acknowledge", details, greeting="") == acknowledged


#: Tasks as they reach the texts, in every form a task can have.
TASKS = [
    "create a login component",
    "fix the tests",
    "deploy",
    "the build is red",
    "can you deploy?",
    "Please fix the tests!",
    "the page is broken, fix it",
    "update my branch",
    "x" * 300,
]

#: Sentences that quote a task right after a word that wants a noun ("working on
#: create ...", "stopped fix ...", "help with deploy"), which no task form fits.
_BAD = re.compile(
    r"\b(?:on|with|completed|queued|stopped|busy with|help with)\s+"
    r"(?:create|fix|deploy|the build|can you|please|update|the page|x{10})",
    re.IGNORECASE,
)

STATUS = [
    {"status": "working", "progress": 40, "queued": 2},
    {"status": "working", "progress": None},
    {"status": "stuck"},
    {"status": "completed", "queued": 1},
]


def _every_text(task: str) -> list[str]:
    texts = [
        default_reply(ALICE, "acknowledge", {"task": task, "imperative": False}, greeting=""),
        default_reply(ALICE, "queued", {"task": task, "position": 1, "current": task}, greeting=""),
        default_reply(ALICE, "queued", {"task": task, "position": 3, "current": None}, greeting=""),
        *(default_reply(ALICE, "status", {**details, "task": task}, greeting="") for details in STATUS),
        default_reply(ALICE, "completed", {"task": task, "output": "ok"}, greeting=""),
        default_reply(ALICE, "help", {"task": task, "issue": "no disk", "progress": 30}, greeting=""),
        default_reply(ALICE, "timeout", {"task": task, "seconds": 90}, greeting=""),
        default_reply(ALICE, "interrupted", {"task": task}, greeting=""),
    ]
    return [text or "" for text in texts]


@pytest.mark.parametrize("task", TASKS)
def test_every_reply_quotes_the_task_where_any_form_reads_right(task: str) -> None:
    for text in _every_text(task):
        assert not _BAD.search(text), text
        assert ". ." not in text and ".." not in text.replace("...", "") and "?." not in text and "!." not in text
        assert len(text) < 600


@pytest.mark.parametrize(
    ("kind", "details", "expected"),
    [
        ("status", {"status": "working", "task": "create a login component", "progress": 40, "queued": 1},
         "I'm working on this task (40% done): create a login component. 1 more task queued."),
        ("status", {"status": "stuck", "task": "the build is red"},
         "I'm stuck and have asked the team for help with this task: the build is red."),
        ("status", {"status": "completed", "task": "can you deploy?"},
         "I'm free for the next task. Last completed: can you deploy?"),
        ("queued", {"task": "deploy", "position": 1, "current": "fix the tests"},
         "I'm busy with another task, so I've queued this one (next in my queue): deploy. Working on now: fix the tests."),
        ("completed", {"task": "the build is red", "output": ""}, "✅ Completed: the build is red"),
        ("help", {"task": "deploy", "issue": "no key for the server", "progress": None},
         "@team I need help with this task: deploy.\nProblem: no key for the server"),
        ("timeout", {"task": "please fix the tests!", "seconds": 600},
         "⏹️ I stopped this task after 10 minutes, as it was still running: please fix the tests!"),
        ("interrupted", {"task": "create a login component"},
         ("⚠️ The server stopped while I was working on this task, so it was interrupted: create a login component. "
          "/retry alice starts it again if it still needs doing.")),
    ],
)  # fmt: skip
def test_the_texts_in_full(kind: str, details: dict[str, object], expected: str) -> None:
    assert default_reply(ALICE, kind, details, greeting="") == expected


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ("fix my tests", "fix your tests"),
        ("send me the logs", "send you the logs"),
        ("fix the bug I found", "fix the bug you found"),
        ("check what I am doing", "check what you are doing"),
        ("update your config", "update my config"),
        ("review it if you can", "review it if I can"),
        ("explain what you think of my PR", "explain what I think of your PR"),
        ("rename src/my/module.py and my_var and my-branch", "rename src/my/module.py and my_var and my-branch"),
        ("rename the I/O module", "rename the I/O module"),
        ("make sure you run the linter", "make sure I run the linter"),
        ("check that you test it before you merge", "check that I test it before I merge"),
        ("help you fix the tests", "help me fix the tests"),
        ("tell you when it is done", "tell me when it is done"),
    ],
)
def test_the_asker_s_words_are_said_back_from_the_agent_s_side(task: str, said: str) -> None:
    assert for_me(task) == said


async def help_for(*agents: tuple[str, str]) -> str:
    hub = make_hub([])
    async with hub:
        for name, role in agents:
            await hub.hire(name, role)
        transport = hub.transports["memory"]
        assert isinstance(transport, MemoryTransport)
        asked = await transport.say("carol", "/help")
        return (await transport.wait_for(lambda m: m.reply_to == asked.id, 2)).text


async def test_help_names_the_agents_of_this_chat() -> None:
    text = await help_for(("quinn", "reviewer"), ("mara", "developer"))
    assert "Agents here: mara (developer), quinn (reviewer)." in text
    assert '"@mara please add a test" or "@quinn status?"' in text
    assert "@alice" not in text and "/hire NAME ROLE" in text


async def test_help_without_agents_says_how_to_get_one() -> None:
    text = await help_for()
    assert text.splitlines()[-1] == (
        "There are no agents yet: a manager adds one with /hire NAME ROLE, then you mention it."
    )
    assert "@alice" not in text


def test_a_question_to_an_agent_without_a_model_says_how_to_give_it_one() -> None:
    text = default_reply(ALICE, "question", {"sender": "carol"}, greeting="") or ""
    assert text.startswith("I can't answer questions, carol: I have no language model.")
    assert "/hire alice developer --model MODEL" in text and '"@alice status?"' in text
    text = default_reply(Agent("rio", "release manager"), "question", {"sender": "carol"}, greeting="") or ""
    assert "/hire rio ROLE --model MODEL" in text
