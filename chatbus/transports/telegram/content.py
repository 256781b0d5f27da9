"""What a Telegram message says, as text the web chat can show.

Pure functions over python-telegram-bot objects. Telegram keeps a link's
address and a mention's person in entities beside the text; the hub keeps
text only, so a hyperlink becomes ``text (url)`` (or just the URL when the
text is the URL). Media are never dropped without a word: a photo, a file, a
voice message, a sticker, a video, a place or a poll arrives as a clear
placeholder (``[photo] caption``, ``[document report.pdf]``,
``[location 48.85837, 2.29448]``, ``[poll] Lunch? (pizza / sushi)``).
"""

from __future__ import annotations

from collections.abc import Callable

from telegram import Message, MessageEntity

__all__ = ["MEDIA_KINDS", "expand_links", "media_placeholder", "message_text"]

#: The kinds of media that arrive as a placeholder, in the order they are looked for.
MEDIA_KINDS = (
    "photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker",
    "location", "venue", "poll", "contact", "dice", "story", "game", "invoice", "paid_media", "checklist",
)  # fmt: skip


def _coordinates(latitude: float, longitude: float) -> str:
    return f"{latitude:.5f}, {longitude:.5f}"


def media_placeholder(message: Message) -> str | None:
    """``[photo]``, ``[document name.pdf]``... for a message that carries media; None for plain text."""
    kind = next((name for name in MEDIA_KINDS if getattr(message, name, None)), None)
    if kind is None:
        return None
    return _describe(message, kind)


def _describe(message: Message, kind: str) -> str:
    if kind == "document" and message.document is not None:
        return f"[document {message.document.file_name or 'without a name'}]"
    if kind == "audio" and message.audio is not None:
        title = " - ".join(part for part in (message.audio.performer, message.audio.title) if part)
        return f"[audio {title or message.audio.file_name or 'without a title'}]"
    if kind == "sticker" and message.sticker is not None:
        return f"[sticker {message.sticker.emoji}]" if message.sticker.emoji else "[sticker]"
    if kind == "venue" and message.venue is not None:
        venue = message.venue
        where = _coordinates(venue.location.latitude, venue.location.longitude)
        return f"[place {venue.title}, {venue.address} ({where})]"
    if kind == "location" and message.location is not None:
        return f"[location {_coordinates(message.location.latitude, message.location.longitude)}]"
    if kind == "poll" and message.poll is not None:
        options = " / ".join(option.text for option in message.poll.options)
        return f"[poll] {message.poll.question} ({options})"
    if kind == "contact" and message.contact is not None:
        name = " ".join(part for part in (message.contact.first_name, message.contact.last_name) if part)
        return f"[contact {name}]"
    if kind == "dice" and message.dice is not None:
        return f"[dice {message.dice.emoji} {message.dice.value}]"
    names = {"voice": "voice message", "video_note": "video message", "animation": "GIF", "paid_media": "paid media"}
    return f"[{names.get(kind, kind)}]"


def _index(text: str, utf16_offset: int) -> int:
    """The index in ``text`` of a position Telegram gives in UTF-16 code units."""
    return len(text.encode("utf-16-le")[: utf16_offset * 2].decode("utf-16-le", "ignore"))


def expand_links(text: str, entities: tuple[MessageEntity, ...] | list[MessageEntity], budget: int) -> str:
    """``text`` with each hyperlink's address written after it: ``docs (https://...)``.

    A link whose text is already its address stays as it is. Addresses are
    added in order while the text stays within ``budget`` characters (the
    hub's limit), so a long message with many links is never refused for them.
    """
    links = sorted((e for e in entities if e.type == MessageEntity.TEXT_LINK and e.url), key=lambda e: e.offset)
    if not links:
        return text
    out: list[str] = []
    position = 0
    room = budget - len(text)
    for entity in links:
        end = _index(text, entity.offset + entity.length)
        label = text[_index(text, entity.offset) : end]
        addition = f" ({entity.url})"
        if label.strip() == entity.url or len(addition) > room:
            continue
        out.append(text[position:end])
        out.append(addition)
        room -= len(addition)
        position = end
    out.append(text[position:])
    return "".join(out)


def message_text(message: Message, *, budget: int, command: Callable[[str], str | None] | None = None) -> str | None:
    """The text to relay for ``message``: its text or caption with link addresses,
    after a media placeholder when it carries media. None when there is nothing
    to relay (a service message, or a command ``command`` says is not for us)."""
    body = message.text if message.text is not None else message.caption
    entities = message.entities if message.text is not None else message.caption_entities
    if body and command is not None:
        addressed = command(body)
        if addressed is None:
            return None
        if addressed != body:
            return addressed  # a command for this bot: its words, without the bot's name
    placeholder = media_placeholder(message)
    if body:
        budget -= len(placeholder) + 1 if placeholder else 0
        body = expand_links(body, entities, budget)
    parts = [part for part in (placeholder, body) if part]
    return " ".join(parts) if parts else None
