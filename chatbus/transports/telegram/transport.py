"""The Telegram transport: a bot that relays between Telegram chats and the hub.

This module is the transport's lifecycle and wiring: it builds the bot,
learns who it is, checks the configured chats, starts reading updates and
relaying messages, and reports health. The work itself is done by parts that
share one :class:`~.session.Session`:

``updates.py``, ``webhook.py``
    Telegram to the hub: long polling or the webhook, handling each update once.
``receive.py``, ``people.py``, ``presence.py``, ``topics.py``
    What Telegram people write, edit and react, as whom, in which room; who is online.
``files.py``, ``backlog.py``
    Files people post, fetched into the hub, off the update loop but in order per chat.
``outbound.py``, ``lanes.py``, ``merge.py``, ``changes.py``, ``calls.py``, ``files_out.py``
    The hub to Telegram: one lane per chat, in order, merged when held back,
    catch-up after a restart, replies, edits, deletions and reactions, files
    as photos, documents and albums.
``errors.py``
    What each Bot API or network failure means, in one table.
``state.py``
    What is remembered in the store: the update offset, the last relayed
    message, migrated groups.
``health.py``
    What is wrong right now (a refused token, an unreachable Bot API, a chat
    the bot cannot use), logged once per change and shown by
    :meth:`TelegramTransport.health`.

``inbound.py`` and ``formatting.py`` are the pure rules for reading Telegram
messages and writing HTML ones; ``settings.py`` is the ``[telegram]`` section.

On a cluster (several ``chatbus serve`` nodes on one Redis) the hub runs this
transport on one node at a time, the holder of the duty ``transport:telegram``
(``once_per_cluster``): Telegram allows one ``getUpdates`` reader per bot, and
each message must reach Telegram once. The node that takes over reads updates
from the offset the last holder wrote after handling them, finds those it
stored already by the id map, and relays what was stored since the last
message relayed, skipping what the id map says is in Telegram already; only
a message being sent in the instant its node died can reach Telegram twice
(the Bot API cannot send exactly once). A node that lost the duty finds its
writes refused (``session.py``) and stops at once. In webhook mode the holder
alone listens on ``telegram.webhook_listen:webhook_port`` and registers
``telegram.webhook_url`` when it takes over; behind a load balancer, route
the webhook to that port on every node with a health check (only the holder
answers), or give each node a public webhook URL of its own. Telegram posts
an update again until a node stores it, so none is lost meanwhile.
``drop_pending_updates`` applies to one node only: on a cluster, a start
takes over from another node and drops nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telegram.error import TelegramError
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from chatbus.core.errors import ConfigError, TransportError
from chatbus.core.message import Change, Message
from chatbus.core.transport import BaseTransport, Health

from .calls import Calls
from .errors import TOKEN_REVOKED, Backoff, Failure, Outcome, Stopped, classify
from .outbound import Outbound
from .people import People
from .receive import Receiver
from .request import CountedRequest
from .session import NAME, Session
from .settings import ChatKey, TelegramSettings
from .topics import Topics
from .updates import Updates

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["TelegramTransport"]

log = logging.getLogger("chatbus.telegram")

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
    #: Telegram allows one ``getUpdates`` reader per bot, and each message must reach Telegram
    #: once: on a shared store the hub runs this transport on one node at a time (the duty
    #: ``transport:telegram``), starting it on the node that takes the duty over.
    once_per_cluster = True

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
        self._people = People(self._session)
        self._topics = Topics(self.settings)
        self._outbound = Outbound(self._session, Calls(self._session), self._people, self._topics)
        self._updates = Updates(self._session, Receiver(self._session, self._outbound, self._people, self._topics))
        self._caught_up = False
        #: Set once ``getMe`` answered: the bot knows who it is.
        self._connected = asyncio.Event()

    async def start(self, hub: Hub) -> None:
        """Check the token (a rejected one is a clear error), then poll or serve the webhook."""
        await super().start(hub)
        _quiet_http_logs()
        self._session.begin(hub, self._make_bot())
        self._outbound.reset()
        self._updates.reset()
        self._people.reset()
        self._connected = asyncio.Event()
        self._caught_up = False
        try:
            await self._state.load(self._session.store(), self._session.fenced)
            await self._topics.load(self._session.store())
            await self._connect(first=True)
            if self._connected.is_set() and self.settings.webhook:
                await self._updates.webhook.start()
        except BaseException:
            await self._close_bot()
            self._session.end()
            self.hub = None
            raise
        self._session.spawn(self._run(), "run")
        self._session.spawn(self._people.presence.run(), "presence")
        if self.settings.drop_pending_updates and self._session.shared:
            log.warning("telegram: drop_pending_updates is ignored on a cluster: this start takes over from "
                        "another node, and the updates waiting at Telegram are relayed")  # fmt: skip
        mode = "webhook" if self.settings.webhook else "long polling"
        log.info(
            "telegram: relaying %d chat(s) by %s through %s",
            len(self._state.rooms),
            mode,
            f"@{self._session.username}" if self._session.username else self.settings.public_base_url(),
        )

    async def stop_accepting(self, *, restart_in: float | None = None) -> None:
        """The first step of a stop: the webhook takes no new updates (Telegram sends them again later)."""
        self._updates.stop_accepting()

    async def stop(self) -> None:
        """Relay what is queued, stop reading updates, confirm the last ones, take Telegram users offline."""
        if self.hub is None:
            return
        if self.is_connected() and not self._session.lost:
            # else nothing queued can go out now: it is relayed after a restart, or by the node that took over
            await self._outbound.flush(_STOP_GRACE)
        await self._session.halt(_STOP_GRACE)
        await self._updates.finish(confirm=self.is_connected())
        await self._people.presence.stop()
        await self._close_bot()
        self._session.end()
        await super().stop()

    async def deliver(self, message: Message) -> None:
        """Relay one stored hub message to the chats of its room (called in id order)."""
        await self._outbound.deliver(message)

    async def changed(self, change: Change) -> None:
        """Relay an edit, deletion or reaction to where its message went in Telegram."""
        await self._outbound.changed(change)

    def is_connected(self) -> bool:
        """Running, and the Bot API answers and accepts the token."""
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
        for chat, warning in self._condition.warnings.items():
            if str(chat) in out["chats"]:
                out["chats"][str(chat)]["warning"] = warning
        out["privacyMode"] = self._session.privacy
        out["lastRelayedId"] = self._state.delivered
        return out

    def _make_bot(self) -> ExtBot[Any]:
        """The bot. Telegram's flood limits are kept by ``calls.py`` (the overall rate and each
        group's), which also handles 429s, so each chat's lane knows when it is held back."""
        s = self.settings
        timeout = s.request_timeout

        assert self.hub is not None
        calls = self.hub.metrics.telegram_calls

        def request(pool: int) -> HTTPXRequest:
            return CountedRequest(
                calls=calls,
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
            base_file_url=s.file_url(),
            request=request(8),
            get_updates_request=request(1),
        )

    async def _close_bot(self) -> None:
        await self._updates.close()
        if self._session.bot is not None:
            with contextlib.suppress(Exception):
                await self._session.bot.shutdown()
            self._session.bot = None

    async def _connect(self, *, first: bool = False) -> None:
        """``getMe``: learn who the bot is. A rejected token is fatal; network trouble is retried."""
        bot = self._session.live_bot()
        try:
            await bot.initialize()
        except Exception as exc:  # a Bot API or network failure, or an answer the library cannot read
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
        self._session.privacy = not me.can_read_all_group_messages
        if self._session.privacy:
            log.warning("telegram: %s", _PRIVACY)
        self._condition.link_ok()
        self._connected.set()

    async def _run(self) -> None:
        """The transport's main task, started again with a growing wait when it fails unexpectedly
        (an answer the library cannot read, a library error), unhealthy meanwhile; an error that
        ends it for good (a refused webhook) shows in health."""
        backoff = Backoff(self.settings.retry_initial_delay, self.settings.retry_max_delay)
        while True:
            try:
                await self._run_until_stopped()
                return
            except Stopped:
                return
            except TransportError as exc:
                self._condition.set_fatal(str(exc))
                return
            except Exception as exc:
                delay = backoff.next()
                log.error("telegram: the relay failed unexpectedly; starting it again in %g s", delay, exc_info=exc)
                self._condition.run_failed(type(exc).__name__, delay)
            try:
                await self._session.sleep(delay)
            except Stopped:
                return

    async def _run_until_stopped(self) -> None:
        """Connect when needed, check the chats, relay what was missed, then read updates."""
        backoff = Backoff(self.settings.retry_initial_delay, self.settings.retry_max_delay)
        while not self._connected.is_set():
            await self._session.sleep(backoff.next())
            await self._connect()
            if self._condition.fatal:
                return
        await self._check_chats()
        if not self._caught_up:
            self._caught_up = True
            self._session.spawn(self._outbound.catch_up(), "catch-up")
        await self._updates.read()

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
            if self._session.privacy and info.type in ("group", "supergroup"):
                await self._check_sight(chat, info.id)

    async def _check_sight(self, chat: ChatKey, chat_id: int) -> None:
        """With privacy mode on, the bot sees every message of a group only as one of its admins."""
        bot, me = self._session.live_bot(), self._session.me_id
        try:
            member = await bot.get_chat_member(chat_id, me) if me is not None else None
        except TelegramError as exc:
            log.debug("telegram: cannot check the bot's rights in chat %s: %s", chat, exc)
            member = None
        if member is not None and member.status in ("administrator", "creator"):
            self._condition.warnings.pop(chat, None)
            return
        self._condition.warnings[chat] = _PRIVACY

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


#: What an operator reads when privacy mode hides ordinary group messages from the bot.
_PRIVACY = (
    "privacy mode is on, so in groups the bot sees only commands, replies to it and mentions of it; "
    "turn it off with @BotFather (/setprivacy, Disable, then remove and add the bot to the group again), "
    "or make the bot an admin of the group"
)


def _quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs contain the token."""
    httpx_log = logging.getLogger("httpx")
    if httpx_log.getEffectiveLevel() < logging.WARNING:
        httpx_log.setLevel(logging.WARNING)
