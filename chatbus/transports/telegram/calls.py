"""Bot API calls that change a chat, made until they are done or refused for good.

Sending, editing and deleting messages and setting the bot's reaction all
wait out flood limits (``retry_after``) and network trouble (a growing
backoff), follow a group that became a supergroup, fall back to plain text
when Telegram cannot read the HTML and drop a reply to a message that is
gone. What each failure means is decided by ``errors.py``; this module says
what to do about it. Each flood wait is noted per chat, so the chat's lane
(``lanes.py``) knows it is being held back and merges what waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from telegram import Message as TgMessage
from telegram import ReactionTypeEmoji, ReplyParameters
from telegram.constants import ParseMode

from .errors import TOKEN_REVOKED, Backoff, Failure, Fatal, Outcome, Stopped, classify
from .formatting import Rendered
from .session import Session
from .settings import ChatKey

__all__ = ["GROUP_PERIOD", "Attempt", "Calls"]

log = logging.getLogger("chatbus.telegram")

T = TypeVar("T")

#: Seconds over which ``telegram.group_rate`` is counted (Telegram's limit is per minute), and
#: after a 429 during which a chat counts as held back. The benchmark runs time faster through it.
GROUP_PERIOD = 60.0

#: Telegram's words for an edit, deletion or reaction with nothing (left) to do.
_NOTHING_TO_DO = ("message is not modified", "message to edit not found", "message to delete not found",
                  "message can't be deleted", "message can't be edited", "reaction_invalid", "message_id_invalid",
                  "message to react not found")  # fmt: skip


@dataclass(slots=True)
class Attempt:
    """How the next try of one call is made: it changes as Telegram refuses parts of it."""

    text: str
    parse_mode: str | None
    reply_mid: int | None
    backoff: Backoff


class Calls:
    """The Bot API calls the relay makes to chats, each tried until done or refused."""

    def __init__(self, session: Session) -> None:
        self._session = session
        #: When each chat last made the relay wait for its flood limit (monotonic seconds).
        self.flooded_at: dict[ChatKey, float] = {}
        self._limiters: dict[ChatKey, AsyncLimiter] = {}
        rate = session.settings.overall_rate
        self._overall = AsyncLimiter(rate, 1) if rate > 0 else None

    def limiter(self, chat: ChatKey) -> AsyncLimiter | None:
        """The group rate of ``chat`` (``telegram.group_rate`` messages a minute); None for private chats."""
        rate = self._session.settings.group_rate
        if rate <= 0 or (isinstance(chat, int) and chat > 0):
            return None
        limiter = self._limiters.get(chat)
        if limiter is None:
            limiter = self._limiters[chat] = AsyncLimiter(rate, GROUP_PERIOD)
        return limiter

    def held_back(self, chat: ChatKey) -> bool:
        """Whether ``chat``'s flood limit holds messages back now (no room, or a 429 in the last minute)."""
        limiter = self.limiter(chat)
        flooded = self.flooded_at.get(chat)
        recently = flooded is not None and time.monotonic() - flooded < GROUP_PERIOD
        return recently or (limiter is not None and not limiter.has_capacity())

    async def _room(self, chat: ChatKey | None, count: int = 1) -> None:
        """Wait for room in the bot's overall rate, and in ``chat``'s group rate when sending ``count``
        messages (an album is one message per file) to it."""
        for limiter in (self.limiter(chat) if chat is not None else None, self._overall):
            if limiter is not None:
                await self._session.until_stopped(limiter.acquire(min(count, limiter.max_rate)))

    def _attempt(self, part: Rendered | None, reply_mid: int | None = None) -> Attempt:
        s = self._session.settings
        text = part.html if part is not None else ""
        mode = ParseMode.HTML if part is not None else None
        return Attempt(text, mode, reply_mid, Backoff(s.retry_initial_delay, s.retry_max_delay))

    async def send(
        self, chat: ChatKey, part: Rendered, reply_mid: int | None, thread: int | None = None
    ) -> TgMessage | None:
        """Send one message; None when Telegram refuses it for good."""
        bot, state = self._session.live_bot(), self._session.state

        async def call(attempt: Attempt) -> TgMessage:
            await self._room(chat)
            reply = ReplyParameters(attempt.reply_mid, allow_sending_without_reply=True) if attempt.reply_mid else None
            return await bot.send_message(
                chat_id=state.current(chat),
                text=attempt.text,
                parse_mode=attempt.parse_mode,
                reply_parameters=reply,
                message_thread_id=thread,
            )

        return await self._until_done("sendMessage", chat, call, part, self._attempt(part, reply_mid))

    async def upload(
        self,
        method: str,
        chat: ChatKey,
        send: Callable[[Attempt], Awaitable[T]],
        caption: Rendered | None,
        reply_mid: int | None,
        count: int = 1,
    ) -> T | None:
        """Send files with ``send`` (a photo, a document, an album of ``count``), the caption and reply
        in the attempt; paced, waited out and retried like a message. None when Telegram refuses them."""

        async def call(attempt: Attempt) -> T:
            await self._room(chat, count)
            return await send(attempt)

        return await self._until_done(method, chat, call, caption, self._attempt(caption, reply_mid))

    async def edit_caption(self, chat: ChatKey, message_id: int, part: Rendered) -> bool:
        """Change the caption of the bot's photo or file ``message_id``; False when Telegram will not."""
        bot, state = self._session.live_bot(), self._session.state

        async def call(attempt: Attempt) -> Any:
            await self._room(None)
            return await bot.edit_message_caption(
                chat_id=state.current(chat), message_id=message_id, caption=attempt.text, parse_mode=attempt.parse_mode
            )

        return await self._until_done("editMessageCaption", chat, call, part, self._attempt(part)) is not None

    async def edit(self, chat: ChatKey, message_id: int, part: Rendered) -> bool:
        """Change the text of the bot's message ``message_id``; False when Telegram will not."""
        bot, state = self._session.live_bot(), self._session.state

        async def call(attempt: Attempt) -> Any:
            await self._room(None)
            return await bot.edit_message_text(
                chat_id=state.current(chat), message_id=message_id, text=attempt.text, parse_mode=attempt.parse_mode
            )

        return await self._until_done("editMessageText", chat, call, part, self._attempt(part)) is not None

    async def delete(self, chat: ChatKey, message_id: int) -> bool:
        """Delete message ``message_id``; False when Telegram will not (too old, not the bot's to delete)."""
        bot, state = self._session.live_bot(), self._session.state

        async def call(_attempt: Attempt) -> bool:
            await self._room(None)
            return await bot.delete_message(chat_id=state.current(chat), message_id=message_id)

        return await self._until_done("deleteMessage", chat, call, None, self._attempt(None)) is not None

    async def react(self, chat: ChatKey, message_id: int, emoji: str | None) -> bool:
        """Set the bot's reaction on ``message_id`` to ``emoji`` (None: no reaction)."""
        bot, state = self._session.live_bot(), self._session.state
        reaction = [ReactionTypeEmoji(emoji)] if emoji else []

        async def call(_attempt: Attempt) -> bool:
            await self._room(None)
            return await bot.set_message_reaction(chat_id=state.current(chat), message_id=message_id, reaction=reaction)

        return await self._until_done("setMessageReaction", chat, call, None, self._attempt(None)) is not None

    async def _until_done(
        self,
        method: str,
        chat: ChatKey,
        call: Callable[[Attempt], Awaitable[T]],
        part: Rendered | None,
        attempt: Attempt,
    ) -> T | None:
        session = self._session
        while True:
            if session.stopping.is_set():
                raise Stopped
            if session.condition.fatal:
                raise Fatal
            try:
                result = await call(attempt)
            except Exception as exc:  # noqa: BLE001 - a Bot API, network or unreadable-answer failure: classify decides
                failure = classify(exc)
            else:
                session.condition.link_ok()
                session.condition.chat_ok(chat)
                return result
            if not await self._failed(method, chat, part, attempt, failure):
                return None
            session.retried(method, failure)

    async def _failed(
        self, method: str, chat: ChatKey, part: Rendered | None, attempt: Attempt, failure: Failure
    ) -> bool:
        """Act on a failed call: True to try again (the attempt perhaps changed), False to give it up."""
        session, condition = self._session, self._session.condition
        match failure.outcome:
            case Outcome.FLOOD_WAIT:
                log.info("telegram: flood limit in chat %s; waiting %.0f s", chat, failure.retry_after)
                self.flooded_at[chat] = time.monotonic()
                await session.sleep(failure.retry_after)
                return True
            case Outcome.MIGRATED:
                if isinstance(chat, int) and failure.new_chat_id is not None:
                    await session.state.record_migration(session.store(), chat, failure.new_chat_id)
                    return True
                condition.chat_failed(
                    chat, f"this chat moved to {failure.new_chat_id}; put that id in telegram.chat_ids"
                )
                return False
            case Outcome.TOKEN_REJECTED:
                condition.set_fatal(TOKEN_REVOKED)
                raise Fatal
            case Outcome.BOT_REMOVED:
                condition.chat_failed(chat, f"{condition.redact(failure.detail)}; add the bot back to the chat")
                return False
            case Outcome.BAD_MARKUP if attempt.parse_mode is not None and part is not None:
                log.warning(
                    "telegram: Telegram could not read the HTML of a message (%s); as plain text", failure.detail
                )
                attempt.text, attempt.parse_mode = part.plain, None
                return True
            case Outcome.BAD_REPLY if attempt.reply_mid is not None:
                attempt.reply_mid = None
                return True
            case Outcome.CHAT_NOT_FOUND | Outcome.CHAT_CLOSED:
                condition.chat_failed(
                    chat, f"{condition.redact(failure.detail)}; check the chat id and the bot's rights"
                )
                return False
            case Outcome.BAD_MARKUP | Outcome.BAD_REPLY | Outcome.REFUSED:
                self._refused(method, chat, failure)
                return False
        return await self._trouble(method, chat, attempt, failure)

    def _refused(self, method: str, chat: ChatKey, failure: Failure) -> None:
        detail = failure.detail.lower()
        if method != "sendMessage" and any(words in detail for words in _NOTHING_TO_DO):
            log.debug("telegram: %s in chat %s: nothing to do (%s)", method, chat, failure.detail)
        elif method == "sendMessage":
            log.error("telegram: Telegram refused a message for chat %s: %s; it is skipped", chat, failure.detail)
        else:
            log.warning("telegram: Telegram refused %s in chat %s: %s", method, chat, failure.detail)

    async def _trouble(self, method: str, chat: ChatKey, attempt: Attempt, failure: Failure) -> bool:
        """Network trouble, timeouts, 5xx, unreadable answers, or a request that cannot be made."""
        session, condition = self._session, self._session.condition
        if session.stopping.is_set():
            raise Stopped
        if failure.outcome is Outcome.BROKEN:
            reason = condition.redact(failure.detail)
            log.error("telegram: %s for chat %s cannot be made (%s); it is skipped", method, chat, reason)
            return False
        condition.link_trouble(failure, "cannot send to the Telegram Bot API")
        await session.sleep(attempt.backoff.next())
        return True
