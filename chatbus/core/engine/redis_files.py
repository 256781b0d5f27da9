"""The files' metadata in the Redis of a :class:`~.redis.RedisEngine`, shared by every node.

The same meaning as the SQLite store's tables ``files`` and ``message_files``
(:mod:`chatbus.core.store.sqlite_files`), in these keys (after the engine's prefix):

* ``files``: file id to its metadata (JSON); ``files-at``: file ids by upload time;
  ``files-bytes``: the bytes of every file kept;
* ``msg-files:<message id>``: the ids of the files a message carried, in order (kept after it
  is deleted); ``file-msgs:<file id>``: the messages carrying a file; ``file-carriers``: the
  messages that carry files, by id (to unlink those trimmed from the log);
* ``orphans``: the files no message carries, by upload time (what a sweep looks at).

A message's links are written by the script that appends it
(:data:`~.redis_scripts.APPEND`), so a stored message never lacks them and a sweep never
removes a file a message carries. Every change here is one Lua script, so it is atomic. The
scripts name keys in their arguments: they suit one Redis, not a Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..message import Attachment
from .redis import RedisEngine

__all__ = ["RedisFiles"]

#: KEYS: files, files-at, files-bytes, orphans, the file's carriers. ARGV: file id, metadata, upload
#: time, size. Nothing when the file is known already (its first metadata and time stay).
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('INCRBY', KEYS[3], ARGV[4])
if redis.call('SCARD', KEYS[5]) == 0 then redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1]) end
return 1
"""
#: KEYS: files, files-at, orphans. ARGV: file id, upload time. Its metadata, nil when unknown;
#: its upload time only ever moves later.
_TOUCH = """
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return false end
if tonumber(ARGV[2]) > tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[3], 'XX', ARGV[2], ARGV[1])
end
return meta
"""
#: KEYS: files, files-at, orphans, files-bytes, the file's carriers, the log, file-carriers.
#: ARGV: file id, unused since ('' for none), the key prefix. Its metadata once forgotten, nil
#: when it is needed: with a time, while a message carries it or it was uploaded since; without,
#: while a message in the log that is not deleted carries it (deleted ones lose it).
_REMOVE = """
local function live(mid)
  local m = redis.call('HGET', ARGV[3] .. 'change:' .. mid, 'm')
  if not m then
    local entry = redis.call('XRANGE', KEYS[6], mid .. '-0', mid .. '-0')[1]
    if not entry then return false end
    for i = 1, #entry[2], 2 do if entry[2][i] == 'm' then m = entry[2][i + 1] end end
  end
  local deleted = cjson.decode(m)[1][17]
  return not (type(deleted) == 'string' and deleted ~= '')
end
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return false end
local carriers = redis.call('SMEMBERS', KEYS[5])
if ARGV[2] ~= '' then
  local at = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
  if #carriers > 0 or at >= tonumber(ARGV[2]) then return false end
else
  for _, mid in ipairs(carriers) do if live(mid) then return false end end
  for _, mid in ipairs(carriers) do
    local list = ARGV[3] .. 'msg-files:' .. mid
    redis.call('LREM', list, 0, ARGV[1])
    if redis.call('LLEN', list) == 0 then redis.call('ZREM', KEYS[7], mid) end
  end
  redis.call('DEL', KEYS[5])
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DECRBY', KEYS[4], cjson.decode(meta)['size'])
return meta
"""
#: KEYS: file-carriers, orphans. ARGV: the key prefix, message id, its file ids (JSON).
_LINK = """
local fids = cjson.decode(ARGV[3])
for _, fid in ipairs(fids) do
  local list = ARGV[1] .. 'msg-files:' .. ARGV[2]
  redis.call('LREM', list, 0, fid)
  redis.call('RPUSH', list, fid)
  redis.call('SADD', ARGV[1] .. 'file-msgs:' .. fid, ARGV[2])
  redis.call('ZREM', KEYS[2], fid)
end
if #fids > 0 then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[2]) end
return #fids
"""
#: KEYS: the log, file-carriers, orphans, files-at. ARGV: the key prefix, how many at most.
#: Unlinks the files of messages no longer in the log (below its oldest entry); a file no
#: message carries any more becomes an orphan. How many messages were unlinked.
_UNLINK_TRIMMED = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
local below = first and ('(' .. string.match(first[1], '^(%d+)')) or '+inf'
local mids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', below, 'LIMIT', 0, tonumber(ARGV[2]))
for _, mid in ipairs(mids) do
  local list = ARGV[1] .. 'msg-files:' .. mid
  for _, fid in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local carriers = ARGV[1] .. 'file-msgs:' .. fid
    redis.call('SREM', carriers, mid)
    if redis.call('SCARD', carriers) == 0 then
      local at = redis.call('ZSCORE', KEYS[4], fid)
      if at then redis.call('ZADD', KEYS[3], at, fid) end
    end
  end
  redis.call('DEL', list)
end
if #mids > 0 then redis.call('ZREM', KEYS[2], unpack(mids)) end
return #mids
"""


def _attachment(meta: str) -> Attachment:
    return Attachment(**json.loads(meta))


class RedisFiles:
    """The file methods of :class:`~chatbus.core.store.base.Store`, over ``engine``'s Redis."""

    def __init__(self, engine: RedisEngine) -> None:
        self._engine = engine
        self._prefix = f"{engine._prefix}:"
        self._scripts: dict[str, Any] = {}

    @property
    def _r(self) -> Any:
        """The engine's client (its replies are ``str``: it decodes them)."""
        return self._engine._r

    def _key(self, name: str) -> str:
        return self._prefix + name

    async def _run(self, what: str, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self._r.register_script(source)
        script = self._scripts[name]
        return await self._engine._call(what, lambda: script(keys=keys, args=args))

    async def add_file(self, attachment: Attachment, uploaded_at: float) -> None:
        """Keep a file's metadata; ``uploaded_at`` in seconds since the epoch."""
        keys = [self._key(n) for n in ("files", "files-at", "files-bytes", "orphans", f"file-msgs:{attachment.id}")]
        args = [attachment.id, json.dumps(asdict(attachment)), repr(float(uploaded_at)), attachment.size]
        await self._run("keep the file", "add", _ADD, keys, args)

    async def get_file(self, file_id: str) -> Attachment | None:
        r = self._r
        meta = await self._engine._call("read the files", lambda: r.hget(self._key("files"), file_id))
        return None if meta is None else _attachment(meta)

    async def touch_file(self, file_id: str, uploaded_at: float) -> Attachment | None:
        """A file uploaded again: its upload time becomes ``uploaded_at``; its metadata, None when unknown."""
        keys = [self._key(n) for n in ("files", "files-at", "orphans")]
        meta = await self._run("keep the file", "touch", _TOUCH, keys, [file_id, repr(float(uploaded_at))])
        return None if meta is None else _attachment(meta)

    async def files_total(self) -> int:
        """The bytes of every file kept."""
        r = self._r
        found = await self._engine._call("read the files", lambda: r.get(self._key("files-bytes")))
        return int(found or 0)

    async def orphan_files(self, uploaded_before: float, limit: int = 1000) -> list[Attachment]:
        """Files no message carries (deleted ones included), uploaded before ``uploaded_before``."""
        r = self._r
        ids = await self._engine._call(
            "read the files",
            lambda: r.zrangebyscore(self._key("orphans"), "-inf", f"({uploaded_before!r}", 0, limit),
        )
        if not ids:
            return []
        metas = await self._engine._call("read the files", lambda: r.hmget(self._key("files"), ids))
        return [_attachment(meta) for meta in metas if meta is not None]

    async def remove_file(self, file_id: str, *, unused_since: float | None) -> Attachment | None:
        """Forget a file and return its metadata, only when nothing needs it (see ``Store.remove_file``)."""
        names = ("files", "files-at", "orphans", "files-bytes", f"file-msgs:{file_id}", "log", "file-carriers")
        keys = [self._key(name) for name in names]
        args = [file_id, "" if unused_since is None else repr(float(unused_since)), self._prefix]
        meta = await self._run("forget the file", "remove", _REMOVE, keys, args)
        return None if meta is None else _attachment(meta)

    async def message_file_ids(self, message_id: int) -> list[str]:
        """The ids of the files a message carried (still known after it was deleted)."""
        r, key = self._r, self._key(f"msg-files:{message_id}")
        found: list[str] = await self._engine._call("read the files", lambda: r.lrange(key, 0, -1))
        return list(found)

    async def link(self, message_id: int, file_ids: Sequence[str]) -> None:
        """``message_id`` carries ``file_ids`` (copying a log: a deleted message's files stay linked)."""
        keys = [self._key("file-carriers"), self._key("orphans")]
        args = [self._prefix, str(message_id), json.dumps(list(file_ids))]
        await self._run("link the files", "link", _LINK, keys, args)

    async def unlink_trimmed(self, limit: int = 10_000) -> int:
        """Unlink the files of up to ``limit`` messages no longer in the log; how many messages.
        A file that no message carries any more is then an orphan, for the sweep to remove."""
        keys = [self._key(name) for name in ("log", "file-carriers", "orphans", "files-at")]
        return int(await self._run("unlink old files", "unlink", _UNLINK_TRIMMED, keys, [self._prefix, limit]))
