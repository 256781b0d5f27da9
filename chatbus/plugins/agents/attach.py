"""Files a worker attaches to its completion message, kept inside its working directory.

A worker names a file with a line ``ATTACH <path>`` on its standard output
(or a plugin calls ``work.attach(path)``). When the task is done, each named
file is stored through ``hub.files.save_path`` as the agent and attached to
the ``completed`` message (a file over the size limit or of a type the chat
does not take is left out, with a note saying why). Only regular files inside the agent's working
directory qualify: a path that leaves it (``..``, an absolute path elsewhere),
a symbolic link anywhere on the way, a hard link, a directory or a device is
refused with a note in the message, never followed. The file is opened one
directory at a time with ``O_NOFOLLOW`` (no check-then-open race), and what
was opened is what gets stored.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mimetypes
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from chatbus import ChatbusError

if TYPE_CHECKING:
    from chatbus import Hub
    from chatbus.core.files import Spool
    from chatbus.core.message import Attachment

    from .work import Work

__all__ = ["Attached", "NotAttached", "attach_files", "open_inside"]

log = logging.getLogger("chatbus.agents")

_CHUNK = 256 * 1024


class NotAttached(Exception):
    """A file named by a worker that is not attached; the text says why."""


@dataclass
class Attached:
    """What became of the files a worker named: ids attached, and notes on the others."""

    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _parts(root: Path, given: str) -> list[str]:
    """The path components of ``given`` below ``root``; ``NotAttached`` when it leaves it."""
    path = PurePath(given)
    if path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            raise NotAttached("it is outside my working directory") from None
    parts = [part for part in path.parts if part not in ("", ".")]
    if ".." in parts:
        raise NotAttached("it is outside my working directory")
    if not parts:
        raise NotAttached("it is a directory, not a file")
    return parts


def open_inside(root: Path, given: str) -> int:
    """Open ``given`` (relative to ``root``, or absolute inside it) for reading,
    following no symbolic link on the way; the descriptor of a regular file."""
    parts = _parts(root, given)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise NotAttached(f"my working directory cannot be opened ({(exc.strerror or 'error').lower()})") from None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise _why(exc) from None
            os.close(fd)
            fd = inner
        try:
            opened = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise _why(exc) from None
    finally:
        os.close(fd)
    info = os.fstat(opened)
    reason = (
        "it is a directory, not a file"
        if stat.S_ISDIR(info.st_mode)
        else "it is not a regular file"
        if not stat.S_ISREG(info.st_mode)
        else "it is a hard link to another file"
        if info.st_nlink > 1
        else None
    )
    if reason is not None:
        os.close(opened)
        raise NotAttached(reason)
    return opened


def _why(exc: OSError) -> NotAttached:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return NotAttached("it is a symbolic link; only files in my working directory are attached")
    if exc.errno == errno.ENOTDIR:
        return NotAttached("a part of its path is not a directory (or is a symbolic link)")
    if exc.errno == errno.ENOENT:
        return NotAttached("there is no such file")
    if exc.errno == errno.EACCES:
        return NotAttached("it cannot be read (permission denied)")
    return NotAttached(f"it cannot be opened ({(exc.strerror or 'error').lower()})")


def _copy(root: Path, given: str, spool: Spool) -> None:
    """Copy the file named ``given`` into ``spool``; ``NotAttached`` when it cannot be."""
    with os.fdopen(open_inside(root, given), "rb") as source:
        while chunk := source.read(_CHUNK):
            spool.write(chunk)


async def _store(hub: Hub, work: Work, given: str) -> Attachment:
    """Store one named file as the agent."""
    name = PurePath(given).name
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    try:
        async with hub.files.spool() as spool:
            await asyncio.to_thread(_copy, work.workdir, given, spool)
            return await hub.files.save(spool, name, content_type, work.agent.name)
    except ChatbusError as exc:
        reason = str(exc).rstrip(".")
        raise NotAttached(reason[:1].lower() + reason[1:]) from None


async def attach_files(hub: Hub, work: Work) -> Attached:
    """Store the files ``work`` named, at most the per-message limit; what was attached and why not the rest."""
    result = Attached()
    if not work.attached:
        return result
    limit = hub.files.settings.max_per_message
    for given in work.attached:
        if len(result.ids) >= limit:
            result.notes.append(f"{given} was not attached: a message carries at most {limit} files")
            continue
        try:
            stored = await _store(hub, work, given)
        except NotAttached as exc:
            log.warning("agent %s: not attaching %r: %s", work.agent.name, given, exc)
            result.notes.append(f"{given} was not attached: {exc}")
            continue
        except Exception:  # a full disk, a broken store: the message still goes out
            log.exception("agent %s: could not attach %r", work.agent.name, given)
            result.notes.append(f"{given} was not attached: it could not be stored; the server log says why")
            continue
        if stored.id not in result.ids:
            result.ids.append(stored.id)
            result.names.append(stored.name)
    return result
