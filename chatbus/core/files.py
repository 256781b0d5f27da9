"""Files and pictures sent with messages: ``hub.files``.

A file is kept outside the message log, named by its content (the first 32
hex digits of its SHA-256), so the same bytes uploaded twice are one file.
An upload is streamed into a spool file in the files folder (never whole in
memory), checked (size, type against the allow-list, images with Pillow),
then handed to the backend through the first-result hook ``store_file``: the
built-in ``files`` plugin keeps it in a local folder, a plugin may keep it
anywhere else (``open_file`` and ``delete_file`` read and remove it). Its
metadata (name, size, type, uploader, pixels) is kept in the store, with the
messages that carry it. An upload that no message carries is removed after
``orphan_after`` seconds; deleting a message removes its files when
``delete_with_message`` is set and no other message has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import FileRefused, InvalidMessage, NotFound, StoreError
from .files_images import needs_check, probe_image
from .files_rules import FilesSettings, check_name, content_type_for, human_size, type_allowed, type_refusal
from .files_stored import StoredFile
from .message import Attachment

if TYPE_CHECKING:
    from .hooks import Hooks
    from .settings import Settings
    from .store import Store

__all__ = [
    "DERIVED_FOLDERS",
    "Attachment",
    "FileRefused",
    "Files",
    "FilesSettings",
    "Spool",
    "StoredFile",
    "valid_file_id",
]

log = logging.getLogger("chatbus.files")

_FILE_ID = re.compile(r"[0-9a-f]{32}")
_CHUNK = 1024 * 1024
#: Spool files are named so; a spool file older than ``orphan_after`` is a leftover.
_SPOOL_SUFFIX = ".part"
#: Folders in the files folder for what is made from a file (``thumbnails/<id[:2]>/<id>.<ext>``):
#: removed with the file.
DERIVED_FOLDERS = ("thumbnails",)


def valid_file_id(value: object) -> bool:
    """A file id: 32 lower-case hex digits."""
    return isinstance(value, str) and _FILE_ID.fullmatch(value) is not None


class Spool:
    """A temporary file an upload is streamed into; hashes and counts as it goes."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.saved = False
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = path.open("xb")

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; ``FileRefused`` (``FILE_TOO_BIG``) once past the size limit."""
        if self._file is None:
            raise ValueError("this spool is closed")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise FileRefused(
                "FILE_TOO_BIG", f"The file is larger than {human_size(self.max_bytes)}, the limit; send a smaller one."
            )
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.discard()
            log.error("files: cannot write an upload to %s: %s", self.path.parent, exc.strerror or exc)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise FileRefused("STORAGE_FULL", "The server's disk is full; tell its operator.") from exc
            raise StoreError("the upload could not be written on the server; try again later") from exc

    @property
    def file_id(self) -> str:
        """The id the bytes written so far have."""
        return self._hash.hexdigest()[:32]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Close and remove the spool file."""
        self.close()
        self.path.unlink(missing_ok=True)


class Files:
    """The files of one hub (``hub.files``); see the module docstring."""

    def __init__(
        self,
        settings: FilesSettings,
        *,
        store: Store,
        hooks: Hooks,
        db: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._hooks = hooks
        self._db = db
        #: Seconds since the epoch, for upload times (kept across restarts).
        self.wall_clock = wall_clock
        self._directory: Path | None = settings.dir.expanduser() if settings.dir is not None else None
        self._temporary = False
        #: Files a message being accepted refers to: never removed meanwhile.
        self._claimed: dict[str, int] = {}
        #: One lock per file id being stored, removed or claimed, and how many hold or wait for it.
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        #: Bytes of uploads being stored now, counted against ``max_total_bytes`` already.
        self._reserved = 0
        #: Pictures checked at once (decoding one takes memory).
        self._probing = asyncio.Semaphore(2)
        #: Counts each outcome (``stored``, ``duplicate``, ``removed``, a refusal's code): the hub's metrics.
        self.count: Callable[[str], None] = lambda outcome: None

    @classmethod
    def configured(cls, settings: Settings, *, store: Store, hooks: Hooks) -> Files:
        """The files of a hub with ``settings`` (its ``[files]`` section, beside its ``db``)."""
        return cls(FilesSettings.read(settings, "files"), store=store, hooks=hooks, db=settings.db)

    # where files are kept -------------------------------------------------
    @property
    def directory(self) -> Path:
        """The files folder (the built-in backend keeps files here; uploads are spooled here)."""
        if self._directory is None:
            if self._db == ":memory:":
                self._directory = Path(tempfile.mkdtemp(prefix="chatbus-files-"))
                self._temporary = True
            else:
                db = Path(self._db).expanduser()
                self._directory = db.parent / f"{db.stem}-files"
        return self._directory

    def _make_directory(self) -> Path:
        folder = self.directory
        try:
            folder.mkdir(exist_ok=True)
            (folder / ".spool").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot use the files folder {folder}: {exc.strerror or exc}; "
                "create its parent folder or set files.dir (CHATBUS_FILES__DIR)"
            ) from exc
        return folder

    async def start(self, spawn: Callable[[Callable[[], Awaitable[Any]]], Any]) -> None:
        """Make the folder, remove spool files left by a crash, and start removing orphans
        (``spawn`` runs the sweeper it is given, made anew each time it is called)."""
        await asyncio.to_thread(self._make_directory)
        await asyncio.to_thread(self._clear_spool)
        spawn(self._sweeper)

    async def stop(self) -> None:
        if self._temporary and self._directory is not None:
            await asyncio.to_thread(shutil.rmtree, self._directory, True)
            self._directory = None
            self._temporary = False

    def _clear_spool(self) -> None:
        limit = self.wall_clock() - self.settings.orphan_after
        for leftover in (self.directory / ".spool").glob(f"*{_SPOOL_SUFFIX}"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < limit:
                    leftover.unlink()

    # taking files ---------------------------------------------------------
    @contextlib.asynccontextmanager
    async def spool(self) -> AsyncIterator[Spool]:
        """A spool file to stream an upload into; removed on exit unless saved."""
        folder = self._make_directory() / ".spool"
        spool = Spool(folder / f"{uuid.uuid4().hex}{_SPOOL_SUFFIX}", self.settings.max_file_bytes)
        try:
            yield spool
        except FileRefused as refused:
            self.count(refused.code)
            raise
        finally:
            if not spool.saved:
                spool.discard()

    async def save(
        self, spool: Spool, name: str, content_type: str | None = None, uploader: str | None = None
    ) -> Attachment:
        """Check and keep what was written to ``spool``; ``FileRefused`` says why not."""
        spool.close()
        name = check_name(name)
        if spool.size == 0:
            raise FileRefused("INVALID_FILE", "The file is empty; choose a file with something in it.")
        kind = content_type_for(content_type, name)
        if not type_allowed(kind, self.settings.allowed_types):
            raise FileRefused("FILE_TYPE", type_refusal(kind, name, self.settings.allowed_types))
        width = height = None
        if needs_check(kind):
            async with self._probing:
                info = await asyncio.to_thread(probe_image, spool.path, kind, self.settings.max_image_pixels)
            kind, width, height = info.content_type, info.width, info.height
            if not type_allowed(kind, self.settings.allowed_types):
                raise FileRefused("FILE_TYPE", f"The picture is {kind}, which is not accepted here.")
        attachment = Attachment(spool.file_id, name, spool.size, kind, width, height, uploader)
        async with self._lock(attachment.id):
            kept = await self.store.touch_file(attachment.id, self.wall_clock())
            if kept is not None:  # the same bytes are one file
                if await self._hooks.open_file(kept) is None:
                    await self._store(kept, spool)  # its bytes were lost (a folder emptied by hand): these are they
                self.count("duplicate")
                return kept
            await self._check_room(spool.size)
            self._reserved += spool.size
            try:
                await self._store(attachment, spool)
                await self.store.add_file(attachment, self.wall_clock())
            finally:
                self._reserved -= spool.size
        self.count("stored")
        log.info("file %s (%s, %s) stored for %s", attachment.id, kind, human_size(spool.size), uploader or "chatbus")
        return attachment

    async def _check_room(self, size: int) -> None:
        used = await self.store.files_total() + self._reserved
        limit = self.settings.max_total_bytes
        if used + size > limit:
            log.warning("files: refused %s, %s of %s in use", human_size(size), human_size(used), human_size(limit))
            raise FileRefused(
                "STORAGE_FULL", "The chat has no room left for files; tell its operator, or send a smaller file."
            )

    async def _store(self, attachment: Attachment, spool: Spool) -> None:
        if not await self._hooks.store_file(attachment, spool.path):
            raise StoreError("no file store is installed (the built-in files plugin is disabled); tell the operator")
        spool.saved = True
        spool.discard()  # a backend that copied it leaves the spool file behind

    async def save_path(
        self, path: str | Path, name: str | None = None, content_type: str | None = None, uploader: str | None = None
    ) -> Attachment:
        """Keep a copy of a file on disk (``name``: its own name by default)."""
        source = Path(path)
        async with self.spool() as spool:
            await asyncio.to_thread(_copy_into, source, spool)
            return await self.save(spool, name if name is not None else source.name, content_type, uploader)

    async def save_bytes(
        self, data: bytes, name: str, content_type: str | None = None, uploader: str | None = None
    ) -> Attachment:
        """Keep ``data`` as a file."""
        async with self.spool() as spool:
            await asyncio.to_thread(_write_all, spool, data)
            return await self.save(spool, name, content_type, uploader)

    # reading --------------------------------------------------------------
    async def get(self, file_id: str) -> Attachment | None:
        """A file's metadata, None when there is no such file."""
        return await self.store.get_file(file_id) if valid_file_id(file_id) else None

    async def open(self, file_id: str) -> StoredFile | None:
        """A file's bytes (through ``open_file``), None when there is no such file."""
        attachment = await self.get(file_id)
        if attachment is None:
            return None
        return await self._hooks.open_file(attachment)

    # messages that carry files ---------------------------------------------
    @contextlib.asynccontextmanager
    async def use(self, file_ids: Sequence[str]) -> AsyncIterator[tuple[Attachment, ...]]:
        """The files of a message being accepted, by id: each must exist (``NotFound``), at most
        ``max_per_message`` (``InvalidMessage``). None of them is removed before the block ends."""
        ids = self._check_ids(file_ids)
        claimed: list[str] = []
        try:
            found: list[Attachment] = []
            for file_id in ids:
                async with self._lock(file_id):  # a removal of it has finished, or waits for the message
                    self._claimed[file_id] = self._claimed.get(file_id, 0) + 1
                    claimed.append(file_id)
                    attachment = await self.get(file_id)
                if attachment is None:
                    raise NotFound(f"There is no file {file_id[:40]}; upload it again, then send the message.")
                found.append(attachment)
            yield tuple(found)
        finally:
            for file_id in claimed:
                left = self._claimed[file_id] - 1
                if left:
                    self._claimed[file_id] = left
                else:
                    del self._claimed[file_id]

    def _check_ids(self, file_ids: Sequence[str]) -> list[str]:
        if isinstance(file_ids, str) or not all(isinstance(one, str) for one in file_ids):
            raise InvalidMessage("attachments must be a list of file ids.")
        ids = list(dict.fromkeys(file_ids))
        limit = self.settings.max_per_message
        if len(ids) > limit:
            raise InvalidMessage(
                f"A message can carry at most {limit} files; this one has {len(ids)}. Send them in parts."
            )
        return ids

    @contextlib.asynccontextmanager
    async def _lock(self, file_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(file_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:  # nobody holds or waits for it: the next one makes a new one
                del self._locks[file_id]

    # removing -------------------------------------------------------------
    async def message_deleted(self, message_id: int) -> None:
        """With ``delete_with_message``: remove the files of a deleted message that no other message has."""
        if not self.settings.delete_with_message:
            return
        for file_id in await self.store.message_file_ids(message_id):
            async with self._lock(file_id):
                if file_id in self._claimed:
                    continue
                removed = await self.store.remove_file(file_id, unused_since=None)
                if removed is not None:
                    await self._delete(removed)

    async def sweep(self) -> int:
        """Remove uploads no message has carried for ``orphan_after`` seconds; how many."""
        before = self.wall_clock() - self.settings.orphan_after
        count = 0
        for attachment in await self.store.orphan_files(before):
            async with self._lock(attachment.id):
                if attachment.id in self._claimed:
                    continue
                removed = await self.store.remove_file(attachment.id, unused_since=before)
                if removed is not None:
                    await self._delete(removed)
                    count += 1
        if count:
            log.info("files: removed %d upload(s) no message carried", count)
        return count

    async def _delete(self, attachment: Attachment) -> None:
        self.count("removed")
        try:
            await self._hooks.delete_file(attachment)
            await asyncio.to_thread(self._delete_derived, attachment.id)
        except Exception:
            log.exception("files: could not remove the bytes of %s", attachment.id)

    def _delete_derived(self, file_id: str) -> None:
        for kind in DERIVED_FOLDERS:
            for made in (self.directory / kind / file_id[:2]).glob(f"{file_id}.*"):
                made.unlink(missing_ok=True)

    async def _sweeper(self) -> None:
        interval = min(max(self.settings.orphan_after / 4, 1.0), 300.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("files: removing unused uploads failed; trying again later")


def _write_all(spool: Spool, data: bytes) -> None:
    for start in range(0, len(data), _CHUNK):
        spool.write(data[start : start + _CHUNK])


def _copy_into(source: Path, spool: Spool) -> None:
    try:
        with source.open("rb") as file:
            while chunk := file.read(_CHUNK):
                spool.write(chunk)
    except FileRefused:
        raise
    except OSError as exc:
        raise FileRefused("INVALID_FILE", f"Cannot read {source.name}: {exc.strerror or exc}.") from exc
