"""The hooks the agents plugin adds (through ``add_hookspecs``), typed with its own types.

Both are first-result hooks: the built-in implementations are ``trylast``,
so an installed plugin answers first; returning ``None`` leaves the answer to
the next one. Either may be ``async def``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatbus import hookspec

if TYPE_CHECKING:
    from chatbus import Agent, Hub, Message

    from .work import Work, WorkResult

__all__ = ["agent_converse", "agent_reply", "agent_work"]


@hookspec(firstresult=True)
def agent_reply(agent: Agent, kind: str, details: dict[str, Any], message: Message | None) -> str | None:
    """Return the text ``agent`` posts for a reply ``kind`` (greeting, acknowledge, queued, status, completed, help, ...) with ``details``; first result wins."""


@hookspec(firstresult=True)
def agent_work(work: Work) -> WorkResult | None:
    """Do ``work.task`` for ``work.agent`` (a ``Work``) and return a ``WorkResult``; may be async; first result wins."""


@hookspec(firstresult=True)
def agent_converse(agent: Agent, message: Message, hub: Hub) -> bool | None:
    """Answer ``message`` (a question or conversation, not a task) as ``agent``; True when answered, None to pass it on."""
