"""The default texts agents post, one function per reply kind.

Every text goes through the ``agent_reply`` hook first; these are what the
built-in implementation answers. The kinds and their ``details``:

``greeting``     sender
``unclear``      sender
``question``     sender (a question for an agent without a model to answer it)
``acknowledge``  task, imperative, sender
``queued``       task, imperative, position (1 = next), current (the task being worked on)
``status``       status, task, progress, queued (how many tasks wait)
``completed``    task, output (the last lines, may be empty), files (names of the files
                 attached), not_attached (a line for each file named but not attached)
``help``         task, issue, progress (also posted by ``AgentsPlugin.request_help``); for
                 a failed command also files and not_attached, as for ``completed``
``timeout``      task, seconds, output
``interrupted``  task
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from chatbus import Agent

__all__ = ["KINDS", "default_reply", "duration", "for_me", "shorten"]

_TASK_SHOWN = 200


def shorten(text: str, limit: int = _TASK_SHOWN) -> str:
    """One line of at most ``limit`` characters, for quoting a task in a reply."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


#: Words of the person asking, as the agent says them back ("fix my tests" -> "I'll fix your tests").
_SWAPS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
    "you're": "I'm",
    "you've": "I've",
    "you'll": "I'll",
    "you'd": "I'd",
}
#: After "you" these make it the subject ("when you are done" -> "when I am done"); else it is "me".
_SUBJECT_VERBS = {"are": "am", "were": "was", "have": "have", "can": "can", "could": "could", "will": "will",
                  "would": "would", "should": "should", "need": "need", "want": "want", "think": "think",
                  "did": "did", "do": "do", "finish": "finish", "get": "get"}  # fmt: skip
#: Before "you" these make it an object ("tell you", "help you fix", "for you"): "me".
_OBJECT_BEFORE = frozenset(
    [
        "help",
        "let",
        "make",
        "have",
        "see",
        "watch",
        "want",
        "need",
        "ask",
        "tell",
        "get",
        "give",
        "send",
        "show",
        "thank",
        "remind",
        "to",
        "for",
        "with",
        "from",
        "about",
        "by",
        "at",
        "of",
        "on",
    ]
)
#: After "you", a verb of a request makes "you" its subject ("make sure you run the linter": "I run").
_REQUEST_VERBS = frozenset(
    [
        "add",
        "build",
        "change",
        "check",
        "clean",
        "commit",
        "create",
        "debug",
        "delete",
        "deploy",
        "document",
        "fix",
        "finish",
        "format",
        "install",
        "merge",
        "move",
        "push",
        "rebase",
        "remove",
        "rename",
        "review",
        "run",
        "ship",
        "test",
        "try",
        "update",
        "upgrade",
        "write",
        "keep",
        "leave",
        "stop",
        "start",
        "use",
    ]
)
#: After "I" the verb changes with the person too ("what I am doing" -> "what you are doing").
_I_VERBS = {"am": "are", "was": "were"}
_WORD = re.compile(r"(?<![\w./\\-])([A-Za-z]+(?:['’][a-z]+)?)(?![\w/\\-]|\.\w)")


def for_me(task: str) -> str:
    """The task as the agent says it back: the asker's "my", "me" and "I" become "your" and
    "you", and "you"/"your" become "I"/"me"/"my" (names, paths and code are left as they are)."""
    words = list(_WORD.finditer(task))
    out: list[str] = []
    end = 0
    for index, match in enumerate(words):
        word = match.group(1)
        key = word.lower().replace("’", "'")
        following = words[index + 1].group(1).lower() if index + 1 < len(words) else ""
        previous = words[index - 1].group(1).lower() if index > 0 else ""
        if key == "you":
            subject = following in _SUBJECT_VERBS or following in _REQUEST_VERBS
            swapped = "I" if subject and previous not in _OBJECT_BEFORE else "me"
        elif key in _I_VERBS and previous == "i":
            swapped = _I_VERBS[key]
        elif key in _SUBJECT_VERBS and previous == "you":
            swapped = _SUBJECT_VERBS[key]
        else:
            swapped = _SWAPS.get(key, word)
        out.append(task[end : match.start(1)] + swapped)
        end = match.end(1)
    out.append(task[end:])
    return "".join(out)


def duration(seconds: float) -> str:
    """``45 seconds`` or ``10 minutes``: a wait or a run time, as people say it."""
    if seconds < 120:
        whole = max(1, round(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"


def _quoted(task: str) -> str:
    """A task quoted after a colon, as written, without a full stop of its own (one is added after it)."""
    return shorten(task).rstrip(" .")


def _said(text: str) -> str:
    """``text`` ending a sentence: a full stop unless it already ends with one of its own."""
    return text if text.endswith(("?", "!", "…", ".")) else f"{text}."


def _plan(task: str, imperative: bool) -> str:
    return for_me(_quoted(task)) if imperative else f"work on this: {_quoted(task)}"


def _with_output(head: str, output: str) -> str:
    return f"{head}\n{output}" if output else head


def _greeting(agent: Agent, d: Mapping[str, Any], template: str) -> str:
    values = {"sender": d.get("sender", "there"), "agent": agent.name, "role": agent.role}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return f"Hi {values['sender']}! I'm {agent.name} ({agent.role})."


def _unclear(agent: Agent, d: Mapping[str, Any]) -> str:
    return (
        f"I'm not sure what you need, {d.get('sender', 'there')}. Tell me what to do, like "
        f'"@{agent.name} please fix the login bug", or ask "@{agent.name} status?".'
    )


def _question(agent: Agent, d: Mapping[str, Any]) -> str:
    role = agent.role if agent.role.split() == [agent.role] else "ROLE"
    return (
        f"I can't answer questions, {d.get('sender', 'there')}: I have no language model. A manager can give "
        f"me one with /hire {agent.name} {role} --model MODEL. I can do tasks, like "
        f'"@{agent.name} please fix the login bug", or tell you my status ("@{agent.name} status?").'
    )


def _acknowledge(agent: Agent, d: Mapping[str, Any]) -> str:
    return _said(f"Got it! I'll {_plan(d['task'], d.get('imperative', True))}")


def _queued(agent: Agent, d: Mapping[str, Any]) -> str:
    position = int(d["position"])
    place = "next in my queue" if position == 1 else f"number {position} in my queue"
    current = d.get("current")
    now = f" Working on now: {_said(_quoted(current))}" if current else ""
    return f"I'm busy with another task, so I've queued this one ({place}): {_said(_quoted(d['task']))}{now}"


def _status(agent: Agent, d: Mapping[str, Any]) -> str:
    status, task, progress = d.get("status"), d.get("task"), d.get("progress")
    queued = int(d.get("queued") or 0)
    waiting = f" {queued} more task{'s' if queued != 1 else ''} queued." if queued else ""
    if status == "working" and task:
        done = f" ({progress}% done)" if progress is not None else ""
        return f"I'm working on this task{done}: {_said(_quoted(task))}{waiting}"
    if status == "stuck" and task:
        return f"I'm stuck and have asked the team for help with this task: {_said(_quoted(task))}{waiting}"
    if status == "completed" and task:
        return f"I'm free for the next task. Last completed: {_said(_quoted(task))}{waiting}"
    return f"I'm idle: no task right now.{waiting}"


def _with_notes(text: str, d: Mapping[str, Any]) -> str:
    """``text`` and a line for each file the work named that is not attached."""
    return "\n".join([text, *(f"⚠️ {note}" for note in d.get("not_attached") or ())])


def _completed(agent: Agent, d: Mapping[str, Any]) -> str:
    return _with_notes(_with_output(f"✅ Completed: {shorten(d['task'])}", d.get("output") or ""), d)


def _help(agent: Agent, d: Mapping[str, Any]) -> str:
    progress = d.get("progress")
    done = f" ({progress}% done)" if progress is not None else ""
    head = f"@team I need help with this task{done}: {_said(_quoted(d['task']))}"
    return _with_notes(f"{head}\nProblem: {d['issue']}", d)


def _timeout(agent: Agent, d: Mapping[str, Any]) -> str:
    seconds = duration(float(d["seconds"]))
    head = f"⏹️ I stopped this task after {seconds}, as it was still running: {_said(_quoted(d['task']))}"
    return _with_output(head, d.get("output") or "")


def _interrupted(agent: Agent, d: Mapping[str, Any]) -> str:
    return (
        f"⚠️ The server stopped while I was working on this task, so it was interrupted: "
        f"{_said(_quoted(d['task']))} /retry {agent.name} starts it again if it still needs doing."
    )


_BUILDERS: dict[str, Callable[[Agent, Mapping[str, Any]], str]] = {
    "unclear": _unclear,
    "question": _question,
    "acknowledge": _acknowledge,
    "queued": _queued,
    "status": _status,
    "completed": _completed,
    "help": _help,
    "timeout": _timeout,
    "interrupted": _interrupted,
}

#: Every reply kind the built-in agents post.
KINDS: tuple[str, ...] = ("greeting", *_BUILDERS)


def default_reply(agent: Agent, kind: str, details: Mapping[str, Any], *, greeting: str) -> str | None:
    """The built-in text for ``kind``, or None for a kind this module does not know."""
    if kind == "greeting":
        return _greeting(agent, details, greeting)
    builder = _BUILDERS.get(kind)
    return builder(agent, details) if builder is not None else None
