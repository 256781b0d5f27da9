"""The built-in ``parse_message``: @mentions and /commands.

A mention is ``@name`` where the name is 1-64 letters, digits, ``_``, ``-`` or
``.``, not preceded by a name character (so an e-mail address is not a
mention). Trailing dots and hyphens are punctuation, not part of the name, and
a configured suffix (``-bot`` by default) is removed: ``@alice-bot.`` is
``alice``. Each name is reported once, in order of first appearance.

A command is text that starts with ``/name``; ``/status@SomeBot`` is the
command ``status``. Its arguments are split the way a shell splits words,
quotes respected (unbalanced quotes fall back to splitting on whitespace).
"""

from __future__ import annotations

import re
import shlex

from chatbus import Parsed, PluginSettings, hookimpl

__all__ = ["MentionParser", "MentionSettings", "parse", "parse_command", "parse_mentions"]

_MENTION = re.compile(r"(?<![A-Za-z0-9_.\-@])@([A-Za-z0-9_.\-]+)")
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]+))?(?=\s|$)(.*)", re.DOTALL)


def parse_mentions(text: str, strip_suffix: str = "-bot") -> tuple[str, ...]:
    """The names mentioned in ``text``, each once, in order of first appearance."""
    if "@" not in text:
        return ()
    found: dict[str, None] = {}
    suffix = strip_suffix.lower()
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip(".-")
        if suffix and len(name) > len(suffix) and name.lower().endswith(suffix):
            name = name[: -len(suffix)].rstrip(".-")
        if 1 <= len(name) <= 64:
            found.setdefault(name, None)
    return tuple(found)


def parse_command(text: str) -> tuple[str | None, tuple[str, ...]]:
    """``("status", ("alice",))`` for ``/status@Bot alice``; ``(None, ())`` otherwise."""
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return None, ()
    match = _COMMAND.match(stripped)
    if match is None:
        return None, ()
    rest = match.group(3).strip()
    try:
        args = tuple(shlex.split(rest))
    except ValueError:
        args = tuple(rest.split())
    return match.group(1).lower(), args


def parse(text: str, strip_suffix: str = "-bot") -> Parsed:
    """Mentions, command and arguments of ``text``."""
    command, args = parse_command(text)
    return Parsed(parse_mentions(text, strip_suffix), command, args)


class MentionSettings(PluginSettings):
    """``[mentions]``: the built-in mention parser."""

    strip_suffix: str = "-bot"


class MentionParser:
    """Registered as ``mentions``; configured by the ``[mentions]`` section."""

    name = "mentions"
    settings_model = MentionSettings

    def __init__(self, settings: MentionSettings) -> None:
        self.strip_suffix = settings.strip_suffix

    @hookimpl(trylast=True)
    def parse_message(self, text: str) -> Parsed:
        return parse(text, self.strip_suffix)
