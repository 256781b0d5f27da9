"""The Telegram transport: Telegram groups and chatbus rooms in one conversation.

Registered as the ``telegram`` entry point. Configure it in the ``[telegram]``
section of ``chatbus.toml`` or with ``CHATBUS_TELEGRAM__*`` variables (the
earlier ``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_CHAT_ID`` work too)::

    [telegram]
    token = "123456:ABC..."
    chat_ids = {"-1001234567890" = "general"}
"""

from __future__ import annotations

from .formatting import DEFAULT_FORMAT, MAX_MESSAGE_LENGTH, render, split_text
from .inbound import name_to_id
from .settings import TelegramSettings, parse_chat_ids
from .transport import TelegramTransport

__all__ = [
    "DEFAULT_FORMAT",
    "MAX_MESSAGE_LENGTH",
    "TelegramSettings",
    "TelegramTransport",
    "name_to_id",
    "parse_chat_ids",
    "render",
    "split_text",
]
