"""Every chatbus hook, in one place.

Hooks are called with keyword arguments only; an implementation may accept
any subset of the arguments. "First result" hooks stop at the first
implementation that returns something other than ``None``; the built-in
plugins implement them with ``trylast=True`` so an installed plugin wins. Any
implementation may be ``async def``: the hub awaits it (for first-result hooks
it awaits each answer before deciding whether to go on).

Every call goes through pluggy, so ``wrapper=True`` implementations and
``pm.add_hookcall_monitoring`` work as pluggy documents them; a wrapper sees
an ``async def`` implementation's answer as an awaitable (see
:mod:`chatbus.core.hooks`). A plugin adds hooks of its own by implementing
``add_hookspecs``; the agents plugin adds ``agent_reply`` and ``agent_work``
that way (:mod:`chatbus.plugins.agents.hookspecs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from .files_stored import StoredFile
    from .hub import Hub
    from .message import Attachment, Credentials, Identity, Incoming, Message, Parsed, RateDecision

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "chatbus"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def on_auth(credentials: Credentials) -> Identity | None:
    """Accept a connecting user by returning an ``Identity``, refuse by raising ``AuthError``; first result wins."""


@hookspec(firstresult=True)
def rate_limit(identity: Identity, message: Incoming) -> RateDecision | None:
    """Allow a person's message or refuse it with a retry time (``RateDecision``); first result wins."""


@hookspec(firstresult=True)
def parse_message(text: str) -> Parsed | None:
    """Return the mentions, command and command arguments found in ``text`` (``Parsed``); first result wins."""


@hookspec
def on_message(message: Message, hub: Hub) -> Any:
    """React to a message after it is stored and handed to the transports; all called, return value ignored."""


@hookspec
def on_edit(message: Message, previous: Message, hub: Hub) -> Any:
    """A message's text was changed (``message`` is the new state, ``previous`` the old); all called."""


@hookspec
def on_delete(message: Message, hub: Hub) -> Any:
    """A message was deleted (``message`` is its tombstone: empty text, ``deleted_by`` set); all called."""


@hookspec
def on_reaction(message: Message, emoji: str, user_id: str, on: bool, hub: Hub) -> Any:
    """Someone added (``on``) or removed reaction ``emoji`` to ``message`` (with every reaction after it); all called."""


@hookspec
def on_connect(identity: Identity, transport: str, hub: Hub) -> Any:
    """A user's first connection opened (they are now online); all called."""


@hookspec
def on_disconnect(identity: Identity, transport: str, hub: Hub) -> Any:
    """A user's last connection closed (they are now offline); all called."""


@hookspec
def on_startup(hub: Hub) -> Any:
    """The hub has opened its store and is about to start its transports; all called, an exception aborts start-up."""


@hookspec
def on_shutdown(hub: Hub) -> Any:
    """The hub has stopped its transports and is about to close its store; all called."""


@hookspec(firstresult=True)
def store_file(attachment: Attachment, source: Path) -> bool | None:
    """Keep the bytes of a checked upload (move or copy ``source``, a spool file) and return True; first result wins."""


@hookspec(firstresult=True)
def open_file(attachment: Attachment) -> StoredFile | None:
    """Return a ``StoredFile`` giving the bytes of a kept file, None when this backend has not got it; first result wins."""


@hookspec(firstresult=True)
def delete_file(attachment: Attachment) -> bool | None:
    """Remove the bytes of a file nothing needs any more and return True; first result wins."""


@hookspec(historic=True)
def add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add a plugin's own hook specs with ``pm.add_hookspecs(module)``; called once as the plugin registers (as pytest's ``pytest_addhooks``)."""
