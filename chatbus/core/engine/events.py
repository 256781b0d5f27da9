"""What passes between nodes besides stored messages, as the dicts an engine broadcasts.

Presence, agent status, typing, changes to messages (edits, deletions,
reactions) and notices for one person: each node hands its own to the others
(:meth:`~.base.Engine.broadcast`), which hand them to their transports as if
they had happened there. A change carries the message as changed (the
engine's codec), so a node need not read it back.
"""

from __future__ import annotations

from typing import Any

from ..message import AgentStatus, MessageDeleted, MessageEdited, Notice, Presence, Reaction, Typing
from .codec import decode, encode

__all__ = ["Passing", "from_wire", "to_wire"]

#: What a node hands to the others.
Passing = Presence | AgentStatus | Typing | MessageEdited | MessageDeleted | Reaction | Notice

_PLAIN: dict[str, type[Presence | AgentStatus | Typing | Notice]] = {
    "presence": Presence,
    "agent_status": AgentStatus,
    "typing": Typing,
    "notice": Notice,
}
_CHANGES: dict[str, type[MessageEdited | MessageDeleted]] = {"edited": MessageEdited, "deleted": MessageDeleted}


def to_wire(item: Passing) -> dict[str, Any]:
    """``item`` as a dict of JSON values, ``t`` naming its type."""
    if isinstance(item, Reaction):
        message = item.message
        return {
            "t": "reaction",
            "id": message.id,
            "m": encode(message),
            "e": item.emoji,
            "u": item.user_id,
            "on": item.on,
        }
    if isinstance(item, MessageEdited | MessageDeleted):
        kind = "edited" if isinstance(item, MessageEdited) else "deleted"
        return {"t": kind, "id": item.message.id, "m": encode(item.message)}
    kind = next(name for name, cls in _PLAIN.items() if isinstance(item, cls))
    fields = {name: getattr(item, name) for name in item.__dataclass_fields__}
    return {"t": kind, **fields}


def from_wire(event: dict[str, Any]) -> Passing | None:
    """The item ``to_wire`` made; None for what this version does not know (a newer node's)."""
    kind = event.get("t")
    try:
        if kind == "reaction":
            message = decode(int(event["id"]), event["m"])
            return Reaction(message, str(event["e"]), str(event["u"]), bool(event["on"]))
        if kind in _CHANGES:
            return _CHANGES[kind](decode(int(event["id"]), event["m"]))
        cls = _PLAIN.get(str(kind))
        if cls is None:
            return None
        fields = {name: event[name] for name in cls.__dataclass_fields__ if name in event}
        return cls(**fields)
    except (KeyError, TypeError, ValueError):
        return None
