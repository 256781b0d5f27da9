"""The exceptions chatbus raises, rooted in :class:`ChatbusError`.

Every error that can reach a person carries a ``code`` (the wire error code of
PROTOCOL.md) and a message written for that person: what went wrong and what
to do. Transports send ``str(error)`` as is; it never contains exception text
from a library or a stack trace.
"""

from __future__ import annotations

import math
from typing import ClassVar

__all__ = [
    "STORE_AWAY",
    "AuthError",
    "ChatbusError",
    "ConfigError",
    "FileRefused",
    "Forbidden",
    "InvalidMessage",
    "MessageTooLarge",
    "NotFound",
    "NotStored",
    "PluginError",
    "RateLimited",
    "StoreError",
    "TransportError",
    "for_people",
]


class ChatbusError(Exception):
    """Root of every chatbus exception."""

    code: str = "INTERNAL_ERROR"


class ConfigError(ChatbusError):
    """A setting is invalid or names something that does not exist."""

    code = "CONFIG_ERROR"


class PluginError(ChatbusError):
    """A plugin could not be loaded or registered."""

    code = "PLUGIN_ERROR"


class AuthError(ChatbusError):
    """Raised by an ``on_auth`` implementation to refuse a user."""

    code = "AUTH_FAILED"


class InvalidMessage(ChatbusError):
    """A message was refused because of its shape or content."""

    code = "INVALID_MESSAGE"


class Forbidden(ChatbusError):
    """The action is not the asker's to take (editing someone else's message)."""

    code = "FORBIDDEN"


class NotFound(ChatbusError):
    """No such message (or file)."""

    code = "NOT_FOUND"


class MessageTooLarge(InvalidMessage):
    """A message's text is longer than the configured maximum."""

    code = "MESSAGE_TOO_LARGE"


class RateLimited(ChatbusError):
    """The ``rate_limit`` hook refused a message; nothing was stored."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        # Whole seconds, at least one: the wait shown in the text, in ``retryAfter``
        # and by every client is the same number, and never "now".
        self.retry_after = float(max(1, math.ceil(float(retry_after) - 1e-9)))
        wait = _format_wait(self.retry_after)
        super().__init__(message or f"You are sending messages too fast. Wait {wait} and send again.")


class FileRefused(ChatbusError):
    """A file was not stored: too big, a type not allowed, not what it claims
    to be, or no room left. ``code`` says which, ``status`` is the HTTP status
    for it, and the text says what to do."""

    #: The HTTP status of each code.
    STATUS: ClassVar[dict[str, int]] = {"FILE_TOO_BIG": 413, "FILE_TYPE": 415, "INVALID_FILE": 400, "STORAGE_FULL": 507}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = self.STATUS.get(code, 400)


class StoreError(ChatbusError):
    """The message store cannot be opened or written; the text is for the operator (it names
    files and addresses), and a person whose action it stopped is told :data:`STORE_AWAY`."""

    code = "STORE_ERROR"
    #: Whether the text is written for the person whose action failed.
    for_people = False
    #: Seconds after which trying again may work (``retryAfter`` of the error frame).
    retry_after: float | None = 1.0


class NotStored(StoreError):
    """A message was refused because the store cannot take it now; the text is for its sender."""

    for_people = True


#: What a person is told when storage failed under what they did (the cause is in the log).
STORE_AWAY = "The chat's storage cannot be reached right now, so that was not done; try again in a moment."


def for_people(exc: ChatbusError) -> str:
    """What to tell the person whose action ``exc`` stopped."""
    return STORE_AWAY if isinstance(exc, StoreError) and not exc.for_people else str(exc)


class TransportError(ChatbusError):
    """A transport failed to start or lost its connection for good."""

    code = "TRANSPORT_ERROR"


def _format_wait(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = (whole + 59) // 60
    return f"{minutes} minutes"
