"""The built-in ``agents`` plugin: agents that answer mentions and do real work.

``AgentsPlugin`` is what chatbus registers under the name ``agents``. Plugin
authors replace parts of it through two first-result hooks:

``agent_reply(agent, kind, details, message)``
    the text an agent posts (see :mod:`chatbus.plugins.agents.texts` for the
    kinds and their details); return ``None`` to leave it to the next plugin;
``agent_work(work)``
    do a task (``Work``) and return a ``WorkResult``; the built-in runs the
    agent's worker command (:func:`run_command`).
"""

from __future__ import annotations

from .intent import Intent, understand
from .plugin import STATE_KEY, AgentsPlugin, Job
from .texts import KINDS, default_reply
from .work import Work, WorkResult, expand_command, run_command

__all__ = [
    "KINDS",
    "STATE_KEY",
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
