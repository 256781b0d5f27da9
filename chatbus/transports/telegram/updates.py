"""From Telegram to the hub: reading updates and handling each one once.

The bot reads updates by long polling (``getUpdates``) or, when
``webhook_url`` is set, from its webhook (``webhook.py``). Each update is
handled once: when polling, the offset of the last handled update is kept
in the store (``state.py``) and only advanced after the update's message is
in the hub; the webhook answers Telegram only then. A restart or a conflict
neither loses nor replays anything.

Messages, edits and reactions go to ``receive.py``; changes of the bot's own
membership in a chat show in the transport's health. A message with a file
to fetch, and what follows it from the same chat meanwhile, is handled off
this loop, in order, by ``backlog.py``, so other chats do not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings

from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

from chatbus.core.errors import StoreError

from .backlog import Backlog, chat_of
from .errors import TOKEN_REVOKED, Backoff, Failure, Outcome, Stopped, classify
from .files import media_of
from .receive import Receiver
from .session import Session
from .webhook import ALLOWED_UPDATES, Webhook

__all__ = ["ALLOWED_UPDATES", "Updates"]

log = logging.getLogger("chatbus.telegram")


class Updates:
    """Reads Telegram updates and hands each to the receiver once."""

    def __init__(self, session: Session, receiver: Receiver) -> None:
        self._session = session
        self._receiver = receiver
        self.webhook = Webhook(session)
        self._backlog = Backlog(session, self._handle_batch)
        self._replayed = False

    def reset(self) -> None:
        """A new run: updates kept by the last one are handled again when reading starts."""
        self._backlog.reset()
        self._replayed = False

    async def read(self) -> None:
        """Read updates until the transport stops: from the webhook in webhook mode, else by long polling."""
        if not self._replayed:  # once per run, once it worked (the store may not answer at first)
            await self._receiver.recall()
            await self._backlog.replay()
            self._replayed = True
        if not self._session.settings.webhook:
            await self._poll()
            return
        if not self.webhook.running:
            await self.webhook.start()
        await self.webhook.read(lambda update: self._handle_safely(update, save_offset=False))

    # long polling ------------------------------------------------------------------
    async def _poll(self) -> None:
        """Long polling: ``getUpdates`` from the saved offset, handle each update, save the offset."""
        session, s = self._session, self._session.settings
        bot = session.live_bot()
        backoff = Backoff(s.retry_initial_delay, s.retry_max_delay)
        bootstrapped = False
        while not session.stopping.is_set():
            try:
                if not bootstrapped:
                    await bot.delete_webhook(drop_pending_updates=session.drop_pending)
                    bootstrapped = True
                updates = await session.interruptible(
                    bot.get_updates(
                        offset=session.state.offset, timeout=s.poll_timeout, allowed_updates=ALLOWED_UPDATES
                    )
                )
            except TelegramError as exc:
                failure = classify(exc)
                if not await self._poll_failed(failure, backoff):
                    return
                session.retried("getUpdates", failure)
                continue
            except (TypeError, ValueError, KeyError, AttributeError):
                # python-telegram-bot could not read an update: take the readable ones, skip the other.
                updates = await self._readable_updates()
            session.condition.link_ok()
            backoff.reset()
            for update in updates:
                if session.state.offset is not None and update.update_id < session.state.offset:
                    continue
                if session.stopping.is_set() or not await self._handle_safely(update, save_offset=True):
                    break  # what is left is read again, here after a restart or by the node taking over

    async def _readable_updates(self) -> tuple[Update, ...]:
        """The pending updates read one by one: one python-telegram-bot cannot read is logged and
        skipped (the offset moves past it), so it never stops the relay; when even that is not
        possible (no update id), the error goes on and the run starts again later."""
        session = self._session
        bot = session.live_bot()
        arguments = {"offset": session.state.offset, "timeout": 0, "allowed_updates": list(ALLOWED_UPDATES)}
        with warnings.catch_warnings():
            # getUpdates without reading the updates is exactly what is wanted here.
            warnings.simplefilter("ignore", PTBUserWarning)
            raw = await bot.do_api_request("getUpdates", api_kwargs=arguments)
        if not isinstance(raw, list):
            raise TypeError(f"getUpdates answered {type(raw).__name__} instead of a list of updates")
        readable: list[Update] = []
        for item in raw:
            try:
                update = Update.de_json(item, bot)
            except (TypeError, ValueError, KeyError, AttributeError):
                update_id = item.get("update_id") if isinstance(item, dict) else None
                if not isinstance(update_id, int):
                    raise
                log.error("telegram: update %s cannot be read by this version of python-telegram-bot; it is skipped "
                          "(%s)", update_id, ", ".join(sorted(k for k in item if k != "update_id")))  # fmt: skip
                await session.state.save_offset(session.fenced, update_id + 1)
                continue
            if update is not None:
                readable.append(update)
        return tuple(readable)

    async def _poll_failed(self, failure: Failure, backoff: Backoff) -> bool:
        """Wait as ``failure`` asks before the next poll; False when polling cannot go on (token refused)."""
        session, condition = self._session, self._session.condition
        match failure.outcome:
            case Outcome.TOKEN_REJECTED:
                condition.set_fatal(TOKEN_REVOKED)
                return False
            case Outcome.FLOOD_WAIT:
                await session.sleep(failure.retry_after)
            case Outcome.TIMED_OUT:
                condition.link_trouble(failure, "no answer from the Telegram Bot API")
                await session.sleep(min(backoff.delay, 1.0))
            case Outcome.CONFLICT:
                condition.conflict(failure)
                await session.sleep(backoff.next())
            case _:
                condition.link_trouble(failure, "cannot reach the Telegram Bot API")
                await session.sleep(backoff.next())
        return True

    # stopping ----------------------------------------------------------------------
    def stop_accepting(self) -> None:
        """Take no new webhook posts (Telegram sends them again); what was taken is still handled."""
        self.webhook.stop_accepting()

    async def finish(self, *, confirm: bool) -> None:
        """Stop the webhook server, or (``confirm``: the Bot API answers) tell Telegram
        the handled updates are done, so no other reader sees them again.

        Only while this node still holds the duty (the offset can still be written here): a
        ``getUpdates`` from a node that lost it would end the long poll of the node that took over.
        """
        session = self._session
        if self.webhook.running:
            await self.webhook.stop()
        elif session.bot is not None and session.state.offset is not None and confirm and not session.lost:
            try:
                await session.state.save_offset(session.fenced, session.state.offset)
            except (StoreError, Stopped):
                return
            with contextlib.suppress(TelegramError, TimeoutError):
                await asyncio.wait_for(
                    session.bot.get_updates(offset=session.state.offset, timeout=0, allowed_updates=ALLOWED_UPDATES),
                    3,
                )

    async def close(self) -> None:
        """Stop the webhook server, if one runs."""
        await self.webhook.stop()

    # handling ----------------------------------------------------------------------
    async def _handle_safely(self, update: Update, *, save_offset: bool) -> bool:
        """Handle one update (and save the offset when polling); False when it must be tried again later."""
        try:
            await self._handle(update)
        except Stopped:
            return False
        except StoreError as exc:
            log.error("telegram: update %s could not be stored (%s); trying again", update.update_id, exc)
            with contextlib.suppress(Stopped):
                await self._session.sleep(self._session.settings.retry_initial_delay)
            return False
        except Exception:
            log.exception("telegram: update %s could not be handled; skipping it", update.update_id)
        if save_offset:
            try:
                await self._session.state.save_offset(self._session.fenced, update.update_id + 1)
            except (StoreError, Stopped) as exc:
                log.error("telegram: cannot save the update offset: %s", exc or "stopping")
        return True

    async def _handle(self, update: Update) -> None:
        """Handle ``update`` now, or queue it behind a file being fetched for its chat (``backlog.py``)."""
        chat = chat_of(update)
        message = update.message or update.channel_post
        if chat is not None and (self._backlog.busy(chat) or (message is not None and media_of(message) is not None)):
            await self._backlog.add(update, chat)
            return
        await self._handle_now(update)

    async def _handle_batch(self, updates: list[Update]) -> None:
        """One update, or the messages of one album (as one hub message)."""
        messages = sorted((m for m in (u.message or u.channel_post for u in updates) if m is not None),
                          key=lambda m: m.message_id)  # fmt: skip
        if len(updates) > 1 and len(messages) == len(updates):
            await self._receiver.message(messages[0], messages[1:])
            return
        for update in updates:
            await self._handle_now(update)

    async def _handle_now(self, update: Update) -> None:
        """Hand ``update`` to the receiver, or note what it says about a chat."""
        receiver = self._receiver
        if update.my_chat_member is not None:
            self._membership_changed(update)
        elif update.message is not None or update.channel_post is not None:
            message = update.message or update.channel_post
            assert message is not None
            await receiver.message(message)
        elif update.edited_message is not None or update.edited_channel_post is not None:
            edited = update.edited_message or update.edited_channel_post
            assert edited is not None
            await receiver.edited(edited)
        elif update.message_reaction is not None:
            await receiver.reaction(update.message_reaction)

    def _membership_changed(self, update: Update) -> None:
        """The bot was added to, removed from or restricted in a chat: its health says so."""
        change = update.my_chat_member
        assert change is not None
        condition = self._session.condition
        found = self._session.state.room_of(change.chat.id, change.chat.username)
        if found is None:
            return
        key, _ = found
        member = change.new_chat_member
        if member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            condition.chat_failed(key, "the bot was removed from this chat; add it back to relay messages")
        elif member.status == ChatMemberStatus.RESTRICTED and not getattr(member, "can_send_messages", True):
            condition.chat_failed(key, "the bot may not send messages in this chat; give it that right")
        else:
            condition.chat_ok(key)
