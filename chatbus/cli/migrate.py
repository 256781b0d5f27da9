"""``chatbus copy``: a SQLite database into the Redis engine, for several nodes on one chat.

Everything a chat keeps goes over, under the same ids: the messages as they are now
(edits, deletions, answers, reactions, files), the texts they had before their edits,
the agents, the transports' id maps (Telegram replies still thread), the state (the
Telegram offset), the files' metadata, and the log's epoch, so web clients resume
where they were without reloading. The files' bytes stay where the ``[files]`` settings
keep them. The SQLite database is only read (brought to this chatbus's schema first, as
``chatbus serve`` would).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..core.cluster import PLUGINS_DONE
from ..core.errors import ChatbusError, ConfigError
from ..core.logs import configure_logging
from ..core.settings import EngineSettings
from ..core.store import SQLiteStore
from ..core.store.base import EPOCH_KEY
from ..core.store.sqlite_files import FILE_COLUMNS, row_attachment
from .common import settings_for

if TYPE_CHECKING:
    from ..core.engine.redis_store import RedisStore

__all__ = ["cmd_copy"]

#: Messages read from SQLite at a time.
_PAGE = 500


@dataclass
class Copied:
    """What a copy carried over, for its report."""

    messages: int = 0
    first_id: int = 0
    last_id: int = 0
    edited: int = 0
    reactions: int = 0
    agents: int = 0
    external_ids: int = 0
    state: int = 0
    files: int = 0
    kept: int = 0


@dataclass
class _Extras:
    """What the Store API does not list, read from the SQLite file itself."""

    versions: dict[int, list[str]]
    links: dict[int, list[str]]
    external_ids: list[tuple[str, str, int]]
    state: list[tuple[str, str]]
    files: list[tuple[Sequence[object], float]]


def cmd_copy(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    configure_logging("WARNING", settings.log_format)
    source = args.source or settings.db
    target = args.target or settings.engine.url
    if source.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{source} is the target: give the SQLite database first (chatbus copy chatbus.db {source})")
    if not target:
        raise ConfigError(
            "no Redis to copy into: chatbus copy DATABASE redis://HOST:PORT/DB (or set [engine] url, CHATBUS_ENGINE__URL)"
        )
    prefix = args.prefix or settings.engine.prefix
    try:
        engine = EngineSettings(url=target, prefix=prefix, max_length=settings.engine.max_length)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = " ".join(str(part) for part in problem["loc"])
        raise ConfigError(f"cannot copy into {target} (prefix {prefix}): {where}: {problem['msg']}") from None
    return asyncio.run(_copy(source, engine, force=args.force))


def _redis_store(engine: EngineSettings) -> RedisStore:
    try:
        from ..core.engine.redis import RedisEngine
        from ..core.engine.redis_store import RedisStore
    except ImportError as exc:
        raise ConfigError("copying into Redis needs the Redis client: pip install 'chatbus[redis]'") from exc
    assert engine.url is not None
    return RedisStore(RedisEngine(engine.url, prefix=engine.prefix, max_length=engine.max_length))


async def _copy(path: str, engine: EngineSettings, *, force: bool) -> int:
    target = _redis_store(engine)
    source = SQLiteStore(path, create=False)
    await source.open()
    shown = f"Redis at {target.redis_engine.shown_url} (prefix {engine.prefix})"
    try:
        await target.open()
        if await target.holds_chat():
            if not force:
                raise ChatbusError(
                    f"{shown} already holds a chat; copy into an empty one, choose another --prefix, "
                    "or replace that chat with --force (everything under the prefix is deleted)"
                )
            print(f"replacing the chat in {shown}: {await target.erase()} keys deleted")
        await target.adopt_epoch(source.epoch)
        extras = await asyncio.to_thread(_read_extras, Path(path).expanduser())
        copied = await _copy_all(source, target, extras)
    finally:
        await target.close()
        await source.close()
    _report(path, shown, source.epoch, copied, engine.max_length)
    return 0


def _read_extras(path: Path) -> _Extras:
    """The versions, file links, id maps, state and files of the database at ``path``, read only."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        versions: dict[int, list[str]] = {}
        for message_id, text in db.execute("SELECT message_id, text FROM message_versions ORDER BY message_id, number"):
            versions.setdefault(message_id, []).append(text)
        links: dict[int, list[str]] = {}
        for message_id, file_id in db.execute(
            "SELECT message_id, file_id FROM message_files ORDER BY message_id, position"
        ):
            links.setdefault(message_id, []).append(file_id)
        external = db.execute("SELECT transport, external_id, hub_id FROM external_ids ORDER BY rowid").fetchall()
        state = db.execute("SELECT key, value FROM state WHERE key != ? ORDER BY key", (EPOCH_KEY,)).fetchall()
        files = [(row[:-1], float(row[-1])) for row in db.execute(f"SELECT {FILE_COLUMNS}, uploaded_at FROM files")]
    finally:
        db.close()
    return _Extras(versions, links, external, state, files)


async def _copy_all(source: SQLiteStore, target: RedisStore, extras: _Extras) -> Copied:
    copied = Copied()
    for row, uploaded_at in extras.files:
        await target.add_file(row_attachment(row), uploaded_at)
        copied.files += 1
    after = 0
    while page := await source.since(after, _PAGE):
        await target.append_many([(message, extras.links.get(message.id, [])) for message in page])
        for message in page:
            if message.id in extras.versions:
                await target.keep_versions(message.id, extras.versions[message.id])
                copied.edited += 1
            copied.reactions += sum(len(users) for _, users in message.reactions)
        copied.messages += len(page)
        copied.first_id = copied.first_id or page[0].id
        after = copied.last_id = page[-1].id
    for agent in await source.list_agents():
        await target.save_agent(agent)
        copied.agents += 1
    for transport, external_id, hub_id in extras.external_ids:
        await target.map_external(transport, hub_id, external_id)
        copied.external_ids += 1
    for key, value in extras.state:
        await target.set_state(key, value)
        copied.state += 1
    if copied.last_id:  # the plugins (agents, commands) answered the copied chat already: not again
        await target.set_state(PLUGINS_DONE, str(copied.last_id))
    await target.trim(0)  # what a short max_length dropped on the way leaves nothing behind
    copied.kept = min(copied.messages, target.redis_engine.max_length)
    return copied


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _report(path: str, shown: str, epoch: str, copied: Copied, max_length: int) -> None:
    ids = f" (ids {copied.first_id} to {copied.last_id})" if copied.messages else ""
    print(f"copied {path} into {shown}:")
    print(
        f"  {_n(copied.messages, 'message')}{ids}, {copied.edited} with their earlier texts (edits, deletions), "
        f"{_n(copied.reactions, 'reaction')}"
    )
    print(
        f"  {_n(copied.agents, 'agent')}, {_n(copied.external_ids, 'transport id mapping')}, "
        f"{_n(copied.state, 'state value')}"
    )
    print(f"  {_n(copied.files, 'file')}' metadata (the bytes stay in the files folder, which every node needs)")
    if copied.kept < copied.messages:
        print(
            f"  the Redis log keeps the newest {max_length} messages ([engine] max_length): "
            f"the {copied.messages - copied.kept} oldest are not kept"
        )
    print(f"  epoch {epoch} kept: clients of the SQLite server resume where they were")
