"""The fake Bot API's chat methods: sending, editing, deleting and reacting, by Telegram's rules.

``sendMessage`` parses Telegram's HTML, refuses texts over 4,096 characters
and empty ones, trims whitespace, knows replies and forum topics, follows a
group that became a supergroup (400 with ``migrate_to_chat_id``) and, when
``flood_limit`` is set, answers 429 with ``retry_after`` to a chat that gets
more messages than that in its window, as Telegram does to groups.
``editMessageText`` changes the bot's own messages only, ``deleteMessage``
deletes the bot's messages (others' only as an admin), and
``setMessageReaction`` takes one reaction from Telegram's allowed emoji.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .fakehttp import ParseError, Upload, parse_telegram_html, utf16

__all__ = ["ALLOWED_REACTIONS", "ApiError", "ChatMethods", "FakeChat", "Sent"]

#: A few of the emoji Telegram lets a bot react with ("🦄" is one, "🥑" is not).
ALLOWED_REACTIONS = frozenset(
    ["👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🎉", "🤩", "🙏", "👌", "👀", "🦄", "💯", "⚡", "🏆"]
)


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class Sent:
    """A message the bot sent, as the chat shows it (and as edits and deletion left it)."""

    chat_id: int
    message_id: int
    text: str  # visible text, trimmed like Telegram trims it
    markup: str  # what the bot posted
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_to: int | None
    at: float
    thread: int | None = None
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    deleted: bool = False
    reaction: str | None = None  # the bot's reaction on it
    kind: str = "text"  # or "photo", "document", "video", "audio": a media message, ``text`` its caption
    files: list[Upload] = field(default_factory=list)  # what the bot uploaded with it
    group: str | None = None  # media_group_id of an album

    def bold(self) -> list[str]:
        """The bold stretches of the visible text."""
        return [_slice16(self.text, e["offset"], e["length"]) for e in self.entities if e["type"] == "bold"]

    def mentioned(self) -> list[int]:
        """Telegram users this message mentions by a link to them (notified even without a username)."""
        return [e["user"]["id"] for e in self.entities if e["type"] == "text_mention"]


def _slice16(text: str, offset: int, length: int) -> str:
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le")


@dataclass
class FakeChat:
    id: int
    title: str
    type: str = "supergroup"
    username: str | None = None
    member: bool = True
    migrated_to: int | None = None
    is_forum: bool = False
    next_message_id: int = 1
    message_ids: set[int] = field(default_factory=set)
    posted: dict[int, dict[str, Any]] = field(default_factory=dict)  # people's messages
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)  # topic id -> its creation message
    reactions: dict[int, dict[int, list[str]]] = field(default_factory=dict)  # message -> user -> emoji

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data

    def new_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        self.message_ids.add(message_id)
        return message_id


class ChatMethods:
    """Mixed into the fake server: the methods that change what a chat shows."""

    bot: dict[str, Any]
    chats: dict[int, FakeChat]
    sent: list[Sent]
    admin_of: set[int]
    flood_limit: tuple[int, float] | None
    _buckets: dict[int, tuple[float, float]]

    def _chat(self, chat_id: Any) -> FakeChat:
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == chat_id[1:].lower():
                    return chat
            raise ApiError(400, "Bad Request: chat not found")
        try:
            return self.chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _writable(self, chat_id: Any) -> FakeChat:
        chat = self._chat(chat_id)
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if not chat.member:
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        return chat

    def _check_flood(self, chat: FakeChat) -> None:
        """Telegram's per-chat limit, ``count`` messages per ``window`` seconds: a burst of
        ``count``, then one each ``window / count`` seconds; a message beyond it is answered 429."""
        if self.flood_limit is None:
            return
        count, window = self.flood_limit
        now = time.monotonic()
        tokens, at = self._buckets.get(chat.id, (float(count), now))
        tokens = min(float(count), tokens + (now - at) * count / window)
        if tokens < 0.9:  # a little lenient, as Telegram is: clocks never agree exactly
            needed = (1 - tokens) * window / count
            # Whole seconds, as Telegram says; in a window shortened to run time faster, the same fraction.
            wait: float = (
                max(1, math.ceil(needed)) if window >= 60 else max(0.01, math.ceil(needed * 60 / window) * window / 60)
            )
            self._buckets[chat.id] = (tokens, now)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        self._buckets[chat.id] = (tokens - 1, now)

    @staticmethod
    def _visible(params: dict[str, Any], key: str = "text") -> tuple[str, str, list[dict[str, Any]]]:
        """The markup, visible text and entities of ``text`` (or of a media ``caption``, which may be empty)."""
        markup = str(params.get(key, ""))
        parse_mode = params.get("parse_mode")
        if parse_mode is None:
            return markup, markup, []
        if str(parse_mode).upper() != "HTML":
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        try:
            visible, entities = parse_telegram_html(markup)
        except ParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if key == "caption":
            if utf16(visible) > 1024:
                raise ApiError(400, "Bad Request: message caption is too long")
        elif utf16(visible) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        stripped = visible.strip()
        if not stripped and key == "text":
            raise ApiError(400, "Bad Request: message text is empty")
        lead = utf16(visible[: len(visible) - len(visible.lstrip())])
        return markup, stripped, [{**e, "offset": e["offset"] - lead} for e in entities]

    def _reply_to(self, chat: FakeChat, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {"message_id": params["reply_to_message_id"]}
        if not reply:
            return None
        reply_to = int(reply["message_id"])
        if reply_to not in chat.message_ids:
            if not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            return None
        return reply_to

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        markup, text, entities = self._visible(params)
        if params.get("parse_mode") is None and utf16(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        reply_to = self._reply_to(chat, params)
        thread = int(params["message_thread_id"]) if params.get("message_thread_id") is not None else None
        if thread is not None and thread not in chat.topics:
            raise ApiError(400, "Bad Request: message thread not found")
        self._check_flood(chat)
        message_id = chat.new_message_id()
        self.sent.append(
            Sent(
                chat.id,
                message_id,
                text.strip(),
                markup,
                params.get("parse_mode"),
                entities,
                reply_to,
                time.monotonic(),
                thread,
            )
        )
        result: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat.as_dict(),
                                  "from": self.bot, "text": text.strip()}  # fmt: skip
        if thread is not None:
            result.update(message_thread_id=thread, is_topic_message=True)
        if entities:
            result["entities"] = entities
        return result

    def _own(self, chat: FakeChat, message_id: Any) -> Sent | None:
        return next((s for s in self.sent if s.chat_id == chat.id and s.message_id == int(message_id)), None)

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        sent = self._own(chat, params["message_id"])
        if sent is None or sent.deleted:
            if int(params["message_id"]) in chat.posted:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        if sent.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        markup, text, entities = self._visible(params)
        if text == sent.text and markup == sent.markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                           "markup are exactly the same as a current content and reply markup of the message")  # fmt: skip
        sent.edits.append(sent.text)
        sent.text, sent.markup, sent.entities = text, markup, entities
        return {"message_id": sent.message_id, "date": int(time.time()), "edit_date": int(time.time()),
                "chat": chat.as_dict(), "from": self.bot, "text": text}  # fmt: skip

    async def _api_deleteMessage(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        message_id = int(params["message_id"])
        sent = self._own(chat, message_id)
        if sent is not None and not sent.deleted:
            sent.deleted = True
            return True
        if message_id in chat.posted and chat.id in self.admin_of:
            del chat.posted[message_id]
            return True
        if message_id in chat.posted:
            raise ApiError(400, "Bad Request: message can't be deleted")
        raise ApiError(400, "Bad Request: message to delete not found")

    async def _api_setMessageReaction(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        message_id = int(params["message_id"])
        reaction = params.get("reaction") or []
        emoji = [r.get("emoji") for r in reaction]
        if len(emoji) > 1:
            raise ApiError(400, "Bad Request: REACTIONS_TOO_MANY")
        if any(e not in ALLOWED_REACTIONS for e in emoji):
            raise ApiError(400, "Bad Request: REACTION_INVALID")
        sent = self._own(chat, message_id)
        if sent is None and message_id not in chat.posted:
            raise ApiError(400, "Bad Request: message to react not found")
        if sent is not None:
            sent.reaction = emoji[0] if emoji else None
        chat.reactions.setdefault(message_id, {})[int(self.bot["id"])] = emoji
        return True
