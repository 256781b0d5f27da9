"""What a person wants from an agent they mention: a task, its status, an answer, or hello.

Pure text functions, no hub: ``understand("@alice please create a login
component")`` is an ``Intent`` of kind ``task`` whose task is ``create a
login component``. The rules, in order:

1. Mentions at the start and end of the text (``@alice, @bob:``), greetings
   (``hey``, ``hi``) and request filler (``please``, ``can you``, ``could
   you``, ...) are removed from the ends.
2. What is left starts with a task verb (create, add, fix, update, implement,
   make, ...): a task.
3. Otherwise a question about status or progress ("status?", "how is it
   going?", "are you done?"): a status question.
4. Otherwise any request word anywhere ("the build is broken, could you fix
   it"): a task, with the filler removed; but a request that ends with a
   question mark and asks for no task verb ("can you explain the cache?") is
   a question. "help me <verb>" counts as the verb, and "have (or take) a
   look" as "look": "can you help me fix my tests?" is the task "fix my
   tests".
5. Otherwise nothing left, or only a greeting: a greeting; anything else
   that ends with a question mark is a ``question``, the rest ``unclear``.

An agent with a model answers questions (and unclear messages, and
greetings) with it; see :mod:`~chatbus.plugins.agents.brain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["TASK_VERBS", "Intent", "IntentKind", "understand"]

IntentKind = Literal["task", "status", "greeting", "question", "unclear"]

#: Words that make a mention a task request when the request starts with them.
TASK_VERBS: frozenset[str] = frozenset(
    [
        "add",
        "analyse",
        "analyze",
        "audit",
        "backport",
        "benchmark",
        "build",
        "bump",
        "change",
        "check",
        "clean",
        "close",
        "commit",
        "compare",
        "compile",
        "configure",
        "convert",
        "create",
        "debug",
        "delete",
        "deploy",
        "design",
        "document",
        "draft",
        "extract",
        "fetch",
        "find",
        "finish",
        "fix",
        "format",
        "generate",
        "implement",
        "improve",
        "install",
        "investigate",
        "lint",
        "look",
        "make",
        "merge",
        "migrate",
        "move",
        "open",
        "optimize",
        "package",
        "patch",
        "prepare",
        "publish",
        "push",
        "read",
        "rebase",
        "rebuild",
        "refactor",
        "refresh",
        "release",
        "remove",
        "rename",
        "replace",
        "reproduce",
        "rerun",
        "resolve",
        "restart",
        "restore",
        "revert",
        "review",
        "rewrite",
        "run",
        "send",
        "set",
        "setup",
        "ship",
        "split",
        "start",
        "summarise",
        "summarize",
        "test",
        "tidy",
        "translate",
        "try",
        "update",
        "upgrade",
        "upload",
        "validate",
        "verify",
        "write",
    ]
)

_MENTION_RUN = r"(?:@[A-Za-z0-9_.\-]+[\s,;:]*(?:(?:and|&)\s+)?)+"
_GREETING_WORDS = r"(?:hey|hi|hello|hallo|yo|ok|okay|so|thanks|thank\s+you|good\s+(?:morning|afternoon|evening))"
_FILLER = (
    r"(?:please|pls|plz|kindly|"
    r"would\s+you\s+mind|"
    r"(?:can|could|would|will)\s+(?:you|u)(?:\s+please)?|"
    r"i\s+(?:need|want|would\s+like)\s+you\s+to|"
    r"i(?:'|’)d\s+like\s+you\s+to|"
    r"go\s+ahead\s+and)"
)

_LEADING_MENTIONS = re.compile(rf"^\s*{_MENTION_RUN}")
_TRAILING_MENTIONS = re.compile(r"[\s,;:]*(?:@[A-Za-z0-9_.\-]+[\s,;:]*)+[.!?]*\s*$")
_LEADING_GREETING = re.compile(rf"^\s*{_GREETING_WORDS}\b[\s,;:!.\-]*", re.IGNORECASE)
_LEADING_FILLER = re.compile(rf"^\s*{_FILLER}\b[\s,;:]*", re.IGNORECASE)
_INNER_FILLER = re.compile(rf"(?<![A-Za-z0-9]){_FILLER}\b\s*", re.IGNORECASE)
_TRAILING_FILLER = re.compile(r"[\s,;]*\b(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me)\b[\s.!?]*$", re.IGNORECASE)
_TRAILING_PUNCTUATION = re.compile(r"[\s.!?]+$")
_ONLY_GREETING = re.compile(
    rf"^(?:{_GREETING_WORDS}|are\s+you\s+there|you\s+there|ping|welcome)?[\s,;:!.?\-]*$", re.IGNORECASE
)
_STATUS = re.compile(
    r"\b(?:status|progress|eta|how\s+far)\b"
    r"|\bhow(?:'s|’s|\s+is|\s+are)\b.*\bgoing\b"
    r"|\bwhat(?:'s|’s|\s+is|\s+are)?\s+(?:you\s+)?(?:doing|working\s+on|up\s+to)\b"
    r"|\bare\s+you\s+(?:done|finished|busy|free|working|stuck|ok|okay)\b"
    r"|\bany\s+(?:news|updates?)\b",
    re.IGNORECASE,
)
_REQUEST_WORD = re.compile(rf"(?<![A-Za-z0-9]){_FILLER}\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
#: Ends with a question mark (before any trailing mentions).
_ASKED = re.compile(r"\?[\s!?.]*(?:@[A-Za-z0-9_.\-]+[\s,.!?]*)*$")
_SPACES = re.compile(r"[ \t]{2,}")
#: "help me fix it" asks for the fixing; "have a look at it" for looking at it.
_HELP_ME = re.compile(r"\bhelp\s+(?:me|us)\s+(?:to\s+)?(?=[A-Za-z])", re.IGNORECASE)
_LOOK_AFTER = re.compile(r"(.+?)[,;:]\s*look", re.IGNORECASE)
_A_LOOK = re.compile(r"\b(?:have|take)\s+a\s+(?:quick\s+|closer\s+)?look\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Intent:
    """What a mention asks for. ``task`` is set for ``kind == "task"``;
    ``imperative`` says whether it starts with a verb ("I'll <task>" reads well)."""

    kind: IntentKind
    task: str | None = None
    imperative: bool = False


def _strip_ends(text: str) -> str:
    """Remove mentions, greetings and request filler from both ends until nothing changes."""
    previous = None
    while previous != text:
        previous = text
        text = _LEADING_MENTIONS.sub("", text, count=1)
        text = _LEADING_GREETING.sub("", text, count=1)
        text = _LEADING_FILLER.sub("", text, count=1)
        text = text.lstrip(" \t\r\n,;:-")
        text = _TRAILING_MENTIONS.sub("", text, count=1)
        text = _TRAILING_FILLER.sub("", text, count=1)
        text = _TRAILING_PUNCTUATION.sub("", text, count=1)
    return text.strip()


def _first_word(text: str) -> str:
    match = _FIRST_WORD.match(text)
    return match.group(0).lower() if match else ""


def _tidy(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return text.strip(" \t,;:")


def _imperative(task: str) -> tuple[str, bool]:
    """The task with a leading verb lower-cased ("Create x" -> "create x"), and whether it has one."""
    word = _first_word(task)
    if word in TASK_VERBS:
        return word + task[len(word) :], True
    verb = _from_gerund(word)
    if verb is not None:  # "would you mind reviewing it" -> "review it"
        return verb + task[len(word) :], True
    return task, False


def _from_gerund(word: str) -> str | None:
    """The task verb a word ending in -ing is made from ("fixing" -> "fix", "making" -> "make",
    "running" -> "run"), or None."""
    if not word.endswith("ing") or len(word) < 5:
        return None
    stem = word[:-3]
    for verb in (stem, stem + "e", stem[:-1]):
        if verb in TASK_VERBS and (verb != stem[:-1] or stem[-1] == stem[-2]):
            return verb
    return None


def understand(text: str) -> Intent:
    """Classify a message that mentions an agent and extract its task."""
    text = _A_LOOK.sub("look", _HELP_ME.sub("", text))
    core = _strip_ends(text)
    if not core:
        return Intent("greeting")
    if _first_word(core) in TASK_VERBS:
        task, imperative = _imperative(_tidy(core))
        return Intent("task", task, imperative)
    if _STATUS.search(core):
        return Intent("status")
    asked = _ASKED.search(text) is not None
    if (_REQUEST_WORD.search(text) and not (asked and not _requests_work(text))) or _has_verb(core):
        task = _strip_ends(_tidy(_INNER_FILLER.sub("", core)))
        if looked := _LOOK_AFTER.fullmatch(task):  # "the tests fail, (can you) have a look"
            task = f"look into it ({looked.group(1)})"
        if task:
            task, imperative = _imperative(task)
            return Intent("task", task, imperative)
    if _ONLY_GREETING.match(core):
        return Intent("greeting")
    return Intent("question" if asked else "unclear")


def _requests_work(text: str) -> bool:
    """A request phrase followed by a task verb ("can you look into it", "would you mind fixing it")."""
    for match in _REQUEST_WORD.finditer(text):
        word = _first_word(text[match.end() :].lstrip(" \t,"))
        if word in TASK_VERBS or _from_gerund(word) is not None:
            return True
    return False


def _has_verb(text: str) -> bool:
    """A task verb as a word anywhere, after a comma or "to" ("the build broke, fix it")."""
    return (
        re.search(r"(?:^|[,;:]\s*|\bto\s+)(" + "|".join(sorted(TASK_VERBS)) + r")\b", text, re.IGNORECASE) is not None
    )
