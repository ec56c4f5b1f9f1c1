"""The cached path: a score request whose every score is in the cache, answered in one Redis round trip.

One Lua script reads the scores; when all are there it also does every write the request implies
(members, protocol record, last-use index, TTL renewals, the short-lived job record) and returns the
generation counter, the cached ranking statistics and the uploaded truth values; when any score is
missing it writes nothing and says which classes are missing, and the caller takes the queued path.
Being a script, the reads and writes are atomic: no chunk can land between them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: members, protocol, protocols index, generation, rankings, job, truth table, score keys...
# ARGV[1]: JSON {"unique": [canonical keys], "members": [arch, canonical, ...], "protocol": protocol JSON,
#   "phash", "now", "ttl", "job_ttl", "job": job JSON, "truth_keys": [...]} -- one argument, not dozens:
#   redis-py packs every argument in Python, a fifth of the cached path's cost before this
SCRIPT = """
local p = cjson.decode(ARGV[1])
local n_scores, n_unique = #KEYS - 7, #p.unique
local rows, missing = {}, {}
for s = 1, n_scores do
  rows[s] = redis.call('HMGET', KEYS[7 + s], unpack(p.unique))
  for i = 1, n_unique do
    if not rows[s][i] then missing[i] = 1 end
  end
end
if next(missing) then
  local flags = {}
  for i = 1, n_unique do flags[i] = missing[i] or 0 end
  return {0, flags}
end
local new = redis.call('HSET', KEYS[1], unpack(p.members))
local generation
if new > 0 then generation = redis.call('INCR', KEYS[4]) else generation = redis.call('GET', KEYS[4]) end
redis.call('SET', KEYS[2], p.protocol, 'EX', p.ttl)
redis.call('ZADD', KEYS[3], p.now, p.phash)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', p.now - p.ttl)
for _, key in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}) do redis.call('EXPIRE', key, p.ttl) end
for s = 1, n_scores do redis.call('EXPIRE', KEYS[7 + s], p.ttl) end
redis.call('SET', KEYS[6], p.job, 'EX', p.job_ttl)
local truth = {}
if #p.truth_keys > 0 then truth = redis.call('HMGET', KEYS[7], unpack(p.truth_keys)) end
local reply = {1, generation or false, redis.call('GET', KEYS[5]) or false, truth}
for s = 1, n_scores do reply[4 + s] = rows[s] end
return reply
"""


@dataclass
class CacheAnswer:
    rows: list[list[str]]  # per score key, the cell of each unique class (all present)
    generation: int
    rankings: str | None  # the cached ranking statistics as stored, possibly stale
    truth: list[str | None]  # uploaded truth values of the requested truth keys


_scripts: dict[int, object] = {}


def _script(redis: Redis):
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(SCRIPT)
    return script


async def answer_from_cache(
    redis: Redis, *, score_keys: list[str], unique: list[str], members: dict[str, str], members_key: str,
    protocol_key: str, protocols_key: str, generation_key: str, rankings_key: str, job_key: str, truth_key: str,
    protocol_json: str, protocol_hash: str, now: float, cache_ttl: int, job_ttl: int, job_json: str,
    truth_keys: list[str],
) -> CacheAnswer | list[bool]:
    """A CacheAnswer when every score is cached (and the request's writes are done), else the
    per-class missing flags (and nothing was written)."""
    payload = {
        "unique": unique, "members": [x for pair in members.items() for x in pair], "protocol": protocol_json,
        "phash": protocol_hash, "now": now, "ttl": cache_ttl, "job_ttl": job_ttl, "job": job_json,
        "truth_keys": truth_keys,
    }
    keys = [members_key, protocol_key, protocols_key, generation_key, rankings_key, job_key, truth_key, *score_keys]
    reply = await _script(redis)(keys=keys, args=[json.dumps(payload, separators=(",", ":"))])
    if reply[0] == 0:
        return [bool(flag) for flag in reply[1]]
    _, generation, rankings, truth, *rows = reply
    return CacheAnswer(rows, int(generation or 0), rankings, truth)
