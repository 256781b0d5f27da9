"""The Telegram transport: a bot that relays between Telegram chats and the hub.

Inbound, the bot reads updates by long polling (``getUpdates``) or, when
``webhook_url`` is set, through python-telegram-bot's webhook server. Each
update is handled once: the offset of the last handled update is kept in the
store and only advanced after the message is in the hub, so a restart or a
conflict neither loses nor replays anything.

Outbound, every stored hub message that Telegram users have not seen is sent
to the chats of its room as ``sender: text`` (HTML, split when long), with
Telegram's flood limits honoured by python-telegram-bot's ``AIORateLimiter``.
Transient trouble (network errors, 5xx, flood waits) is retried with a bounded
backoff on this transport's own delivery task, so it never holds up the hub;
the id of the last relayed message is kept in the store, and messages that
could not be relayed before a shutdown are sent after the next start.
Permanent trouble (the bot removed from a chat, a chat gone, the token
revoked) is logged and shown by :meth:`TelegramTransport.health`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ExtBot, Updater
from telegram.request import HTTPXRequest

from chatbus.core.errors import AuthError, ChatbusError, ConfigError, StoreError, TransportError
from chatbus.core.message import Credentials, Identity, Message
from chatbus.core.transport import BaseTransport, Health

from .errors import TOKEN_REVOKED, Backoff, Failure, Outcome, Stopped, classify
from .formatting import Rendered, escape
from .inbound import Sender, address_command, entity_mentions, sender_of
from .outbound import Outbound
from .session import NAME, Session
from .settings import ChatKey, TelegramSettings

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["TelegramTransport"]

log = logging.getLogger("chatbus.telegram")

T = TypeVar("T")

#: The update types the bot asks for: messages, channel posts, and changes of its own membership.
ALLOWED_UPDATES = ("message", "channel_post", "my_chat_member")
_NOTICE_INTERVAL = 30.0
#: Seconds ``stop`` lets the update being handled (and a message being sent) finish.
_STOP_GRACE = 5.0
#: What an operator reads when the token is refused at start-up.
_TOKEN_REJECTED = (
    "Telegram rejected the bot token (401 Unauthorized). Copy the token again from @BotFather "
    "into CHATBUS_TELEGRAM__TOKEN (or TELEGRAM_BOT_TOKEN); if you set telegram.base_url, check "
    "that it ends with /bot"
)


class TelegramTransport(BaseTransport):
    """Relays between Telegram chats and chatbus rooms through one bot.

    Built by the hub from the ``telegram`` settings section (entry point
    ``telegram``); see :class:`TelegramSettings` for the options.
    """

    name = NAME
    settings_model = TelegramSettings
    settings: TelegramSettings

    def __init__(self, settings: TelegramSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None or isinstance(settings, Mapping):
            options = dict(settings or {})
            if not options.get("token"):
                raise ConfigError(
                    "the Telegram transport needs a bot token: set CHATBUS_TELEGRAM__TOKEN (or "
                    "TELEGRAM_BOT_TOKEN), or token in [telegram] of chatbus.toml; @BotFather gives you one"
                )
            if options.get("chat_ids") in (None, "", [], {}):
                raise ConfigError(
                    "the Telegram transport needs the chats to relay: set CHATBUS_TELEGRAM__CHAT_IDS (or "
                    "TELEGRAM_CHAT_ID) to your group's id, e.g. -1001234567890"
                )
            settings = options
        super().__init__(settings)
        self._session = Session(self.settings)
        self._state = self._session.state
        self._condition = self._session.condition
        self._updater: Updater | None = None
        self._outbound = Outbound(self._session)
        self._connected = asyncio.Event()
        self._identities: dict[tuple[int, str], Identity] = {}
        self._online: dict[str, Identity] = {}
        self._warned_chats: set[int] = set()
        self._noticed: dict[tuple[int, int], float] = {}

    # lifecycle ---------------------------------------------------------------
    async def start(self, hub: Hub) -> None:
        """Check the token (a rejected one is a clear error), then poll or serve the webhook."""
        await super().start(hub)
        _quiet_http_logs()
        self._session.begin(hub, self._make_bot())
        self._outbound.reset()
        self._connected = asyncio.Event()
        self._identities.clear()
        try:
            await self._state.load(self._session.store())
            await self._connect(first=True)
            if self._connected.is_set() and self.settings.webhook:
                await self._start_webhook()
        except BaseException:
            await self._close_bot()
            self._session.end()
            self.hub = None
            raise
        self._session.spawn(self._run(), "run")
        mode = "webhook" if self.settings.webhook else "long polling"
        log.info(
            "telegram: relaying %d chat(s) by %s through %s",
            len(self._state.rooms),
            mode,
            f"@{self._session.username}" if self._session.username else self.settings.public_base_url(),
        )

    async def stop(self) -> None:
        """Stop reading updates, confirm the last ones, take Telegram users offline."""
        hub = self.hub
        if hub is None:
            return
        await self._session.halt(_STOP_GRACE)
        if self._updater is not None and self._updater.running:
            with contextlib.suppress(Exception):
                await self._updater.stop()
        elif self._session.bot is not None and self._state.offset is not None and self.is_connected():
            # Tell Telegram the handled updates are done, so no other reader sees them again.
            with contextlib.suppress(TelegramError, TimeoutError):
                await asyncio.wait_for(
                    self._session.bot.get_updates(
                        offset=self._state.offset, timeout=0, allowed_updates=ALLOWED_UPDATES
                    ),
                    3,
                )
        for identity in list(self._online.values()):
            with contextlib.suppress(Exception):
                await hub.disconnect(identity, NAME)
        self._online.clear()
        await self._close_bot()
        self._session.end()
        await super().stop()

    def _make_bot(self) -> ExtBot[Any]:
        s = self.settings
        timeout = s.request_timeout

        def request(pool: int) -> HTTPXRequest:
            return HTTPXRequest(
                connection_pool_size=pool,
                read_timeout=timeout,
                write_timeout=timeout,
                connect_timeout=timeout,
                pool_timeout=timeout,
                proxy=s.proxy,
            )

        return ExtBot(
            token=s.token.get_secret_value(),
            base_url=s.base_url,
            request=request(8),
            get_updates_request=request(1),
            rate_limiter=AIORateLimiter(
                overall_max_rate=s.overall_rate,
                group_max_rate=s.group_rate,
                max_retries=5,
            ),
        )

    async def _close_bot(self) -> None:
        if self._updater is not None:
            with contextlib.suppress(Exception):
                if self._updater.running:
                    await self._updater.stop()
            self._updater = None
        if self._session.bot is not None:
            with contextlib.suppress(Exception):
                await self._session.bot.shutdown()
            self._session.bot = None

    async def _connect(self, *, first: bool = False) -> None:
        """``getMe``: learn who the bot is. A rejected token is fatal; network trouble is retried."""
        bot = self._session.live_bot()
        try:
            await bot.initialize()
        except TelegramError as exc:
            failure = classify(exc)
            if failure.outcome is Outcome.TOKEN_REJECTED:
                if first:
                    raise TransportError(_TOKEN_REJECTED) from exc
                self._condition.set_fatal(_TOKEN_REJECTED)
                return
            self._condition.link_trouble(failure, "cannot reach the Telegram Bot API")
            if first:
                log.warning("telegram: will keep trying to reach %s in the background", self.settings.public_base_url())
            return
        me = bot.bot
        self._session.me_id, self._session.username = me.id, me.username
        self._condition.link_ok()
        self._connected.set()

    async def _run(self) -> None:
        """Connect when needed, check the chats, relay what was missed, then read updates."""
        try:
            await self._run_until_stopped()
        except Stopped:
            return
        except TransportError as exc:
            self._condition.set_fatal(str(exc))

    async def _run_until_stopped(self) -> None:
        backoff = Backoff(self.settings.retry_initial_delay, self.settings.retry_max_delay)
        while not self._connected.is_set():
            await self._session.sleep(backoff.next())
            await self._connect()
            if self._condition.fatal:
                return
        await self._check_chats()
        self._session.spawn(self._outbound.catch_up(), "catch-up")
        if self.settings.webhook:
            if self._updater is None:
                await self._start_webhook()
            await self._read_webhook_updates()
        else:
            await self._poll()

    def is_connected(self) -> bool:
        condition = self._condition
        return (
            self.hub is not None
            and self._connected.is_set()
            and condition.fatal is None
            and condition.link_problem is None
        )

    def health(self) -> Health:
        """Unhealthy while the token is refused, the Bot API unreachable, or a chat unusable."""
        if self.hub is None:
            return Health(False, "not running")
        return self._condition.health(connected=self._connected.is_set())

    def status(self) -> dict[str, Any]:
        """Health plus the bot, the mode and each chat, for ``/ws-info`` and ``chatbus status``."""
        out = super().status()
        username = self._session.username
        out["bot"] = f"@{username}" if username else None
        out["mode"] = "webhook" if self.settings.webhook else "polling"
        out["chats"] = {
            str(chat): {
                "room": room,
                "healthy": chat not in self._condition.chat_problems,
                "detail": self._condition.chat_problems.get(chat, "ok"),
            }
            for chat, room in self._state.rooms.items()
        }
        out["lastRelayedId"] = self._state.delivered
        return out

    async def _check_chats(self) -> None:
        """``getChat`` for each configured chat: resolve ``@names`` and report chats the bot cannot use."""
        bot = self._session.live_bot()
        for chat in list(self._state.rooms):
            try:
                info = await bot.get_chat(self._state.current(chat))
            except TelegramError as exc:
                if not await self._chat_check_failed(chat, classify(exc)):
                    return
                continue
            if isinstance(chat, str):
                self._state.resolved[chat] = info.id
                log.info("telegram: %s is chat %s", chat, info.id)

    async def _chat_check_failed(self, chat: ChatKey, failure: Failure) -> bool:
        """Note what ``getChat`` said about ``chat``; False when no chat can be checked (token refused)."""
        match failure.outcome:
            case Outcome.MIGRATED:
                if isinstance(chat, int) and failure.new_chat_id is not None:
                    await self._state.record_migration(self._session.store(), chat, failure.new_chat_id)
            case Outcome.BOT_REMOVED:
                self._condition.chat_failed(chat, "the bot is not a member of this chat; add it to the group")
            case Outcome.CHAT_NOT_FOUND:
                self._condition.chat_failed(chat, "chat not found; check the id and add the bot to the group")
            case Outcome.CHAT_CLOSED | Outcome.BAD_MARKUP | Outcome.BAD_REPLY | Outcome.REFUSED:
                log.warning("telegram: cannot check chat %s: %s", chat, self._condition.redact(failure.detail))
            case Outcome.TOKEN_REJECTED:
                self._condition.set_fatal(TOKEN_REVOKED)
                return False
            case _:
                log.debug("telegram: cannot check chat %s now: %s", chat, self._condition.redact(failure.detail))
        return True

    # inbound -------------------------------------------------------------------------
    async def _poll(self) -> None:
        """Long polling: ``getUpdates`` from the saved offset, handle each update, save the offset."""
        bot = self._session.live_bot()
        backoff = Backoff(self.settings.retry_initial_delay, self.settings.retry_max_delay)
        bootstrapped = False
        while not self._session.stopping.is_set():
            try:
                if not bootstrapped:
                    await bot.delete_webhook(drop_pending_updates=self.settings.drop_pending_updates)
                    bootstrapped = True
                updates = await self._session.interruptible(
                    bot.get_updates(
                        offset=self._state.offset, timeout=self.settings.poll_timeout, allowed_updates=ALLOWED_UPDATES
                    )
                )
            except TelegramError as exc:
                if not await self._poll_failed(classify(exc), backoff):
                    return
                continue
            self._condition.link_ok()
            backoff.reset()
            for update in updates:
                if self._state.offset is not None and update.update_id < self._state.offset:
                    continue
                if not await self._handle_safely(update):
                    break

    async def _poll_failed(self, failure: Failure, backoff: Backoff) -> bool:
        """Wait as ``failure`` asks before the next poll; False when polling cannot go on (token refused)."""
        match failure.outcome:
            case Outcome.TOKEN_REJECTED:
                self._condition.set_fatal(TOKEN_REVOKED)
                return False
            case Outcome.FLOOD_WAIT:
                await self._session.sleep(failure.retry_after)
            case Outcome.TIMED_OUT:
                self._condition.link_trouble(failure, "no answer from the Telegram Bot API")
                await self._session.sleep(min(backoff.delay, 1.0))
            case Outcome.CONFLICT:
                self._condition.conflict(failure)
                await self._session.sleep(backoff.next())
            case _:
                self._condition.link_trouble(failure, "cannot reach the Telegram Bot API")
                await self._session.sleep(backoff.next())
        return True

    async def _start_webhook(self) -> None:
        """Run python-telegram-bot's webhook server and register its URL with Telegram."""
        bot = self._session.live_bot()
        s = self.settings
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
        except OSError as exc:  # the local server, not the Bot API: no classification needed
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
            f"Telegram refused the webhook {self.settings.webhook_url}: {self._condition.redact(failure.detail)}; it must be "
            "a public https:// address that reaches telegram.webhook_listen:webhook_port"
        )

    async def _read_webhook_updates(self) -> None:
        assert self._updater is not None
        queue = self._updater.update_queue
        while not self._session.stopping.is_set():
            update = await self._session.interruptible(queue.get())
            if not isinstance(update, Update):
                continue
            if self._state.offset is not None and update.update_id < self._state.offset:
                continue  # Telegram delivered it again
            while not await self._handle_safely(update):
                await self._session.sleep(self.settings.retry_initial_delay)

    async def _handle_safely(self, update: Update) -> bool:
        """Handle one update and save the offset; False when it must be tried again later."""
        try:
            await self._handle(update)
        except Stopped:
            return False
        except StoreError as exc:
            log.error("telegram: update %s could not be stored (%s); trying again", update.update_id, exc)
            await self._session.sleep(self.settings.retry_initial_delay)
            return False
        except Exception:
            log.exception("telegram: update %s could not be handled; skipping it", update.update_id)
        try:
            await self._state.save_offset(self._session.store(), update.update_id + 1)
        except StoreError as exc:
            log.error("telegram: cannot save the update offset: %s", exc)
        return True

    async def _handle(self, update: Update) -> None:
        if update.my_chat_member is not None:
            self._membership_changed(update)
            return
        message = update.message or update.channel_post
        if message is None:
            return
        chat = message.chat
        if message.migrate_to_chat_id and self._state.room_of(chat.id, chat.username) is not None:
            await self._state.record_migration(self._session.store(), chat.id, message.migrate_to_chat_id)
            return
        found = self._state.room_of(chat.id, chat.username)
        if found is None:
            if chat.id not in self._warned_chats:
                self._warned_chats.add(chat.id)
                log.warning(
                    "telegram: ignoring chat %s (%s): it is not in telegram.chat_ids", chat.id, chat.title or chat.type
                )
            return
        key, room = found
        if isinstance(key, str):
            self._state.resolved[key] = chat.id
        if message.from_user is not None and message.from_user.id == self._session.me_id:
            return  # our own words never come back in
        text = message.text or message.caption
        if not text:
            return
        text = address_command(text, bot_username=self._session.username)
        if text is None:
            return  # a command for another bot
        sender = sender_of(message)
        if sender is None:
            return
        hub = self.hub
        if hub is None:
            raise Stopped
        try:
            identity = await self._identity(sender)
        except AuthError as exc:
            log.info("telegram: %s (%s) refused: %s", sender.user_id, sender.telegram_id, exc)
            self._notify_sender(chat.id, message.message_id, str(exc), sender.telegram_id)
            return
        reply_to = None
        if message.reply_to_message is not None:
            reply_to = await self._session.store().hub_id_for(NAME, f"{chat.id}:{message.reply_to_message.message_id}")
        external = f"{chat.id}:{message.message_id}"
        if await self._session.store().hub_id_for(NAME, external) is not None:
            return  # already in the hub (read again after an interrupted shutdown)
        try:
            stored = await hub.receive(
                identity,
                text,
                room=room,
                reply_to=reply_to,
                transport=NAME,
                client_id=external,
                mentions=entity_mentions(message, bot_username=self._session.username),
            )
        except (StoreError, TransportError):
            if not hub.running:
                raise Stopped from None
            raise
        except ChatbusError as exc:
            log.info("telegram: message from %s in chat %s refused: %s", identity.user_id, chat.id, exc)
            self._notify_sender(chat.id, message.message_id, str(exc), sender.telegram_id)
            return
        self._outbound.remember(stored.id, chat.id, message.message_id)
        self._condition.chat_ok(key)
        await self._session.store().map_external(NAME, stored.id, external)

    def _membership_changed(self, update: Update) -> None:
        change = update.my_chat_member
        assert change is not None
        found = self._state.room_of(change.chat.id, change.chat.username)
        if found is None:
            return
        key, _ = found
        member = change.new_chat_member
        if member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            self._condition.chat_failed(key, "the bot was removed from this chat; add it back to relay messages")
        elif member.status == ChatMemberStatus.RESTRICTED and not getattr(member, "can_send_messages", True):
            self._condition.chat_failed(key, "the bot may not send messages in this chat; give it that right")
        else:
            self._condition.chat_ok(key)

    async def _identity(self, sender: Sender) -> Identity:
        """The hub identity of a Telegram user, authenticated once and put online."""
        cache_key = (sender.telegram_id, sender.user_id)
        identity = self._identities.get(cache_key)
        if identity is not None:
            return identity
        hub = self.hub
        if hub is None:
            raise Stopped
        extra = {"verified": True, "display_name": sender.display_name, "telegram_id": sender.telegram_id}
        try:
            identity = await hub.authenticate(
                Credentials(user_id=sender.user_id, role=self.settings.role, transport=NAME, extra=extra)
            )
        except AuthError:
            fallback = str(sender.telegram_id).lstrip("-")
            if fallback == sender.user_id:
                raise
            # The name is taken (an agent has it): use the Telegram user id instead.
            log.info(
                "telegram: %s is taken in chatbus; %s appears as %s", sender.user_id, sender.display_name, fallback
            )
            identity = await hub.authenticate(
                Credentials(user_id=fallback, role=self.settings.role, transport=NAME, extra=extra)
            )
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
        now = self.hub.clock() if self.hub is not None else 0.0
        last = self._noticed.get((chat_id, who))
        if last is not None and now - last < _NOTICE_INTERVAL:
            return
        self._noticed[(chat_id, who)] = now
        part = Rendered(f"⚠️ {escape(text)}", f"⚠️ {text}")
        self._session.spawn(self._outbound.send_quietly(chat_id, part, message_id), "notice")

    async def deliver(self, message: Message) -> None:
        """Relay one stored hub message to the chats of its room (called in id order)."""
        await self._outbound.deliver(message)


def _quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs contain the token."""
    httpx_log = logging.getLogger("httpx")
    if httpx_log.getEffectiveLevel() < logging.WARNING:
        httpx_log.setLevel(logging.WARNING)
