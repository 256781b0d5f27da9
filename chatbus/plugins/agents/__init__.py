"""The built-in ``agents`` plugin: agents that answer mentions and do real work.

``AgentsPlugin`` is what chatbus registers under the name ``agents``. It adds
two first-result hooks of its own (:mod:`.hookspecs`) through which plugin
authors replace parts of it:

``agent_reply(agent, kind, details, message)``
    the text an agent posts (see :mod:`chatbus.plugins.agents.texts` for the
    kinds and their details); return ``None`` to leave it to the next plugin;
``agent_work(work)``
    do a task (``Work``) and return a ``WorkResult``; the built-in runs the
    agent's worker command (:func:`run_command`).
"""

from __future__ import annotations

from .intent import Intent, understand
from .jobs import STATE_KEY, Job
from .plugin import AgentsPlugin
from .settings import AgentSettings
from .texts import KINDS, default_reply
from .work import Work, WorkResult, expand_command, run_command

__all__ = [
    "KINDS",
    "STATE_KEY",
    "AgentSettings",
    "AgentsPlugin",
    "Intent",
    "Job",
    "Work",
    "WorkResult",
    "default_reply",
    "expand_command",
    "run_command",
    "understand",
]
