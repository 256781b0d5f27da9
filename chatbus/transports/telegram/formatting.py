"""Turning hub messages into Telegram messages: HTML escaping and splitting.

Relayed messages use Telegram's HTML parse mode, the one whose escaping is
simple and complete: ``&``, ``<`` and ``>`` in text become entities. Texts
longer than a Telegram message are split *before* escaping, so markup is never
cut inside a tag or an entity: each part is escaped and wrapped in the
template on its own. Telegram counts length in UTF-16 code units of the text
after parsing, so that is what is measured here.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = [
    "DEFAULT_FORMAT",
    "MAX_MESSAGE_LENGTH",
    "Rendered",
    "check_template",
    "escape",
    "render",
    "split_text",
    "telegram_mentions",
    "utf16_length",
    "visible_text",
]

#: Telegram's limit for one text message, in UTF-16 code units after parsing.
MAX_MESSAGE_LENGTH = 4096

#: ``sender: text`` with the sender in bold.
DEFAULT_FORMAT = "<b>{sender}</b>: {text}"

_FIELDS = frozenset({"sender", "text", "room"})
# The tags Telegram's HTML parse mode understands.
_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
        "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (which no wire format can carry) as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def escape(text: str) -> str:
    """Text made safe for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.problem = self.problem or f"<{tag}> is not a tag Telegram understands"
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problem = self.problem or f"</{tag}> does not close the last opened tag"
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(markup: str) -> str:
    """What Telegram shows for ``markup`` in HTML parse mode (tags removed, entities decoded)."""
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def check_template(template: str) -> None:
    """Raise ``ValueError`` unless ``template`` is a usable relay format.

    It must be a ``str.format`` template using only ``{sender}``, ``{text}``
    and ``{room}``, contain ``{text}``, and be well-formed Telegram HTML.
    """
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(
            f"the format is not a valid template ({exc}); write e.g. <b>{{sender}}</b>: {{text}}"
        ) from None
    if "text" not in fields:
        raise ValueError("the format must contain {text}, e.g. <b>{sender}</b>: {text}")
    unknown = fields - _FIELDS
    if unknown:
        raise ValueError(f"the format may use only {{sender}}, {{text}} and {{room}}, not {{{min(unknown)}}}")
    sample = template.format(sender="sender", text="text", room="room")
    parser = _Visible()
    parser.feed(sample)
    parser.close()
    if parser.problem or parser.open:
        problem = parser.problem or f"<{parser.open[-1]}> is never closed"
        raise ValueError(f"the format is not valid Telegram HTML: {problem}; escape a literal < as &lt;")


def _prefix_end(text: str, limit: int) -> int:
    """The largest ``n`` with ``utf16_length(text[:n]) <= limit``."""
    if utf16_length(text) <= limit:
        return len(text)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _last_space(text: str) -> int:
    """Index of the last whitespace character in ``text``, or -1."""
    for index in range(len(text) - 1, -1, -1):
        if text[index].isspace():
            return index
    return -1


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units, in order.

    A part ends at the last line break that fits, else at the last space,
    and inside a word only when a single word is longer than a part. The
    break character itself (one newline or one space) is where one
    Telegram message ends and the next begins; nothing else is dropped,
    except parts that would be only whitespace (Telegram refuses those).
    """
    if limit < 1:
        raise ValueError("the limit must be at least 1")
    parts: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        end = _prefix_end(rest, limit)
        window = rest[:end]
        if rest[end] == "\n":
            cut = end
        else:
            cut = window.rfind("\n")
            if cut <= 0:
                cut = end if rest[end].isspace() else _last_space(window)
        if cut > 0:
            parts.append(rest[:cut])
            rest = rest[cut + 1 :]
        elif cut == 0:
            rest = rest[1:]
        else:
            parts.append(window)
            rest = rest[end:]
    parts.append(rest)
    return [part for part in parts if part.strip()]


@dataclass(frozen=True, slots=True)
class Rendered:
    """One Telegram message: its HTML and the same text without markup."""

    html: str
    plain: str


# "@tg:123", as the hub's mention parser finds a mention (not inside an address).
_TELEGRAM_MENTION = re.compile(r"(?<![A-Za-z0-9_.\-@])@tg:([0-9]{1,20})")
# Room kept in each part for a mention's name, which is longer than "@tg:123".
_NAME_ROOM = 64


def telegram_mentions(text: str) -> list[int]:
    """The Telegram users ``text`` mentions as ``@tg:123``, each once."""
    return list(dict.fromkeys(int(user) for user in _TELEGRAM_MENTION.findall(text)))


def _mentions(markup: str, names: Mapping[int, str]) -> str:
    """``@tg:123`` in escaped text as a Telegram mention of user 123, which notifies them
    even when they have no username: ``<a href="tg://user?id=123">their name</a>``."""

    def link(match: re.Match[str]) -> str:
        user = int(match.group(1))
        return f'<a href="tg://user?id={user}">{escape(names.get(user) or f"tg:{user}")}</a>'

    return _TELEGRAM_MENTION.sub(link, markup)


def render(
    template: str,
    *,
    sender: str,
    text: str,
    room: str,
    limit: int = MAX_MESSAGE_LENGTH,
    names: Mapping[int, str] | None = None,
) -> list[Rendered]:
    """``text`` from ``sender`` as one or more Telegram messages, each within ``limit``.

    Every part carries the template (so each shows who speaks); the room for
    the text is what the template leaves of ``limit``. ``@tg:123`` becomes a
    mention of Telegram user 123, shown by their name in ``names``.
    """
    text = _valid_unicode(text)
    frame = template.format(sender=escape(sender), text="", room=escape(room))
    budget = limit - utf16_length(visible_text(frame))
    mentions = len(_TELEGRAM_MENTION.findall(text))
    if mentions:
        budget -= min(mentions * _NAME_ROOM, budget // 2)
    if budget < 1:
        # A sender name longer than a message: fall back to the bare text.
        template, budget = "{text}", limit
    chunks = split_text(text, budget) or [text.strip() or "(empty message)"]
    out: list[Rendered] = []
    for chunk in chunks:
        body = _mentions(escape(chunk), names or {}) if mentions else escape(chunk)
        markup = template.format(sender=escape(sender), text=body, room=escape(room))
        out.append(Rendered(markup, visible_text(markup)))
    return out
