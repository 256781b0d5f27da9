"""Settings of the Telegram transport: the ``[telegram]`` section.

Read from ``chatbus.toml`` (``[telegram]``), ``CHATBUS_TELEGRAM__*`` variables,
or the earlier system's ``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_CHAT_ID``.
``chat_ids`` accepts one id, a comma-separated list, a JSON list, or a
mapping from chat id to hub room; ``-100123:dev`` in a list maps one chat to
the room ``dev``. Chats without a room use ``room`` (default ``general``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from chatbus.core.message import DEFAULT_ROOM, MANAGER_ROLE, valid_name
from chatbus.core.transport import TransportSettings

from .formatting import DEFAULT_FORMAT, check_template

__all__ = ["ChatKey", "TelegramSettings", "parse_chat_ids"]

#: A configured chat: its numeric id, or ``@username`` for a public group or channel.
ChatKey = int | str

_SECRET_CHARS = frozenset(string.ascii_letters + string.digits + "_-")


def _chat_key(value: Any) -> ChatKey:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a chat id")  # noqa: TRY004 - pydantic reports ValueError as a setting error
    if isinstance(value, int):
        if value == 0:
            raise ValueError("0 is not a chat id")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            if text.startswith("@") and len(text) > 1 and valid_name(text[1:]):
                return text
            raise ValueError(
                f"{value!r} is not a chat id: use the number (e.g. -1001234567890) or @channelusername"
            ) from None
        return _chat_key(number)
    raise ValueError(f"{value!r} is not a chat id")


def _room(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    if not valid_name(value):
        raise ValueError(f"{value!r} is not a room name: use 1-64 letters, digits, '_', '-' or '.'")
    return str(value)


def parse_chat_ids(value: Any, default_room: str = DEFAULT_ROOM) -> dict[ChatKey, str]:
    """Every accepted spelling of ``chat_ids`` as a mapping chat -> room.

    ``-100123``, ``"-100123, -100456"``, ``"-100123:dev"``, ``'["-100123", -100456]'``,
    ``'{"-100123": "dev"}'``, a list or a mapping.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(
                    'not valid JSON; write a list like [-100123] or a mapping like {"-100123": "dev"}'
                ) from None
        else:
            value = [part for part in text.split(",") if part.strip()]
    if isinstance(value, (int, str)):
        value = [value]
    out: dict[ChatKey, str] = {}
    if isinstance(value, Mapping):
        for key, room in value.items():
            out[_chat_key(key)] = _room(room, default_room)
        return out
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str) and ":" in item:
                key, _, room = item.partition(":")
                out[_chat_key(key)] = _room(room.strip(), default_room)
            else:
                out[_chat_key(item)] = default_room
        return out
    raise ValueError("expected a chat id, a comma-separated list, a JSON list or a mapping chat id -> room")


def _role_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or not value.isprintable():
        raise ValueError("a role is text of at most 64 characters")
    return value.strip()


def _json_mapping(text: str, example: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"not valid JSON; write a mapping such as {example}") from None


def _user_key(key: Any) -> str:
    """``123``, ``"123"`` or ``"tg:123"`` as ``tg:123``."""
    text = str(key).strip().removeprefix("tg:")
    if isinstance(key, bool) or not text.lstrip("-").isdigit():
        raise ValueError(f"{key!r} is not a Telegram user id: use the number, e.g. 123456789")
    return f"tg:{int(text)}"


def _topic_key(key: Any) -> str:
    """``"-100123:42"`` (a chat's topic) as it is, checked; otherwise a topic's name."""
    text = str(key).strip()
    chat, sep, thread = text.rpartition(":")
    if sep and chat.lstrip("-").isdigit() and thread.isdigit():
        return f"{int(chat)}:{int(thread)}"
    if not text or len(text) > 128:
        raise ValueError(f"{key!r} is not a topic: use 'chat id:topic id' (e.g. -1001234567890:42) or its name")
    return text


class TelegramSettings(TransportSettings):
    """Everything the Telegram transport reads from the ``telegram`` section."""

    token: SecretStr = Field(description="the bot token from @BotFather")
    room: str = Field(DEFAULT_ROOM, description="hub room of chats listed without one")
    chat_ids: dict[ChatKey, str] = Field(description="the chats to relay, each mapped to a hub room")
    format: str = Field(DEFAULT_FORMAT, description="HTML template of relayed messages: {sender}, {text}, {room}")
    base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL; the token is appended")
    base_file_url: str | None = Field(
        None, description="where files are downloaded, the token appended (default: base_url with /file/bot)"
    )
    role: str = Field("user", description="the role Telegram users get in the hub (never manager)")
    roles: dict[str, str] = Field(
        default_factory=dict, description="roles of particular Telegram users: user id (123 or tg:123) -> role"
    )
    topics: dict[str, str] = Field(
        default_factory=dict, description="forum topics to rooms: 'chat id:topic id' or a topic's name -> room"
    )
    presence_timeout: float = Field(300.0, gt=0, le=86_400, description="seconds without a post before offline")
    edit_interval: float = Field(1.0, ge=0, le=60, description="least seconds between two edits in one chat")
    merge: bool = Field(True, description="merge messages queued for a chat while its flood limit holds them")
    poll_timeout: int = Field(30, ge=0, le=50, description="seconds one long poll (getUpdates) waits")
    drop_pending_updates: bool = Field(False, description="ignore what was sent while chatbus was down")
    webhook_url: str | None = Field(None, description="public HTTPS URL; when set, webhook mode replaces polling")
    webhook_listen: str = Field("127.0.0.1", description="address the webhook server listens on")
    webhook_port: int = Field(8443, ge=0, le=65535, description="port the webhook server listens on")
    webhook_path: str | None = Field(None, description="path of the webhook (default: the path of webhook_url)")
    webhook_secret: SecretStr | None = Field(None, description="secret Telegram sends with each update")
    overall_rate: float = Field(30.0, ge=0, description="messages per second to all chats (0: no limit)")
    group_rate: float = Field(20.0, ge=0, description="messages per minute to one group (0: no limit)")
    retry_initial_delay: float = Field(1.0, gt=0, le=60, description="first wait after a network error or 5xx")
    retry_max_delay: float = Field(30.0, gt=0, le=3600, description="longest wait between retries")
    request_timeout: float = Field(10.0, gt=0, le=300, description="seconds to wait for one Bot API answer")
    catch_up: int = Field(200, ge=0, description="messages sent while Telegram was unreachable to relay at start")
    proxy: str | None = Field(None, description="HTTP or SOCKS proxy URL for the Bot API")

    @field_validator("token", mode="before")
    @classmethod
    def _token_present(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the bot token is empty; set CHATBUS_TELEGRAM__TOKEN or TELEGRAM_BOT_TOKEN")
        if any(ch.isspace() for ch in text.strip()) or "/" in text:
            raise ValueError("the bot token looks wrong (spaces or '/'); copy it again from @BotFather")
        return text.strip()

    @field_validator("room")
    @classmethod
    def _valid_room(cls, value: str) -> str:
        return _room(value, DEFAULT_ROOM)

    @field_validator("chat_ids", mode="before")
    @classmethod
    def _parse_chat_ids(cls, value: Any, info: ValidationInfo) -> Any:
        chats = parse_chat_ids(value, info.data.get("room", DEFAULT_ROOM))
        if not chats:
            raise ValueError("no chat ids; set CHATBUS_TELEGRAM__CHAT_IDS or TELEGRAM_CHAT_ID to your group's id")
        return chats

    @field_validator("format")
    @classmethod
    def _valid_format(cls, value: str) -> str:
        check_template(value)
        return value

    @field_validator("base_url", "base_file_url")
    @classmethod
    def _valid_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL such as https://api.telegram.org/bot")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _valid_webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected the public https:// address Telegram should post updates to")
        return value.strip()

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _valid_secret(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or text == "":
            return None
        if not isinstance(text, str) or not 1 <= len(text) <= 256 or not set(text) <= _SECRET_CHARS:
            raise ValueError("the webhook secret is 1-256 letters, digits, '_' or '-'")
        return text

    @field_validator("role")
    @classmethod
    def _valid_role(cls, value: str) -> str:
        role = _role_text(value)
        if role == MANAGER_ROLE:
            raise ValueError(
                "telegram.role gives every Telegram user a role; manager is given only to particular people: "
                'use telegram.roles, e.g. {"123456789": "manager"}'
            )
        return role

    @field_validator("roles", mode="before")
    @classmethod
    def _valid_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _json_mapping(value, '{"123456789": "manager"}')
        if not isinstance(value, Mapping):
            raise ValueError('expected a mapping of Telegram user ids to roles, e.g. {"123456789": "manager"}')  # noqa: TRY004 - pydantic reports ValueError as a setting error
        return {_user_key(key): _role_text(role) for key, role in value.items()}

    @field_validator("topics", mode="before")
    @classmethod
    def _valid_topics(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _json_mapping(value, '{"-1001234567890:42": "dev"}')
        if not isinstance(value, Mapping):
            raise ValueError('expected a mapping of topics to rooms, e.g. {"-1001234567890:42": "dev"}')  # noqa: TRY004 - pydantic reports ValueError as a setting error
        return {_topic_key(key): _room(room, DEFAULT_ROOM) for key, room in value.items()}

    @model_validator(mode="after")
    def _delays_ordered(self) -> TelegramSettings:
        if self.retry_max_delay < self.retry_initial_delay:
            raise ValueError("retry_max_delay must not be shorter than retry_initial_delay")
        return self

    def role_for(self, user_id: str) -> str:
        """The hub role of Telegram user ``tg:<id>``: theirs in ``roles``, else ``role``."""
        return self.roles.get(user_id, self.role)

    @property
    def webhook(self) -> bool:
        """True in webhook mode (``webhook_url`` set), False when long polling."""
        return self.webhook_url is not None

    def webhook_route(self) -> str:
        """The path the webhook server answers on."""
        path = self.webhook_path if self.webhook_path is not None else urlsplit(self.webhook_url or "").path
        return path.lstrip("/")

    def file_url(self) -> str:
        """Where python-telegram-bot downloads files: ``base_file_url``, else ``base_url``
        with its last ``/bot`` made ``/file/bot`` (as for Telegram and a self-hosted server)."""
        if self.base_file_url is not None:
            return self.base_file_url
        head, found, tail = self.base_url.rpartition("/bot")
        return f"{head}/file/bot{tail}" if found else self.base_url

    def public_base_url(self) -> str:
        """``base_url`` safe for logs (a token written into it is hidden)."""
        return self.base_url.replace(self.token.get_secret_value(), "<token>")
