"""Webhook mode: Telegram posts updates, and is answered only once each is stored.

python-telegram-bot's webhook server (its ``Updater``, on tornado) checks
the secret, reads the update and awaits ``update_queue.put(update)``, then
answers Telegram 200. The queue here makes that ``put`` wait until the
transport has handled the update (stored its message in the hub), and fail
when it could not, so the server answers 500 and Telegram sends the update
again later: an update Telegram was told is done is always in the hub, even
when chatbus stops or crashes a moment later. Telegram may post several
updates at once (``max_connections``); they are handled one at a time.

This relies on python-telegram-bot 22 awaiting the queue's ``put`` in its
webhook handler; the dependency is pinned below 23 for it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Updater

from chatbus.core.errors import TransportError

from .errors import Failure, Outcome, Stopped, classify
from .session import Session

__all__ = ["ALLOWED_UPDATES", "AckQueue", "Webhook"]

log = logging.getLogger("chatbus.telegram")

#: The update types the bot asks for.
ALLOWED_UPDATES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "message_reaction", "my_chat_member",
)  # fmt: skip
#: How many updates Telegram may post at once.
_MAX_CONNECTIONS = 40


class NotStored(Exception):
    """The update could not be stored now; the webhook answers 500 so Telegram sends it again."""


@dataclass(slots=True)
class Delivery:
    """One posted update and the answer its request waits for."""

    update: object
    stored: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class AckQueue(asyncio.Queue[object]):
    """An update queue whose ``put`` returns only once the update is handled."""

    def __init__(self) -> None:
        super().__init__()
        #: False once the transport is stopping: new posts are refused (Telegram sends them again).
        self.accepting = True

    async def put(self, item: object) -> None:
        """Queue ``item`` and wait until it is handled; ``NotStored`` when it was not."""
        if not self.accepting:
            raise NotStored("chatbus is stopping")
        delivery = Delivery(item)
        await super().put(delivery)
        if not await delivery.stored:
            raise NotStored("the update could not be stored")

    def refuse_waiting(self) -> None:
        """Answer every update still waiting with an error (Telegram sends them again)."""
        while not self.empty():
            delivery = self.get_nowait()
            if isinstance(delivery, Delivery) and not delivery.stored.done():
                delivery.stored.set_result(False)


class Webhook:
    """python-telegram-bot's webhook server, answering each update once it is handled."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._updater: Updater | None = None
        self._queue = AckQueue()

    @property
    def running(self) -> bool:
        return self._updater is not None

    async def start(self) -> None:
        """Run the webhook server and register its URL with Telegram."""
        s = self._session.settings
        bot = self._session.live_bot()
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else secrets.token_urlsafe(32)
        if importlib.util.find_spec("tornado") is None:
            raise TransportError(
                "webhook mode needs python-telegram-bot's webhooks extra: pip install 'chatbus[webhooks]', "
                "or remove telegram.webhook_url to use long polling"
            )
        self._queue = AckQueue()
        self._updater = Updater(bot=bot, update_queue=self._queue)
        try:
            await self._updater.initialize()
            await self._updater.start_webhook(
                listen=s.webhook_listen,
                port=s.webhook_port,
                url_path=s.webhook_route(),
                webhook_url=s.webhook_url,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=self._session.drop_pending,
                secret_token=secret,
                bootstrap_retries=2,
                max_connections=_MAX_CONNECTIONS,
            )
        except OSError as exc:  # the local server, not the Bot API: nothing to classify
            self._updater = None
            raise TransportError(
                f"cannot listen for the Telegram webhook on {s.webhook_listen}:{s.webhook_port}: "
                f"{exc.strerror or exc}; choose another telegram.webhook_port"
            ) from exc
        except TelegramError as exc:
            self._updater = None
            raise self._refused(classify(exc)) from exc
        log.info("telegram: webhook %s registered; listening on %s:%s", s.webhook_url, s.webhook_listen, s.webhook_port)

    def _refused(self, failure: Failure) -> TransportError:
        if failure.outcome is Outcome.TOKEN_REJECTED:
            return TransportError("Telegram rejected the bot token when setting the webhook; check it")
        return TransportError(
            f"Telegram refused the webhook {self._session.settings.webhook_url}: "
            f"{self._session.condition.redact(failure.detail)}; it must be a public https:// address that "
            "reaches telegram.webhook_listen:webhook_port"
        )

    async def read(self, handle: Callable[[Update], Awaitable[bool]]) -> None:
        """Handle posted updates one at a time until the transport stops; each post is
        answered 200 once ``handle`` says its update is done, else 500."""
        queue = self._queue
        try:
            while True:
                delivery = await self._session.until_stopped(queue.get())
                if not isinstance(delivery, Delivery):
                    continue
                done = False
                try:
                    done = not isinstance(delivery.update, Update) or await handle(delivery.update)
                finally:
                    if not delivery.stored.done():
                        delivery.stored.set_result(done)
        except Stopped:
            return
        finally:
            queue.refuse_waiting()

    def stop_accepting(self) -> None:
        """Refuse new posts (Telegram sends them again later); those taken are still handled."""
        self._queue.accepting = False

    async def stop(self) -> None:
        """Stop the webhook server (the webhook stays registered: Telegram keeps the updates)."""
        self._queue.accepting = False
        self._queue.refuse_waiting()
        updater, self._updater = self._updater, None
        if updater is not None and updater.running:
            try:
                await updater.stop()
            except Exception:
                log.debug("telegram: the webhook server did not stop cleanly", exc_info=True)
