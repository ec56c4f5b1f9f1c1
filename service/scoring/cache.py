"""Step 3: answer a plan from the cache, in one Redis round trip; and the fast path, which does so for
POST /v1/scores before FastAPI's routing.

One Lua script reads the scores; when all are there it also does every write the request implies
(members, protocol record, last-use index, TTL renewals, the short-lived job record) and returns the
generation counter, the cached ranking statistics and the uploaded truth values; when any score is
missing it writes nothing and says which classes are missing, and the caller takes the queued path.
Being a script, the reads and writes are atomic: no chunk can land between them.

The fast path: FastAPI's request handling (routing, dependency solving, body and query validation, its
exception middleware) costs about as much CPU as the rest of a cached answer (0.46 ms of 1.15 ms per
request, measured in-process). The ASGI middleware below takes the requests it can answer wholly from
the cache -- no query string, a JSON body, the API key when the server has keys -- validates them
exactly as the route does and sends what the route would send. Everything else goes on to the route
unchanged, body included: a request with missing scores, a ``wait``, an invalid body or key, a Redis
error. So the error answers and the OpenAPI document stay the route's, and a request the fast path
gives up on costs one more validation and one more read-only script call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis

from archscore.contract import store
from archscore.contract.settings import Settings, get_settings
from archscore.service.deps import COUNTED, Caller, api_key_problem, caller_for, rate_limit, redis_for
from archscore.service.rankings import rankings, select
from archscore.service.responses import FastJSONResponse, to_json
from archscore.service.schemas import ScoreRequest
from archscore.service.scoring.plan import Plan, plan
from archscore.service.scoring.results import assemble_results, job_body
from archscore.service.scoring.validate import validate
from archscore.service.truth_tables import truth_values

CACHE = Counter("archscore_score_cache_total", "architecture classes answered from the cache or enqueued", ["outcome"])
CACHE_HITS, CACHE_MISSES = CACHE.labels("hit"), CACHE.labels("miss")  # labels() validates and locks per call

# KEYS: members, protocol, protocols index, generation, rankings, job, truth table, score keys...
# ARGV[1]: JSON {"unique": [cache keys], "members": [arch, cache key, ...], "protocol": protocol JSON,
#   "phash", "now", "ttl", "kept", "job_ttl", "job": job JSON, "truth_keys": [...]} -- one argument, not dozens:
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
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -p.kept - 1)
for _, key in ipairs({KEYS[1], KEYS[4], KEYS[5]}) do redis.call('EXPIRE', key, p.ttl) end
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


async def _run_script(p: Plan, settings: Settings, redis: Redis, truth_keys: list[str]) -> CacheAnswer | list[bool]:
    """A CacheAnswer when every score is cached (and the request's writes are done), else the
    per-class missing flags (and nothing was written)."""
    valid, job = p.request, p.job
    space, phash, truth = valid.space.name, valid.protocol_hash, valid.truth or ""
    payload = {
        "unique": p.unique,
        "members": [x for pair in zip(job.archs, job.canonical) for x in pair],
        "protocol": to_json(valid.protocol_fields).decode(),
        "phash": phash,
        "now": time.time(),
        "ttl": settings.cache_ttl_seconds,
        "kept": store.PROTOCOLS_KEPT,
        "job_ttl": min(settings.cached_job_ttl_seconds, settings.job_ttl_seconds),
        "job": store.encode_record(job),
        "truth_keys": truth_keys,
    }
    keys = [
        store.members_key(space, phash),
        store.protocol_key(space, phash),
        store.protocols_key(space),
        store.generation_key(space, phash),
        store.rankings_key(space, phash, truth),
        store.job_key(job.job_id),
        store.truth_key(space, truth),
        *p.score_keys.values(),
    ]
    reply = await _script(redis)(keys=keys, args=[to_json(payload)])
    if reply[0] == 0:
        return [bool(flag) for flag in reply[1]]
    _, generation, cached_rankings, truth_values_, *rows = reply
    return CacheAnswer(rows, int(generation or 0), cached_rankings, truth_values_)


async def answer_from_cache(p: Plan, settings: Settings, redis: Redis) -> dict | list[str]:
    """The finished job's body (results and ranking statistics) when the cache holds every score;
    else the cache keys of the classes still to score (nothing written)."""
    valid, job = p.request, p.job
    uploaded = valid.truth is not None and valid.truth not in valid.space.ground_truth_columns
    answer = await _run_script(p, settings, redis, job.truth_keys if uploaded else [])
    if isinstance(answer, list):
        return [c for c, missing in zip(p.unique, answer) if missing]
    if valid.truth is None:
        truth: dict[str, float] = {}
    elif uploaded:
        truth = {k: float(x) for k, x in zip(job.truth_keys, answer.truth) if x is not None}
    else:
        truth = await truth_values(redis, valid.space, valid.truth, job.truth_keys)
    cells = {n: dict(zip(p.unique, map(store.decode_cell, row))) for n, row in zip(p.score_keys, answer.rows)}
    stats = None
    if valid.truth is not None:
        report = store.decode(answer.rankings)
        if report is None or report["generation"] != answer.generation:  # new scores since: recompute
            report = await rankings(redis, valid.space, valid.protocol_hash, valid.truth)
        stats = select(report, valid.estimators)
    results = assemble_results(valid.space, job, cells, {}, truth, valid.predictors)
    return job_body(job, "done", (0, 0), results, stats)


async def plan_and_answer(
    request: ScoreRequest, settings: Settings, redis: Redis, caller: Caller
) -> tuple[Plan, dict | list[str]]:
    """Validate (ApiError when invalid; nothing stored), plan, and answer from the cache: the plan with
    the finished job's body, or with the cache keys still to score (nothing written). The job is the
    caller's."""
    p = plan(await validate(request, settings, redis, caller), caller.owner)
    answer = await answer_from_cache(p, settings, redis)
    if isinstance(answer, dict):
        CACHE_HITS.inc(len(p.unique))
    return p, answer


PATH = "/v1/scores"


class CachedScoresFastPath:
    """ASGI middleware: POST /v1/scores answered from the cache before routing (see the module's text)."""

    def __init__(self, app, route=None):
        self.app = app
        self.route = route  # set in the scope as routing would, for the per-route metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH or scope["query_string"]:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            return await self.app(scope, receive, send)
        messages, error = [], None
        try:
            while True:  # the whole body (the outer middleware bounds its size and time)
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except Exception as exc:
            error = exc
        if error is None and messages[-1]["type"] == "http.request":
            answer = await self._answer(b"".join(m.get("body", b"") for m in messages), headers, scope)
            if answer is not None:
                if self.route is not None:
                    scope["route"] = self.route
                return await FastJSONResponse(answer)(scope, receive, send)
        return await self.app(scope, _replay(messages, error, receive), send)

    @staticmethod
    async def _answer(body: bytes, headers: dict[bytes, bytes], scope) -> dict | None:
        """The finished job's body when the request is valid and wholly cached, else None. A request
        counted against its key's rate limit here is not counted again by the route (scope state)."""
        settings = get_settings()
        key = headers.get(b"x-api-key")
        given = None if key is None else key.decode("latin-1")
        if api_key_problem(given, settings):
            return None
        caller = caller_for(given, settings)
        try:
            await rate_limit(caller, settings, redis_for(settings))
            scope.setdefault("state", {})[COUNTED] = caller
            request = ScoreRequest.model_validate_json(body)
            _, answer = await plan_and_answer(request, settings, redis_for(settings), caller)
        except Exception:
            return None
        return answer if isinstance(answer, dict) else None


def _replay(messages: list[dict], error: Exception | None, receive):
    """A receive that gives the messages already read, then raises the error met while reading them
    (if any), then reads on."""
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        if error is not None:
            raise error
        return await receive()

    return replay
