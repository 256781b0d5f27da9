"""Messages that change after they were sent: edits, deletions and reactions.

Only the sender (or a ``manager``) may edit or delete a message; anyone in
the chat may react. A change is stored first, then handed to the transports
that take changes, in order with the messages (never before the message it
changes), then ``on_edit`` / ``on_delete`` / ``on_reaction`` run. An edited
text is checked and parsed like a new one; the text it replaces is kept in
the store. A deleted message stays in the log as a tombstone with empty text,
so ids never have gaps in meaning. An agent's answer being written is sent
with ``streaming=True`` and grows by edits until one ends the streaming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import Forbidden, InvalidMessage, NotFound
from .message import MANAGER_ROLE, Identity, Message, MessageDeleted, MessageEdited, Parsed, Reaction, utcnow

if TYPE_CHECKING:
    from .delivery import Deliveries
    from .hooks import Hooks
    from .pipeline import Pipeline
    from .store import Store

__all__ = ["MAX_REACTIONS", "Changes", "valid_emoji"]

log = logging.getLogger("chatbus.hub")

_MAX_EMOJI = 16
#: Different emoji one message may carry: every ``reaction`` frame lists them all, to every client.
MAX_REACTIONS = 50


def valid_emoji(value: object) -> bool:
    """A reaction: 1-16 printable characters without spaces (an emoji, or a short word like ``+1``)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_EMOJI
        and value.isprintable()
        and not any(ch.isspace() for ch in value)
    )


class Changes:
    """Edits, deletions and reactions for a hub; see the module docstring."""

    def __init__(
        self,
        *,
        hooks: Hooks,
        store: Store,
        deliveries: Deliveries,
        pipeline: Pipeline,
        after: Callable[[str, dict[str, Any]], None],
        received: Any = None,
    ) -> None:
        self.hooks = hooks
        self.store = store
        self.deliveries = deliveries
        self.pipeline = pipeline
        #: Runs an "all" hook after a change (the hub's: it adds itself as ``hub``).
        self._after = after
        # One change at a time: an edit reads the message and writes it back.
        self._lock = asyncio.Lock()
        #: ``chatbus_messages_received_total``, where changes are counted by their type.
        self._received = received

    def _count(self, identity: Identity, transport: str | None, kind: str) -> None:
        if self._received is not None:
            self._received.labels(transport or "hub", identity.kind, kind).inc()

    async def _current(self, message_id: object) -> Message:
        if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id < 1:
            raise InvalidMessage("id must be the id of a message (a positive whole number).")
        message = await self.store.get(message_id) if message_id <= self.store.last_id else None
        if message is None or message.deleted:
            raise NotFound(f"There is no message {message_id}; it may have been deleted.")
        return message

    @staticmethod
    def _check_may_change(identity: Identity, message: Message, action: str) -> None:
        if identity.user_id != message.sender and identity.role != MANAGER_ROLE:
            raise Forbidden(f"Only {message.sender} (or a manager) may {action} message {message.id}.")

    async def edit(
        self, identity: Identity, message_id: int, text: str, *, streaming: bool = False, transport: str | None = None
    ) -> Message:
        """Change a message's text; raises ``NotFound``, ``Forbidden`` or ``InvalidMessage``."""
        self.pipeline.check_running()
        text = self.pipeline.check_text(text)
        parsed = await self.hooks.parse(text) or Parsed()
        async with self._lock:
            previous = await self._current(message_id)
            self._check_may_change(identity, previous, "edit")
            if text == previous.text and streaming == previous.streaming:
                return previous
            message = replace(
                previous,
                text=text,
                mentions=parsed.mentions,
                command=parsed.command,
                command_args=parsed.args,
                edited_at=utcnow(),
                edited_by=identity.user_id,
                streaming=streaming,
            )
            await self.store.replace(message, previous)
            self.deliveries.change(MessageEdited(message))
        self._count(identity, transport, "edit")
        self._run_hooks("on_edit", message=message, previous=previous)
        return message

    async def delete(self, identity: Identity, message_id: int, *, transport: str | None = None) -> Message:
        """Delete a message, leaving its tombstone; raises ``NotFound`` or ``Forbidden``."""
        self.pipeline.check_running()
        async with self._lock:
            previous = await self._current(message_id)
            self._check_may_change(identity, previous, "delete")
            message = replace(
                previous,
                text="",
                mentions=(),
                command=None,
                command_args=(),
                deleted_at=utcnow(),
                deleted_by=identity.user_id,
                streaming=False,
                attachments=(),
            )
            await self.store.replace(message, previous)
            self.deliveries.change(MessageDeleted(message))
        self._count(identity, transport, "delete")
        self._run_hooks("on_delete", message=message)
        return message

    async def react(
        self, identity: Identity, message_id: int, emoji: str, on: bool = True, *, transport: str | None = None
    ) -> Reaction:
        """Add or remove ``identity``'s reaction ``emoji``; raises ``NotFound`` or ``InvalidMessage``."""
        self.pipeline.check_running()
        if not valid_emoji(emoji):
            raise InvalidMessage("emoji must be 1-16 characters without spaces, such as 👍 or +1.")
        if not isinstance(on, bool):
            raise InvalidMessage("on must be true (add the reaction) or false (remove it).")
        async with self._lock:
            message = await self._current(message_id)
            if on and len(message.reactions) >= MAX_REACTIONS and emoji not in dict(message.reactions):
                raise InvalidMessage(
                    f"Message {message.id} already has {MAX_REACTIONS} different reactions; add one of those instead."
                )
            reactions = await self.store.react(message.id, emoji, identity.user_id, on)
            change = Reaction(replace(message, reactions=reactions), emoji, identity.user_id, on)
            self.deliveries.change(change)
        self._count(identity, transport, "reaction")
        self._run_hooks("on_reaction", message=change.message, emoji=emoji, user_id=identity.user_id, on=on)
        return change

    def _run_hooks(self, name: str, **kwargs: Any) -> None:
        self._after(name, kwargs)
