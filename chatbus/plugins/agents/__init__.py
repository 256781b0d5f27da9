"""The built-in ``agents`` plugin: agents that answer mentions and do real work.

``AgentsPlugin`` is what chatbus registers under the name ``agents``. It adds
three first-result hooks of its own (:mod:`.hookspecs`) through which plugin
authors replace parts of it:

``agent_reply(agent, kind, details, message)``
    the text an agent posts (see :mod:`chatbus.plugins.agents.texts` and
    :mod:`.control_texts` for the kinds and their details); return ``None``
    to leave it to the next plugin;
``agent_converse(agent, message, hub)``
    answer a question or conversation as the agent (post it and return
    ``True``); the built-in asks the agent's model (:mod:`.brain`);
``agent_work(work)``
    do a task (``Work``) and return a ``WorkResult``; the built-in runs the
    agent's worker command (:func:`run_command`).
"""

from __future__ import annotations

from .control import may_give_work
from .control_texts import CONTROL_KINDS
from .intent import Intent, understand
from .jobs import STATE_KEY, Job
from .plugin import AgentsPlugin
from .settings import AgentSettings
from .texts import KINDS, default_reply
from .work import Work, WorkResult, expand_command, run_command

__all__ = [
    "CONTROL_KINDS",
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
    "may_give_work",
    "run_command",
    "understand",
]
