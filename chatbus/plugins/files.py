"""The built-in ``files`` plugin: keeps files in a local folder.

Each file lives at ``<files dir>/<first 2 hex digits of its id>/<id>``, named
by its content, so the same bytes are one file. ``files.dir`` sets the folder
(default: beside the database). A plugin that keeps files elsewhere (an
S3-style or shared store) implements ``store_file``, ``open_file`` and
``delete_file`` itself and answers before this one, which is ``trylast``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from chatbus import hookimpl
from chatbus.core.files import StoredFile, valid_file_id
from chatbus.core.message import Attachment

if TYPE_CHECKING:
    from chatbus import Hub

__all__ = ["LocalFiles"]


class LocalFiles:
    """Registered as ``files``; the folder is ``hub.files.directory``."""

    name = "files"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def path_of(self, attachment: Attachment) -> Path:
        """Where a file's bytes are (or would be) kept."""
        if not valid_file_id(attachment.id):
            raise ValueError(f"not a file id: {attachment.id!r}")
        return self.hub.files.directory / attachment.id[:2] / attachment.id

    @hookimpl(trylast=True)
    async def store_file(self, attachment: Attachment, source: Path) -> bool:
        await asyncio.to_thread(self._move, source, self.path_of(attachment))
        return True

    @staticmethod
    def _move(source: Path, target: Path) -> None:
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            partial = target.with_suffix(".part")
            shutil.copyfile(source, partial)  # another file system: copy, then rename into place
            os.replace(partial, target)

    @hookimpl(trylast=True)
    def open_file(self, attachment: Attachment) -> StoredFile | None:
        path = self.path_of(attachment)
        return StoredFile(attachment, path=path) if path.is_file() else None

    @hookimpl(trylast=True)
    def delete_file(self, attachment: Attachment) -> bool:
        self.path_of(attachment).unlink(missing_ok=True)
        return True
