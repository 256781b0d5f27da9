"""``edit``, ``delete`` and ``react`` frames: a person changing messages.

Each reads its frame (:mod:`.wire`) and asks the hub, which checks who may
do what (``FORBIDDEN``, ``NOT_FOUND``) and tells every client with
``message_edited``, ``message_deleted`` or ``reaction``
(:func:`.frames.change_frame`); the asker learns of it the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from chatbus.core.errors import InvalidMessage
from chatbus.core.message import Identity, utcnow

from .wire import parse_delete, parse_edit, parse_react

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["CHANGES", "ChangeHandler"]

#: Does what one change frame asks, as ``identity``.
ChangeHandler = Callable[["Hub", Identity, Mapping[str, Any]], Awaitable[None]]


async def _edit(hub: Hub, identity: Identity, data: Mapping[str, Any]) -> None:
    frame = parse_edit(data)
    asked = utcnow()
    edited = await hub.edit(identity, frame.message_id, frame.text, transport="websocket")
    if edited.edited_at is None or edited.edited_at < asked:
        # Nothing changed, so nobody is told; the asker still gets an answer.
        raise InvalidMessage(f"Message {edited.id} already says that; nothing was changed.")


async def _delete(hub: Hub, identity: Identity, data: Mapping[str, Any]) -> None:
    await hub.delete(identity, parse_delete(data).message_id, transport="websocket")


async def _react(hub: Hub, identity: Identity, data: Mapping[str, Any]) -> None:
    frame = parse_react(data)
    await hub.react(identity, frame.message_id, frame.emoji, frame.on, transport="websocket")


#: The change frames by type.
CHANGES: Mapping[str, ChangeHandler] = {"edit": _edit, "delete": _delete, "react": _react}
