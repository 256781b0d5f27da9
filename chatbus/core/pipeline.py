"""The flow of one message, from a transport or a plugin to the store.

A message from a person goes: validate, ``rate_limit``, ``parse_message``,
number it, store it; once stored it is handed to every transport in id order
and ``on_message`` runs (:mod:`~chatbus.core.delivery`). Messages from agents
and the system skip the rate limiter. A reply must answer a message that
exists, and a message resent with the same client id within ten minutes
(after a reconnect) is answered with the one already stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .errors import InvalidMessage, MessageTooLarge, NotStored, RateLimited, StoreError
from .message import (
    DEFAULT_ROOM,
    SYSTEM_SENDER,
    Attachment,
    Identity,
    Incoming,
    Kind,
    Message,
    Parsed,
    utcnow,
    valid_name,
)

if TYPE_CHECKING:
    from .delivery import Deliveries
    from .files import Files
    from .hooks import Hooks
    from .metrics import Metrics
    from .roster import Roster
    from .store import Store

__all__ = ["Pipeline"]

log = logging.getLogger("chatbus.hub")

_EMPTY_PARSE = Parsed()
#: Seconds within which a message resent with the same client id is the same message.
_RESEND_WINDOW = 600.0
#: How many (sender, client id) pairs are remembered for that.
_REMEMBERED = 10_000


class Pipeline:
    """Checks, numbers and stores messages; ``check_running`` raises when the hub is not running."""

    def __init__(
        self,
        *,
        hooks: Hooks,
        store: Store,
        deliveries: Deliveries,
        roster: Roster,
        files: Files,
        max_text_length: int,
        check_running: Callable[[], None],
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.hooks = hooks
        self.store = store
        self.deliveries = deliveries
        self.roster = roster
        self.files = files
        self.max_text_length = max_text_length
        self.check_running = check_running
        self.metrics = metrics
        self.clock = clock
        #: (sender, client id) of recent messages: their id and when they came.
        self._sent: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def check_text(self, text: object, *, may_be_empty: bool = False) -> str:
        """``text`` when it is a message text; empty only when ``may_be_empty`` (files go with it)."""
        if not isinstance(text, str):
            raise InvalidMessage("Message text must be a string.")
        if not text.strip():
            if not may_be_empty:
                raise InvalidMessage("Message text is empty; type something before sending.")
            return ""  # blank beside files is no text (no "(empty message)" caption on Telegram)
        limit = self.max_text_length
        if len(text) > limit:
            raise MessageTooLarge(
                f"Message is {len(text)} characters long; the limit is {limit}. Split it into shorter messages."
            )
        return text

    async def receive(
        self,
        identity: Identity,
        text: str,
        *,
        room: str = DEFAULT_ROOM,
        reply_to: int | None = None,
        transport: str | None = None,
        client_id: str | None = None,
        mentions: Sequence[str] = (),
        attachments: Sequence[str] = (),
    ) -> Message:
        """A message from a person; see :meth:`chatbus.Hub.receive`."""
        self.check_running()
        text = self.check_text(text, may_be_empty=bool(attachments))
        if not valid_name(room):
            raise InvalidMessage("Room names are 1-64 letters, digits, '_', '-' or '.'.")
        if reply_to is not None and (isinstance(reply_to, bool) or not isinstance(reply_to, int) or reply_to < 1):
            raise InvalidMessage("replyTo must be the id of a message (a positive whole number).")
        extra = tuple(mentions)
        if reply_to is not None:
            await self._check_reply_to(reply_to)
        if client_id is not None:
            earlier = await self._resent(identity.user_id, client_id)
            if earlier is not None:
                return earlier
        if not attachments:
            return await self._admit(Incoming(identity, text, room, reply_to, transport, client_id, extra))
        async with self.files.use(attachments) as files:
            return await self._admit(Incoming(identity, text, room, reply_to, transport, client_id, extra, files))

    async def _admit(self, incoming: Incoming) -> Message:
        """Ask the rate limiter about a person's message (agents' skip it), then accept it."""
        identity = incoming.identity
        if identity.kind == "human":
            decision = await self.hooks.rate_limit(identity, incoming)
            if decision is not None and not decision.allowed:
                self.metrics.rate_limited.labels(incoming.transport or "hub").inc()
                raise RateLimited(decision.retry_after)
        return await self.accept(
            identity,
            incoming.text,
            incoming.room,
            incoming.reply_to,
            incoming.transport,
            incoming.client_id,
            incoming.mentions,
            attachments=incoming.attachments,
        )

    async def send(
        self,
        text: str,
        *,
        sender: str = SYSTEM_SENDER,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
        kind: Kind | None = None,
        role: str | None = None,
        streaming: bool = False,
        attachments: Sequence[str] = (),
    ) -> Message:
        """A message from an agent or the system; see :meth:`chatbus.Hub.send`."""
        self.check_running()
        if not isinstance(text, str) or (not text.strip() and not attachments):
            raise InvalidMessage("Message text is empty.")
        if not text.strip():
            text = ""  # only files
        agent = self.roster.agents.get(sender)
        if kind is None:
            kind = "system" if sender == SYSTEM_SENDER else "agent"
        if role is None:
            role = agent.role if agent is not None else ("system" if kind == "system" else "agent")
        identity = Identity(sender, role, kind)
        if not attachments:
            return await self.accept(identity, text, room, reply_to, None, None, (), streaming=streaming)
        async with self.files.use(attachments) as files:
            return await self.accept(
                identity, text, room, reply_to, None, None, (), streaming=streaming, attachments=files
            )

    async def accept(
        self,
        identity: Identity,
        text: str,
        room: str,
        reply_to: int | None,
        transport: str | None,
        client_id: str | None,
        extra_mentions: tuple[str, ...],
        *,
        streaming: bool = False,
        attachments: tuple[Attachment, ...] = (),
    ) -> Message:
        """Parse, number and store a message; it is delivered once stored, in id order."""
        parsed = await self.hooks.parse(text) or _EMPTY_PARSE
        mentions = parsed.mentions
        if extra_mentions:
            mentions = tuple(dict.fromkeys(mentions + extra_mentions))
        message = Message(
            id=0 if self.store.shared else self.store.allocate_id(),  # a shared store numbers it as it stores it
            text=text,
            sender=identity.user_id,
            timestamp=utcnow(),
            room=room,
            kind=identity.kind,
            sender_role=identity.role,
            mentions=mentions,
            command=parsed.command,
            command_args=parsed.args,
            reply_to=reply_to,
            transport=transport,
            client_id=client_id,
            display_name=identity.display_name,
            streaming=streaming,
            attachments=attachments,
        )
        if self.store.shared:
            message = await self._add_shared(message)
        else:
            stored = asyncio.ensure_future(self.store.append(message))
            deliveries = self.deliveries
            stored.add_done_callback(
                lambda future: deliveries.stored(message, not future.cancelled() and future.exception() is None)
            )
            await asyncio.shield(stored)
        self.metrics.messages_received.labels(transport or "hub", identity.kind, "message").inc()
        if client_id is not None:
            self._remember(identity.user_id, client_id, message.id)
        return message

    async def _add_shared(self, message: Message) -> Message:
        """Store a message in the log several nodes share, which gives its id; every node (this one
        too) hands it to its transports from the log. Refused in words while the log cannot take it."""
        try:
            return await self.store.add(message)
        except StoreError as exc:
            log.error("a message from %s was refused: %s", message.sender, exc)
            raise NotStored(
                "Your message was not stored: the chat's storage cannot be reached right now. "
                "Send it again in a moment."
            ) from exc

    async def _check_reply_to(self, reply_to: int) -> None:
        """A reply must answer a message that exists (not one that may exist later)."""
        beyond = reply_to > self.store.last_id and not self.store.shared  # another node may have stored it
        if beyond or await self.store.get(reply_to) is None:
            raise InvalidMessage(f"There is no message {reply_to} to reply to; check replyTo.")

    def _remember(self, sender: str, client_id: str, message_id: int) -> None:
        sent = self._sent
        sent[(sender, client_id)] = (message_id, self.clock())
        sent.move_to_end((sender, client_id))
        while len(sent) > _REMEMBERED:
            sent.popitem(last=False)

    async def recall(self) -> None:
        """At start-up, remember the client ids of people's messages stored within the resend
        window, so a message resent after a crash or a restart is not stored twice either."""
        recent = await self.store.since(max(0, self.store.last_id - _REMEMBERED), _REMEMBERED)
        now, wall = self.clock(), utcnow()
        for message in recent:
            age = (wall - message.timestamp).total_seconds()
            if message.client_id and message.kind == "human" and age <= _RESEND_WINDOW:
                self._sent[(message.sender, message.client_id)] = (message.id, now - max(0.0, age))

    async def _resent(self, sender: str, client_id: str) -> Message | None:
        """The message ``sender`` already sent with ``client_id`` within the window
        (a resend after a reconnect), which is answered instead of stored twice."""
        entry = self._sent.get((sender, client_id))
        if entry is None or self.clock() - entry[1] > _RESEND_WINDOW:
            return None
        return await self.store.get(entry[0])
