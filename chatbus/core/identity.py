"""Who may take which name: nobody poses as an agent, the system or the whole team.

Names are compared by :func:`~chatbus.core.message.name_key` (Unicode form,
case, look-alike letters of other scripts) and with the suffix the mention
parser drops, so ``Alice``, a Cyrillic ``аlice`` and ``alice-bot`` all pass
for agent ``alice``: mentions and replies would reach the wrong one.
"""

from __future__ import annotations

from collections.abc import Iterable

from .message import SYSTEM_SENDER, TEAM, name_key

__all__ = ["MENTION_SUFFIX", "refusal", "reserved_name"]

#: The suffix mentions drop (``@alice-bot`` is ``alice``) when no ``mentions`` plugin says otherwise.
MENTION_SUFFIX = "-bot"


def reserved_name(user_id: str, agents: Iterable[str], strip_suffix: str = MENTION_SUFFIX) -> str | None:
    """The agent, ``system`` or ``team`` that ``user_id`` would pass for, else None."""
    key = name_key(user_id)
    keys = {key}
    suffix = name_key(strip_suffix)
    if suffix and key.endswith(suffix) and len(key) > len(suffix):
        keys.add(key[: -len(suffix)].rstrip(".-"))
    reserved = {name_key(name): name for name in agents}
    for name in (SYSTEM_SENDER, TEAM):
        reserved[name_key(name)] = name
    return next((reserved[one] for one in keys if one in reserved), None)


def refusal(user_id: str, taken: str) -> str:
    """What a person who asked for ``user_id`` is told when ``taken`` has that name."""
    whose = "is reserved" if taken in (SYSTEM_SENDER, TEAM) else "belongs to an agent"
    if taken == user_id:
        return f"The name {user_id!r} {whose}; choose another user id."
    return f"The name {user_id!r} is too close to {taken!r}, which {whose}; choose another user id."
