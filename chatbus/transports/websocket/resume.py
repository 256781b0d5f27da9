"""What a client that signs in again missed: ``auth_response.missed``.

A client that reconnects sends ``lastSeenId`` (the newest id it saw), the
``epoch`` of the log that id belongs to, and ``rooms`` (the rooms it shows).
It gets back the messages of those rooms after that id (only the default
room when it names none: an old client knows no other), at most
``replay_limit`` of them and ``replay_max_bytes`` in all, the newest when
there are more (``history`` pages further back).

Ids mean the same messages only within one epoch. When the client's epoch
is not this log's, or its ``lastSeenId`` is beyond the newest id this log
ever gave, it saw another log (a new or replaced database, another
deployment), or it is further behind than the log keeps (the Redis engine
keeps ``[engine] max_length`` messages, ``max_age`` seconds): ``missedReset``
tells it so, and ``missed`` holds the newest messages, as for ``lastSeenId``
0, so a simple client still shows the recent chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatbus.core.message import DEFAULT_ROOM, Message

from .frames import newest_within

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

    from .settings import WebSocketSettings
    from .wire import AuthFrame

__all__ = ["Replay", "replay", "resumed"]


@dataclass(frozen=True, slots=True)
class Replay:
    """The ``missed`` part of an ``auth_response``."""

    #: Encoded message frames, oldest first.
    frames: list[bytes]
    #: Whether older missed messages were left out (``missedHasMore``).
    more: bool
    #: The id of the newest message in ``frames``, 0 for none: live frames up to it are not sent again.
    floor: int
    #: Whether ``lastSeenId`` belongs to another log (``missedReset``).
    reset: bool


def resumed(missed: Replay | None, frame: AuthFrame) -> str:
    """How a sign-in resumed, for the log: nothing, or what it missed after which id."""
    if missed is None:
        return ""
    other_log = " of another log (missedReset)" if missed.reset else ""
    return f", {len(missed.frames)} missed message(s) after {frame.last_seen_id}{other_log}"


async def replay(hub: Hub, frame: AuthFrame, settings: WebSocketSettings) -> Replay | None:
    """What the client signing in with ``frame`` missed; None when it does not resume."""
    last_seen = frame.last_seen_id
    if last_seen is None:
        return None
    store = hub.store
    reset = (frame.epoch is not None and frame.epoch != store.epoch) or last_seen > store.last_id
    if not reset and last_seen:
        kept = await store.kept_from()  # a log that keeps only the newest: what it dropped is missed for good
        reset = kept > last_seen + 1
    after = 0 if reset else last_seen
    rooms = frame.rooms or (DEFAULT_ROOM,)
    found, more = await _newest_after(hub, after, rooms, settings.replay_limit)
    frames, left_out = newest_within(found, settings.replay_max_bytes)
    return Replay(frames, more or left_out > 0, found[-1].id if frames else 0, reset)


async def _newest_after(hub: Hub, after: int, rooms: Sequence[str], limit: int) -> tuple[list[Message], bool]:
    """The newest ``limit`` messages of ``rooms`` with an id above ``after``,
    oldest first, and whether there were more.

    One query per room, on the store's (room, id) index, so a busy room the
    client did not ask for costs nothing.
    """
    found: list[Message] = []
    for room in rooms:
        found += await hub.since(after, limit + 1, room)
    if len(found) <= limit:
        return sorted(found, key=_id), False
    newest: list[Message] = []
    for room in rooms:
        page, _ = await hub.history(room, None, limit)
        newest += [message for message in page if message.id > after]
    newest.sort(key=_id)
    return newest[-limit:], True


def _id(message: Message) -> int:
    return message.id
