"""What a failed Bot API call means for the relay, decided in one place.

python-telegram-bot raises its own exceptions (``RetryAfter``, ``Forbidden``,
``BadRequest``, ``NetworkError``...) and wraps httpx's under them as the cause.
:func:`classify` maps any of them to an :class:`Outcome`, the handful of
things the transport knows how to do: wait and try again, follow a migrated
chat, mark a chat or the token unusable, fix the request, or skip it. Each call
site (sending, polling, checking chats, connecting, registering the webhook)
then decides what that outcome means for it, without an except-ladder of its
own; where an operator needs the original error it is kept as the cause
(``raise TransportError(...) from exc``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)

__all__ = [
    "TOKEN_REVOKED",
    "Backoff",
    "Failure",
    "Fatal",
    "Outcome",
    "Stopped",
    "classify",
]

#: What an operator reads when Telegram stops accepting a token that used to work.
TOKEN_REVOKED = "Telegram no longer accepts the bot token (401); was it revoked in @BotFather?"


class Stopped(Exception):
    """The transport is stopping: give up the current work without recording it."""


class Fatal(Exception):
    """The bot cannot work any more (token revoked): stop sending until restarted."""


class Outcome(enum.Enum):
    """The kinds of failure the transport acts on differently."""

    #: Telegram's flood limit: wait the seconds it names, then try again.
    FLOOD_WAIT = "flood wait"
    #: No answer in time: try again.
    TIMED_OUT = "timed out"
    #: Network trouble, a 5xx, an unreadable answer: try again after a growing wait.
    UNREACHABLE = "unreachable"
    #: Another program reads this bot's updates (only one may per token).
    CONFLICT = "conflict"
    #: The group became a supergroup with a new id: follow it.
    MIGRATED = "migrated"
    #: The token is refused: nothing works until an operator replaces it.
    TOKEN_REJECTED = "token rejected"
    #: Telegram forbids the bot this chat: it was removed, kicked or blocked.
    BOT_REMOVED = "bot removed"
    #: No chat has this id, as far as the bot can see.
    CHAT_NOT_FOUND = "chat not found"
    #: The chat exists but the bot cannot write there (deactivated, no rights).
    CHAT_CLOSED = "chat closed"
    #: Telegram could not read the HTML: the same text as plain text may pass.
    BAD_MARKUP = "bad markup"
    #: The message replied to is gone: the same text without the reply may pass.
    BAD_REPLY = "bad reply"
    #: Telegram refuses this request for good: skip it.
    REFUSED = "refused"
    #: The request cannot be made at all (a value the HTTP layer cannot encode):
    #: it fails the same way every time, so trying again does not help.
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed call as the transport sees it: the outcome and Telegram's words."""

    outcome: Outcome
    #: Telegram's (or the network's) description; may hold the token, so redact it before logging.
    detail: str
    #: Seconds Telegram asks to wait (``FLOOD_WAIT`` only).
    retry_after: float = 0.0
    #: The chat's new id (``MIGRATED`` only).
    new_chat_id: int | None = None


# Exception types, most specific first. python-telegram-bot raises BadRequest
# and TimedOut as NetworkErrors, so they come before the catch-all rows.
_BY_TYPE: tuple[tuple[type[BaseException], Outcome], ...] = (
    (RetryAfter, Outcome.FLOOD_WAIT),
    (ChatMigrated, Outcome.MIGRATED),
    (InvalidToken, Outcome.TOKEN_REJECTED),
    (Forbidden, Outcome.BOT_REMOVED),
    (BadRequest, Outcome.REFUSED),  # refined by Telegram's wording, see _BAD_REQUEST
    (Conflict, Outcome.CONFLICT),
    (TimedOut, Outcome.TIMED_OUT),
    (httpx.TimeoutException, Outcome.TIMED_OUT),
    (httpx.HTTPError, Outcome.UNREACHABLE),
    (OSError, Outcome.UNREACHABLE),
    (TelegramError, Outcome.UNREACHABLE),  # refined by its cause, see _CAUSES
)

# Telegram's wording of a 400, first match wins (compared in lower case).
_BAD_REQUEST: tuple[tuple[str, Outcome], ...] = (
    ("parse entities", Outcome.BAD_MARKUP),
    ("replied", Outcome.BAD_REPLY),
    ("chat not found", Outcome.CHAT_NOT_FOUND),
    ("group chat was deactivated", Outcome.CHAT_CLOSED),
    ("chat_write_forbidden", Outcome.CHAT_CLOSED),
    ("not enough rights", Outcome.CHAT_CLOSED),
    ("have no rights to send", Outcome.CHAT_CLOSED),
    ("bot is not a member", Outcome.CHAT_CLOSED),
    ("peer_id_invalid", Outcome.CHAT_CLOSED),
)

# What lies under any other TelegramError, first match wins. python-telegram-bot
# wraps httpx's errors, an unparsable answer (ValueError, TelegramError) and
# anything else its HTTP layer raised; only the network kind can pass later.
_CAUSES: tuple[tuple[type[BaseException], Outcome], ...] = (
    (UnicodeError, Outcome.BROKEN),  # a text no wire can carry
    (httpx.HTTPError, Outcome.UNREACHABLE),
    (OSError, Outcome.UNREACHABLE),
    (TelegramError, Outcome.UNREACHABLE),
    (ValueError, Outcome.UNREACHABLE),
)


def _seconds(exc: RetryAfter) -> float:
    """The wait a ``RetryAfter`` asks for, whatever type python-telegram-bot uses."""
    value = getattr(exc, "_retry_after", None)
    if value is None:
        value = exc.retry_after
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


def _first(exc: BaseException, table: tuple[tuple[type[BaseException], Outcome], ...]) -> Outcome | None:
    return next((outcome for kind, outcome in table if isinstance(exc, kind)), None)


def _refine(exc: BaseException, outcome: Outcome) -> Outcome:
    """A 400 by its wording; a generic Telegram error by what caused it."""
    if outcome is Outcome.REFUSED:
        reason = str(exc).lower()
        return next((found for phrase, found in _BAD_REQUEST if phrase in reason), outcome)
    if isinstance(exc, TelegramError) and outcome is Outcome.UNREACHABLE and exc.__cause__ is not None:
        return _first(exc.__cause__, _CAUSES) or Outcome.BROKEN
    return outcome


def classify(exc: BaseException) -> Failure:
    """What a failed Bot API call means: the one mapping every call site consults.

    Anything that is neither a python-telegram-bot, an httpx nor a network
    error is ``BROKEN``: trying the same call again would fail the same way.
    """
    outcome = _refine(exc, _first(exc, _BY_TYPE) or Outcome.BROKEN)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, RetryAfter):
        return Failure(outcome, detail, retry_after=_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Failure(outcome, detail, new_chat_id=exc.new_chat_id)
    return Failure(outcome, detail)


class Backoff:
    """The growing wait between tries after network trouble: it doubles after
    each failure up to ``limit``, and starts over after a success."""

    def __init__(self, initial: float, limit: float) -> None:
        self._initial = initial
        self._limit = limit
        self.delay = initial

    def next(self) -> float:
        """The wait before the next try; the one after it is longer."""
        delay = self.delay
        self.delay = min(delay * 2, self._limit)
        return delay

    def reset(self) -> None:
        """Back to the first, shortest wait."""
        self.delay = self._initial
