"""What the hub hands the WebSocket transport, turned into frames for its clients.

Messages, presence, agent status and typing, changes of messages (edits,
deletions, reactions) go to every signed-in connection through the
transport's :class:`~.broadcast.Broadcaster`; a notice goes to one person's
connections only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from chatbus.core.message import Change, Event, Message, Notice, Presence, Typing

from .broadcast import Broadcaster
from .frames import change_frame, encode, event_frame, message_frame, notice_frame
from .settings import WebSocketSettings

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

    from .connection import ChatConnection

__all__ = ["Outgoing"]


class Outgoing:
    """The transport's ``deliver``, ``notify``, ``changed`` and ``tell``."""

    hub: Hub | None
    settings: WebSocketSettings
    _fan_out: Broadcaster

    async def deliver(self, message: Message) -> None:
        """Write a stored message to every signed-in connection (the sender too)."""
        if self._fan_out.live:
            self._fan_out.send(encode(message_frame(message)), message.id, accepted=message.timestamp.timestamp())
        else:
            self._fan_out.delivered(message.id)

    async def notify(self, event: Event) -> None:
        """Presence and agent status to everyone; typing to everyone but the typist.

        In a chat with more than ``presence_limit`` people, people's comings
        and goings are not broadcast: each would cost a frame to every
        connection, which grows with the square of the crowd.
        """
        if not self._fan_out.live:
            return
        if isinstance(event, Presence) and event.kind == "human" and self._crowded():
            return
        skip = event.user_id if isinstance(event, Typing) else None
        self._fan_out.send(encode(event_frame(event)), None, skip)

    def _crowded(self) -> bool:
        hub = self.hub
        return hub is not None and hub.people_online > self.settings.presence_limit

    async def changed(self, change: Change) -> None:
        """An edit, deletion or reaction: ``message_edited``, ``message_deleted`` or ``reaction`` to everyone."""
        if self._fan_out.live:
            self._fan_out.send(encode(change_frame(change)), None)

    async def echo(self, connection: ChatConnection, message: Message) -> None:
        """A stored message again, to one connection: the answer to a resend of it (the same ``clientId``),
        which is not stored twice, so a client that lost the first echo in a reconnect still learns its id."""
        with contextlib.suppress(ConnectionClosed):
            await connection.send(encode(message_frame(message)), text=True)

    async def sign_out(self, user_id: str, reason: str) -> None:
        """Close every connection of ``user_id`` (1008, ``reason``): an agent now has their name."""
        mine = [c for c in list(self._fan_out.live) if c.identity is not None and c.identity.user_id == user_id]
        timeout = self.settings.close_timeout
        await asyncio.gather(*(c.close_within(CloseCode.POLICY_VIOLATION, reason, timeout) for c in mine))

    async def tell(self, notice: Notice) -> None:
        """A ``notice`` to the connections of one person only."""
        data = encode(notice_frame(notice))
        for connection in list(self._fan_out.live):
            if connection.identity is not None and connection.identity.user_id == notice.user_id:
                with contextlib.suppress(ConnectionClosed):
                    await connection.send(data, text=True)
