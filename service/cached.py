"""The cached path: a score request whose every score is in the cache, answered in one Redis round trip.

One Lua script reads the scores; when all are there it also does every write the request implies
(members, protocol record, last-use index, TTL renewals, the short-lived job record) and returns the
generation counter, the cached ranking statistics and the uploaded truth values; when any score is
missing it writes nothing and says which classes are missing, and the caller takes the queued path.
Being a script, the reads and writes are atomic: no chunk can land between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS: members, protocol, protocols index, generation, rankings, job, truth table, score keys...
# ARGV: n_scores, n_unique, canonical keys..., n_members, (arch, canonical) pairs...,
#       protocol JSON, protocol hash, now, cache TTL, job TTL, job JSON, n_truth, truth keys...
SCRIPT = """
local n_scores, n_unique = tonumber(ARGV[1]), tonumber(ARGV[2])
local canonical = {unpack(ARGV, 3, 2 + n_unique)}
local rows, missing = {}, {}
for s = 1, n_scores do
  rows[s] = redis.call('HMGET', KEYS[7 + s], unpack(canonical))
  for i = 1, n_unique do
    if not rows[s][i] then missing[i] = 1 end
  end
end
if next(missing) then
  local flags = {}
  for i = 1, n_unique do flags[i] = missing[i] or 0 end
  return {0, flags}
end
local at = 3 + n_unique
local n_members = tonumber(ARGV[at])
local new = redis.call('HSET', KEYS[1], unpack(ARGV, at + 1, at + 2 * n_members))
at = at + 2 * n_members
local protocol, phash, now, ttl = ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3]), ARGV[at + 4]
local generation
if new > 0 then generation = redis.call('INCR', KEYS[4]) else generation = redis.call('GET', KEYS[4]) end
redis.call('SET', KEYS[2], protocol, 'EX', ttl)
redis.call('ZADD', KEYS[3], now, phash)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ttl))
for _, key in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}) do redis.call('EXPIRE', key, ttl) end
for s = 1, n_scores do redis.call('EXPIRE', KEYS[7 + s], ttl) end
redis.call('SET', KEYS[6], ARGV[at + 6], 'EX', ARGV[at + 5])
local n_truth = tonumber(ARGV[at + 7])
local truth = {}
if n_truth > 0 then truth = redis.call('HMGET', KEYS[7], unpack(ARGV, at + 8, at + 7 + n_truth)) end
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
    args: list = [len(score_keys), len(unique), *unique, len(members)]
    for arch, canonical in members.items():
        args += (arch, canonical)
    args += [protocol_json, protocol_hash, repr(now), cache_ttl, job_ttl, job_json, len(truth_keys), *truth_keys]
    keys = [members_key, protocol_key, protocols_key, generation_key, rankings_key, job_key, truth_key, *score_keys]
    reply = await _script(redis)(keys=keys, args=args)
    if reply[0] == 0:
        return [bool(flag) for flag in reply[1]]
    _, generation, rankings, truth, *rows = reply
    return CacheAnswer(rows, int(generation or 0), rankings, truth)
