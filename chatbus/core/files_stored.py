"""A stored file's bytes as a backend hands them out (``open_file``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from .message import Attachment

__all__ = ["StoredFile"]

_CHUNK = 256 * 1024


class StoredFile:
    """The bytes of a stored file: a local ``path`` (served with ``sendfile``,
    uploaded to Telegram as a file) or ``data`` in memory. A backend that keeps
    files elsewhere subclasses it and overrides :meth:`read`."""

    def __init__(self, attachment: Attachment, *, path: Path | None = None, data: bytes | None = None) -> None:
        self.attachment = attachment
        #: The file on this machine, when there is one.
        self.path = path
        self._data = data

    @property
    def size(self) -> int:
        return self.attachment.size

    async def read(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from ``offset``, ``length`` of them (to the end when None), in chunks."""
        end = self.size if length is None else min(self.size, offset + length)
        if self._data is not None:
            for start in range(offset, end, _CHUNK):
                yield self._data[start : min(end, start + _CHUNK)]
            return
        if self.path is None:
            raise NotImplementedError("a StoredFile without a path or data must override read()")
        handle = await asyncio.to_thread(self.path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, offset)
            position = offset
            while position < end:
                chunk = await asyncio.to_thread(handle.read, min(_CHUNK, end - position))
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def read_all(self) -> bytes:
        """Every byte at once: for small files only."""
        return b"".join([chunk async for chunk in self.read()])
