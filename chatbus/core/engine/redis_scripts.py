"""The Redis engine's Lua scripts: each runs atomically in Redis (see :mod:`.redis`)."""

from __future__ import annotations

__all__ = ["ACQUIRE", "APPEND", "APPEND_AT", "EVERYONE", "PRESENT", "RELEASE", "RENEW", "TAKE"]

#: What both appends keep once the entry ``id`` (a string) is in the stream: the room's index, the
#: rooms by their newest id, and the links of the message's files (a JSON list of file ids), each
#: file then carried, no longer an orphan (see :mod:`.redis_files`). Room entries below the
#: stream's oldest entry are dropped.
_KEPT = """
local function kept(id, stream, room_index, rooms, room, files, prefix)
  redis.call('ZADD', room_index, id, id)
  redis.call('ZADD', rooms, id, room)
  local fids = cjson.decode(files)
  for _, fid in ipairs(fids) do
    redis.call('RPUSH', prefix .. 'msg-files:' .. id, fid)
    redis.call('SADD', prefix .. 'file-msgs:' .. fid, id)
    redis.call('ZREM', prefix .. 'orphans', fid)
  end
  if #fids > 0 then redis.call('ZADD', prefix .. 'file-carriers', id, id) end
  local oldest = '(' .. string.match(redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1][1], '^(%d+)')
  redis.call('ZREMRANGEBYSCORE', room_index, '-inf', oldest)
  redis.call('ZREMRANGEBYSCORE', rooms, '-inf', oldest)
end
local function epoch_of(key, new)
  local epoch = redis.call('GET', key)
  if not epoch then
    epoch = new
    redis.call('SET', key, epoch)
  end
  return epoch
end
"""

#: KEYS: counter, stream, this append's key, epoch, the room's index (its ids, trimmed with the
#: stream), the rooms. ARGV: the message, max length, room, channel, a new epoch, the message's
#: file ids (JSON), the key prefix.
#: The append's key makes a retry (the answer was lost, not the append) return the same id; it
#: is kept 30 s (the client retries within a second), so that at thousands of messages a
#: second these keys stay a few megabytes. A Redis that lost everything (restarted without
#: persistence) gets a new epoch with its first message.
APPEND = (
    _KEPT
    + """
local epoch = epoch_of(KEYS[4], ARGV[5])
local done = redis.call('GET', KEYS[3])
if done then return {tonumber(done), epoch} end
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[2], id .. '-0', 'r', ARGV[3], 'm', ARGV[1])
redis.call('PUBLISH', ARGV[4], epoch .. ' ' .. id .. ' ' .. ARGV[1])
redis.call('SET', KEYS[3], id, 'EX', ARGV[8])
kept(tostring(id), KEYS[2], KEYS[5], KEYS[6], ARGV[3], ARGV[6], ARGV[7])
return {id, epoch}
"""
)
#: A message stored under its own id (copying a log): KEYS: counter, stream, epoch, the room's
#: index, the rooms. ARGV: the message, max length, room, channel, a new epoch, its file ids
#: (JSON), the key prefix, its id. Refused ({0, epoch, newest}) unless the id is above every id
#: given so far; the counter then continues from it.
APPEND_AT = (
    _KEPT
    + """
local epoch = epoch_of(KEYS[3], ARGV[5])
local newest = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if last then newest = math.max(newest, tonumber(string.match(last[1], '^(%d+)'))) end
if tonumber(ARGV[8]) <= newest then return {0, epoch, newest} end
redis.call('SET', KEYS[1], ARGV[8])
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[2], ARGV[8] .. '-0', 'r', ARGV[3], 'm', ARGV[1])
redis.call('PUBLISH', ARGV[4], epoch .. ' ' .. ARGV[8] .. ' ' .. ARGV[1])
kept(ARGV[8], KEYS[2], KEYS[4], KEYS[5], ARGV[3], ARGV[6], ARGV[7])
return {tonumber(ARGV[8]), epoch, newest}
"""
)
_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
#: KEYS: presence set. ARGV: ttl in ms, then the members present for that long.
PRESENT = (
    _NOW_MS
    + "local expires = now + tonumber(ARGV[1]) for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expires, ARGV[i]) end"
    + " return #ARGV - 1"
)
#: KEYS: presence set.
EVERYONE = _NOW_MS + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) return redis.call('ZRANGE', KEYS[1], 0, -1)"
#: KEYS: lease, its fencing counter. ARGV: holder, ttl in ms. The token, or nil while another holds it.
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
  local holder, token = string.match(held, '^(.*)\\n(%d+)$')
  if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return tonumber(token) end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. token, 'NX', 'PX', ARGV[2])
return token
"""
#: KEYS: lease. ARGV: its value, ttl in ms (renew) or nothing (release).
RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

#: KEYS: the bucket (a hash), the sends of the last hour (a sorted set). ARGV: burst, per second,
#: per hour (0: no cap), a name for this send. The seconds to wait, as text; "0" when taken.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst, rate, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
if tokens then tokens = math.min(burst, tokens + math.max(0, now - tonumber(state[2])) * rate) else tokens = burst end
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600)
  if redis.call('ZCARD', KEYS[2]) >= cap then
    local oldest = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2])
    wait = math.max(wait, oldest + 3600 - now)
  end
end
if wait <= 0 then
  tokens = tokens - 1
  if cap > 0 then
    redis.call('ZADD', KEYS[2], now, ARGV[4])
    redis.call('EXPIRE', KEYS[2], 3601)
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""
