"""From Telegram to the hub: reading updates and handling each one once.

The bot reads updates by long polling (``getUpdates``) or, when
``webhook_url`` is set, from python-telegram-bot's webhook server. Each update
is handled once: the offset of the last handled update is kept in the store
(``state.py``) and only advanced after the message is in the hub, so a
restart or a conflict neither loses nor replays anything.

Handling a message means finding its chat's room, its sender's hub identity
(authenticated once, online while the transport runs), the hub message it
replies to, and the people it mentions (``inbound.py``). A message the hub
refuses gets a short notice back in Telegram. Changes of the bot's own
membership in a chat show in the transport's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import secrets
from typing import TYPE_CHECKING

from telegram import Chat, Update
from telegram import Message as TgMessage
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Updater

from chatbus.core.errors import AuthError, ChatbusError, StoreError, TransportError
from chatbus.core.message import Credentials, Identity

from .errors import TOKEN_REVOKED, Backoff, Failure, Outcome, Stopped, classify
from .formatting import Rendered, escape
from .inbound import Sender, address_command, entity_mentions, sender_of
from .outbound import Outbound
from .session import NAME, Session
from .settings import ChatKey

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["ALLOWED_UPDATES", "Updates"]

log = logging.getLogger("chatbus.telegram")

#: The update types the bot asks for: messages, channel posts, and changes of its own membership.
ALLOWED_UPDATES = ("message", "channel_post", "my_chat_member")
#: Seconds between two notices to one person in one chat.
_NOTICE_INTERVAL = 30.0


class Updates:
    """Reads Telegram updates and puts their messages in the hub."""

    def __init__(self, session: Session, outbound: Outbound) -> None:
        self._session = session
        self._outbound = outbound
        self._updater: Updater | None = None
        self._identities: dict[tuple[int, str], Identity] = {}
        self._online: dict[str, Identity] = {}
        self._warned_chats: set[int] = set()
        self._noticed: dict[tuple[int, int], float] = {}

    def reset(self) -> None:
        """A new run: authenticate Telegram users again."""
        self._identities.clear()

    async def read(self) -> None:
        """Read updates until the transport stops: from the webhook in webhook mode, else by long polling."""
        if not self._session.settings.webhook:
            await self._poll()
            return
        if self._updater is None:
            await self.start_webhook()
        await self._read_webhook()

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
                    await bot.delete_webhook(drop_pending_updates=s.drop_pending_updates)
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
            session.condition.link_ok()
            backoff.reset()
            for update in updates:
                if session.state.offset is not None and update.update_id < session.state.offset:
                    continue
                if not await self._handle_safely(update):
                    break

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

    # webhook -----------------------------------------------------------------------
    async def start_webhook(self) -> None:
        """Run python-telegram-bot's webhook server and register its URL with Telegram."""
        s = self._session.settings
        bot = self._session.live_bot()
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else secrets.token_urlsafe(32)
        if importlib.util.find_spec("tornado") is None:
            raise TransportError(
                "webhook mode needs python-telegram-bot's webhooks extra: pip install 'chatbus[webhooks]', "
                "or remove telegram.webhook_url to use long polling"
            )
        self._updater = Updater(bot=bot, update_queue=asyncio.Queue())
        try:
            await self._updater.initialize()
            await self._updater.start_webhook(
                listen=s.webhook_listen,
                port=s.webhook_port,
                url_path=s.webhook_route(),
                webhook_url=s.webhook_url,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=s.drop_pending_updates,
                secret_token=secret,
                bootstrap_retries=2,
            )
        except OSError as exc:  # the local server, not the Bot API: nothing to classify
            self._updater = None
            raise TransportError(
                f"cannot listen for the Telegram webhook on {s.webhook_listen}:{s.webhook_port}: "
                f"{exc.strerror or exc}; choose another telegram.webhook_port"
            ) from exc
        except TelegramError as exc:
            self._updater = None
            raise self._webhook_refused(classify(exc)) from exc
        log.info("telegram: webhook %s registered; listening on %s:%s", s.webhook_url, s.webhook_listen, s.webhook_port)

    def _webhook_refused(self, failure: Failure) -> TransportError:
        if failure.outcome is Outcome.TOKEN_REJECTED:
            return TransportError("Telegram rejected the bot token when setting the webhook; check it")
        return TransportError(
            f"Telegram refused the webhook {self._session.settings.webhook_url}: "
            f"{self._session.condition.redact(failure.detail)}; it must be a public https:// address that "
            "reaches telegram.webhook_listen:webhook_port"
        )

    async def _read_webhook(self) -> None:
        assert self._updater is not None
        session = self._session
        queue = self._updater.update_queue
        while not session.stopping.is_set():
            update = await session.interruptible(queue.get())
            if not isinstance(update, Update):
                continue
            if session.state.offset is not None and update.update_id < session.state.offset:
                continue  # Telegram delivered it again
            while not await self._handle_safely(update):
                await session.sleep(session.settings.retry_initial_delay)

    # stopping ----------------------------------------------------------------------
    async def finish(self, *, confirm: bool) -> None:
        """Stop the webhook server, or (``confirm``: the Bot API answers) tell Telegram
        the handled updates are done, so no other reader sees them again."""
        session = self._session
        if self._updater is not None and self._updater.running:
            with contextlib.suppress(Exception):
                await self._updater.stop()
        elif session.bot is not None and session.state.offset is not None and confirm:
            with contextlib.suppress(TelegramError, TimeoutError):
                await asyncio.wait_for(
                    session.bot.get_updates(offset=session.state.offset, timeout=0, allowed_updates=ALLOWED_UPDATES),
                    3,
                )

    async def take_offline(self, hub: Hub) -> None:
        """The Telegram users this run put online leave the hub."""
        for identity in list(self._online.values()):
            with contextlib.suppress(Exception):
                await hub.disconnect(identity, NAME)
        self._online.clear()

    async def close(self) -> None:
        """Stop the webhook server, if one runs, and forget it."""
        if self._updater is not None:
            with contextlib.suppress(Exception):
                if self._updater.running:
                    await self._updater.stop()
            self._updater = None

    # handling ----------------------------------------------------------------------
    async def _handle_safely(self, update: Update) -> bool:
        """Handle one update and save the offset; False when it must be tried again later."""
        try:
            await self._handle(update)
        except Stopped:
            return False
        except StoreError as exc:
            log.error("telegram: update %s could not be stored (%s); trying again", update.update_id, exc)
            await self._session.sleep(self._session.settings.retry_initial_delay)
            return False
        except Exception:
            log.exception("telegram: update %s could not be handled; skipping it", update.update_id)
        try:
            await self._session.state.save_offset(self._session.store(), update.update_id + 1)
        except StoreError as exc:
            log.error("telegram: cannot save the update offset: %s", exc)
        return True

    async def _handle(self, update: Update) -> None:
        """Put the message of ``update`` in the hub, or note what it says about a chat."""
        if update.my_chat_member is not None:
            self._membership_changed(update)
            return
        message = update.message or update.channel_post
        if message is None:
            return
        session, chat = self._session, message.chat
        found = session.state.room_of(chat.id, chat.username)
        if message.migrate_to_chat_id and found is not None:
            await session.state.record_migration(session.store(), chat.id, message.migrate_to_chat_id)
            return
        if found is None:
            self._ignore(chat)
            return
        key, room = found
        if isinstance(key, str):
            session.state.resolved[key] = chat.id
        if message.from_user is not None and message.from_user.id == session.me_id:
            return  # our own words never come back in
        text = message.text or message.caption
        text = address_command(text, bot_username=session.username) if text else None
        sender = sender_of(message)
        if text is None or sender is None:
            return  # nothing to relay, a command for another bot, or no author
        await self._take(message, key, room, text, sender)

    def _ignore(self, chat: Chat) -> None:
        if chat.id not in self._warned_chats:
            self._warned_chats.add(chat.id)
            log.warning(
                "telegram: ignoring chat %s (%s): it is not in telegram.chat_ids", chat.id, chat.title or chat.type
            )

    async def _take(self, message: TgMessage, key: ChatKey, room: str, text: str, sender: Sender) -> None:
        """Put one Telegram message in the hub as its sender's, unless it is there already."""
        session, chat_id = self._session, message.chat.id
        hub = session.hub
        if hub is None:
            raise Stopped
        try:
            identity = await self._identity(sender)
        except AuthError as exc:
            log.info("telegram: %s (%s) refused: %s", sender.user_id, sender.telegram_id, exc)
            self._notify_sender(chat_id, message.message_id, str(exc), sender.telegram_id)
            return
        reply_to = None
        if message.reply_to_message is not None:
            reply_to = await session.store().hub_id_for(NAME, f"{chat_id}:{message.reply_to_message.message_id}")
        external = f"{chat_id}:{message.message_id}"
        if await session.store().hub_id_for(NAME, external) is not None:
            return  # already in the hub (read again after an interrupted shutdown)
        try:
            stored = await hub.receive(
                identity,
                text,
                room=room,
                reply_to=reply_to,
                transport=NAME,
                client_id=external,
                mentions=entity_mentions(message, bot_username=session.username),
            )
        except (StoreError, TransportError):
            if not hub.running:
                raise Stopped from None
            raise
        except ChatbusError as exc:
            log.info("telegram: message from %s in chat %s refused: %s", identity.user_id, chat_id, exc)
            self._notify_sender(chat_id, message.message_id, str(exc), sender.telegram_id)
            return
        self._outbound.remember(stored.id, chat_id, message.message_id)
        session.condition.chat_ok(key)
        await session.store().map_external(NAME, stored.id, external)

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

    async def _identity(self, sender: Sender) -> Identity:
        """The hub identity of a Telegram user, authenticated once and put online."""
        cache_key = (sender.telegram_id, sender.user_id)
        identity = self._identities.get(cache_key)
        if identity is not None:
            return identity
        hub, role = self._session.hub, self._session.settings.role
        if hub is None:
            raise Stopped
        extra = {"verified": True, "display_name": sender.display_name, "telegram_id": sender.telegram_id}
        try:
            identity = await hub.authenticate(
                Credentials(user_id=sender.user_id, role=role, transport=NAME, extra=extra)
            )
        except AuthError:
            fallback = str(sender.telegram_id).lstrip("-")
            if fallback == sender.user_id:
                raise
            # The name is taken (an agent has it): use the Telegram user id instead.
            log.info(
                "telegram: %s is taken in chatbus; %s appears as %s", sender.user_id, sender.display_name, fallback
            )
            identity = await hub.authenticate(Credentials(user_id=fallback, role=role, transport=NAME, extra=extra))
        self._identities[cache_key] = identity
        if identity.user_id not in self._online:
            self._online[identity.user_id] = identity
            await hub.connect(identity, NAME)
        return identity

    def _notify_sender(self, chat_id: int, message_id: int, text: str, who: int) -> None:
        """Tell a Telegram user why their message was not taken (as a reply, in the background).

        At most one such notice per person and chat every ``_NOTICE_INTERVAL``
        seconds, so someone flooding the chat does not make the bot flood it too.
        """
        hub = self._session.hub
        now = hub.clock() if hub is not None else 0.0
        last = self._noticed.get((chat_id, who))
        if last is not None and now - last < _NOTICE_INTERVAL:
            return
        self._noticed[(chat_id, who)] = now
        part = Rendered(f"⚠️ {escape(text)}", f"⚠️ {text}")
        self._session.spawn(self._outbound.send_quietly(chat_id, part, message_id), "notice")
