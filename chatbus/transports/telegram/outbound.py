"""From the hub to Telegram: relaying stored messages to the chats of their room.

Every hub message goes, in id order, to each chat of its room except the one
it came from, as ``sender: text`` in HTML, split into parts when long
(``formatting.py``). A reply to a message is a Telegram reply to that
message's first part in the same chat. The id of the last relayed message is
kept in the store: after a restart, what was stored meanwhile (at most
``telegram.catch_up`` messages) is relayed first, and a message cut short by
a crash sends only its missing parts.

Sending waits out flood limits and network trouble (on this transport's own
task, so the hub is never held up) and gives up on a part only when Telegram
refuses it for good; what each refusal means is decided by ``errors.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from telegram import Message as TgMessage
from telegram import ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError

from chatbus.core.message import Message

from .errors import TOKEN_REVOKED, Backoff, Failure, Fatal, Outcome, Stopped, classify
from .formatting import Rendered, render
from .session import NAME, Session
from .settings import ChatKey

__all__ = ["Outbound"]

log = logging.getLogger("chatbus.telegram")

#: How many hub messages' Telegram ids are kept in memory for replies (the store has them all).
_REPLY_CACHE = 2048


@dataclass(slots=True)
class _Attempt:
    """How the next try of one part is made: it changes as Telegram refuses parts of it."""

    text: str
    parse_mode: str | None
    reply_mid: int | None
    backoff: Backoff


class Outbound:
    """Relays hub messages to Telegram, once each, in order, across restarts."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._ready = asyncio.Event()
        self._warned_fatal = False
        # hub message id -> {Telegram chat id: Telegram message id of its first part}
        self._replies: OrderedDict[int, dict[int | str, int]] = OrderedDict()

    def reset(self) -> None:
        """A new run: hold new messages back until what was missed is caught up."""
        self._ready = asyncio.Event()
        self._warned_fatal = False

    async def deliver(self, message: Message) -> None:
        """Relay one stored hub message to the chats of its room (called in id order)."""
        if self._session.hub is None or self._session.stopping.is_set():
            return
        await self._wait_ready()
        try:
            await self._relay(message)
        except (Stopped, Fatal):
            return

    async def _wait_ready(self) -> None:
        if self._ready.is_set():
            return
        waiters = [asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(self._session.stopping.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def catch_up(self) -> None:
        """Relay what was stored while this transport could not (down, stopped, Telegram away)."""
        state, limit = self._session.state, self._session.settings.catch_up
        try:
            store = self._session.store()
            last = store.last_id
            if last > state.delivered:
                start = state.delivered
                if limit == 0 or last - start > limit:
                    start = await self._skip_old(start, last, limit)
                missed = await store.since(start, max(limit, 1), None) if limit else []
                if missed:
                    log.info("telegram: relaying %d message(s) stored while Telegram was not reached", len(missed))
                for message in missed:
                    if message.id > last:
                        break
                    await self._relay(message, resume=True)
        except (Stopped, Fatal):
            return
        finally:
            self._ready.set()

    async def _skip_old(self, start: int, last: int, limit: int) -> int:
        """Give up on what is too old to catch up: all but the last ``limit`` messages."""
        skipped_to = max(start, last - limit)
        if skipped_to > start:
            log.warning(
                "telegram: messages %d-%d were never relayed and are too old to catch up (telegram.catch_up = %d)",
                start + 1,
                skipped_to,
                limit,
            )
        await self._session.state.mark_delivered(self._session.store(), skipped_to)
        return skipped_to

    async def _relay(self, message: Message, *, resume: bool = False) -> None:
        state, condition = self._session.state, self._session.condition
        if message.id <= state.delivered:
            return
        if condition.fatal:
            if not self._warned_fatal:
                self._warned_fatal = True
                log.error("telegram: not relaying messages from %d on: %s", message.id, condition.fatal)
            raise Fatal
        origin = _origin_chat(message)
        for chat, room in list(state.rooms.items()):
            if room != message.room:
                continue
            if origin is not None and (origin == chat or origin == state.current(chat)):
                continue  # the people in that chat wrote it; they have seen it
            await self._relay_to(message, chat, resume=resume)
        await state.mark_delivered(self._session.store(), message.id)

    async def _relay_to(self, message: Message, chat: ChatKey, *, resume: bool) -> None:
        session = self._session
        parts = render(session.settings.format, sender=message.sender, text=message.text, room=message.room)
        skip = 0
        if resume:
            # After a crash part of it may have gone out already: send only the rest.
            ids = await session.store().external_ids_for(NAME, message.id)
            skip = sum(1 for ext in ids if ext.rpartition(":")[0] in session.state.names(chat))
        reply_mid = await self._reply_target(message.reply_to, chat) if message.reply_to else None
        for index, part in enumerate(parts[skip:], start=skip):
            sent = await self.send(chat, part, reply_mid if index == 0 else None)
            if sent is None:
                return
            external = f"{sent.chat.id}:{sent.message_id}"
            self.remember(message.id, sent.chat.id, sent.message_id)
            await session.store().map_external(NAME, message.id, external)

    def remember(self, hub_id: int, chat_id: int, message_id: int) -> None:
        """Hub message ``hub_id`` is Telegram message ``message_id`` in ``chat_id`` (the first one counts)."""
        entry = self._replies.setdefault(hub_id, {})
        entry.setdefault(chat_id, message_id)
        self._replies.move_to_end(hub_id)
        while len(self._replies) > _REPLY_CACHE:
            self._replies.popitem(last=False)

    async def _reply_target(self, hub_id: int, chat: ChatKey) -> int | None:
        """The Telegram message in ``chat`` that hub message ``hub_id`` is (its first part)."""
        targets = self._session.state.names(chat)
        cached = self._replies.get(hub_id)
        if cached:
            for chat_id, message_id in cached.items():
                if str(chat_id) in targets:
                    return message_id
        store = self._session.store()
        for external in await store.external_ids_for(NAME, hub_id):
            found = _message_in(external, targets)
            if found is not None:
                return found
        original = await store.get(hub_id)
        if original is not None and original.transport == NAME and original.client_id:
            return _message_in(original.client_id, targets)
        return None

    async def send_quietly(self, chat: ChatKey, part: Rendered, reply_mid: int) -> None:
        """Send ``part`` if the transport can; a notice is not worth an error of its own."""
        try:
            await self.send(chat, part, reply_mid)
        except (Stopped, Fatal):
            return

    async def send(self, chat: ChatKey, part: Rendered, reply_mid: int | None) -> TgMessage | None:
        """Send one part until it is sent; None when Telegram refuses it for good."""
        session, s = self._session, self._session.settings
        bot = session.live_bot()
        attempt = _Attempt(part.html, ParseMode.HTML, reply_mid, Backoff(s.retry_initial_delay, s.retry_max_delay))
        while True:
            if session.stopping.is_set():
                raise Stopped
            if session.condition.fatal:
                raise Fatal
            reply = ReplyParameters(attempt.reply_mid, allow_sending_without_reply=True) if attempt.reply_mid else None
            try:
                sent = await bot.send_message(
                    chat_id=session.state.current(chat),
                    text=attempt.text,
                    parse_mode=attempt.parse_mode,
                    reply_parameters=reply,
                )
            except TelegramError as exc:
                failure = classify(exc)
            else:
                session.condition.link_ok()
                session.condition.chat_ok(chat)
                return sent
            if not await self._send_failed(chat, part, attempt, failure):
                return None
            session.retried("sendMessage", failure)

    async def _send_failed(self, chat: ChatKey, part: Rendered, attempt: _Attempt, failure: Failure) -> bool:
        """Act on a failed send: True to try again (the attempt perhaps changed), False to skip the part."""
        session, condition = self._session, self._session.condition
        match failure.outcome:
            case Outcome.FLOOD_WAIT:
                log.info("telegram: flood limit in chat %s; waiting %.0f s", chat, failure.retry_after)
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
            case Outcome.BAD_MARKUP if attempt.parse_mode is not None:
                log.warning(
                    "telegram: Telegram could not read the HTML of a message (%s); sending it as plain text",
                    failure.detail,
                )
                attempt.text, attempt.parse_mode = part.plain, None
                return True
            case Outcome.BAD_REPLY if attempt.reply_mid is not None:
                attempt.reply_mid = None
                return True
            case Outcome.CHAT_NOT_FOUND | Outcome.CHAT_CLOSED:
                reason = condition.redact(failure.detail)
                condition.chat_failed(chat, f"{reason}; check the chat id and the bot's rights")
                return False
            case Outcome.BAD_MARKUP | Outcome.BAD_REPLY | Outcome.REFUSED:
                log.error("telegram: Telegram refused a message for chat %s: %s; it is skipped", chat, failure.detail)
                return False
        # Network trouble, timeouts, 5xx, unreadable answers, or a request that cannot be made.
        if session.stopping.is_set():
            raise Stopped
        if failure.outcome is Outcome.BROKEN:
            reason = condition.redact(failure.detail)
            log.error("telegram: a message for chat %s cannot be sent (%s); it is skipped", chat, reason)
            return False
        condition.link_trouble(failure, "cannot send to the Telegram Bot API")
        await session.sleep(attempt.backoff.next())
        return True


def _message_in(external: str, chats: set[str]) -> int | None:
    """The message id of ``<chat>:<message>`` when the chat is one of ``chats``."""
    chat_part, _, message_part = external.rpartition(":")
    if chat_part in chats and message_part.isdigit():
        return int(message_part)
    return None


def _origin_chat(message: Message) -> int | None:
    """The Telegram chat a hub message came from, if it came from Telegram."""
    if message.transport != NAME or not message.client_id:
        return None
    chat, _, _ = message.client_id.rpartition(":")
    try:
        return int(chat)
    except ValueError:
        return None
