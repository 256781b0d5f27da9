"""What is wrong with the Telegram relay right now, as ``health()`` reports it.

Three kinds of trouble, from the worst: the token is refused (nothing works
until an operator replaces it), the Bot API cannot be reached (retried), or
one chat cannot be used (the bot was removed, the chat is gone). Each change
is logged once, not on every retry.
"""

from __future__ import annotations

import logging

from chatbus.core.transport import Health

from .errors import Failure
from .settings import ChatKey, TelegramSettings

__all__ = ["Condition"]

log = logging.getLogger("chatbus.telegram")


class Condition:
    """The relay's current problems, each logged when it starts and when it ends."""

    def __init__(self, settings: TelegramSettings) -> None:
        self._settings = settings
        #: Why the bot cannot work at all until restarted (the token refused), if it cannot.
        self.fatal: str | None = None
        #: Why the Bot API cannot be used just now, if it cannot.
        self.link_problem: str | None = None
        #: Chats the bot cannot use, and why.
        self.chat_problems: dict[ChatKey, str] = {}
        #: Chats the bot works in, but not fully (privacy mode hides messages), and what to do.
        self.warnings: dict[ChatKey, str] = {}

    def reset(self) -> None:
        """A fresh start: nothing known to be wrong."""
        self.fatal = self.link_problem = None
        self.chat_problems.clear()
        self.warnings.clear()

    def redact(self, text: str) -> str:
        """``text`` safe for logs and health: the bot token hidden."""
        return text.replace(self._settings.token.get_secret_value(), "<token>")

    def set_fatal(self, problem: str) -> None:
        """The bot cannot work any more; nothing is sent until chatbus is restarted."""
        if self.fatal is None:
            log.error("telegram: %s. Telegram is no longer relayed until chatbus is restarted.", problem)
        self.fatal = problem

    def link_trouble(self, failure: Failure, what: str) -> None:
        """The Bot API cannot be used just now (``what`` says for what); it is being retried."""
        problem = f"{what} at {self._settings.public_base_url()}: {self.redact(failure.detail)}; retrying"
        if self.link_problem is None:
            log.warning("telegram: %s", problem)
        else:
            log.debug("telegram: %s", problem)
        self.link_problem = problem

    def conflict(self, failure: Failure) -> None:
        """Another program reads this bot's updates, so Telegram refuses ours."""
        problem = (
            "another program is reading this bot's updates (only one may per token); stop it, "
            f"or it takes messages meant for chatbus ({self.redact(failure.detail)})"
        )
        if self.link_problem != problem:
            log.warning("telegram: %s", problem)
        self.link_problem = problem

    def run_failed(self, what: str, delay: float) -> None:
        """The relay failed unexpectedly (``what``: the error's kind) and starts again in ``delay`` seconds."""
        self.link_problem = (
            f"the Telegram relay failed unexpectedly ({what}; details in the log); starting it again in {delay:g} s"
        )

    def link_ok(self) -> None:
        """The Bot API answered."""
        if self.link_problem is not None:
            log.info("telegram: the Bot API answers again")
        self.link_problem = None

    def chat_failed(self, chat: ChatKey, problem: str) -> None:
        """``chat`` cannot be used; ``problem`` says why and what to do."""
        if self.chat_problems.get(chat) != problem:
            log.error("telegram: chat %s: %s", chat, problem)
        self.chat_problems[chat] = problem

    def chat_ok(self, chat: ChatKey) -> None:
        """A message went to or came from ``chat``, so it works."""
        if self.chat_problems.pop(chat, None) is not None:
            log.info("telegram: chat %s works again", chat)

    def health(self, *, connected: bool) -> Health:
        """The worst problem first; ``connected``: the bot has learned who it is."""
        if self.fatal:
            return Health(False, self.fatal)
        if self.link_problem:
            return Health(False, self.link_problem)
        if not connected:
            return Health(False, "connecting to the Telegram Bot API")
        if self.chat_problems:
            return Health(False, "; ".join(f"chat {chat}: {problem}" for chat, problem in self.chat_problems.items()))
        if self.warnings:
            return Health(True, "ok, but " + "; ".join(f"chat {chat}: {text}" for chat, text in self.warnings.items()))
        return Health(True, "ok")
