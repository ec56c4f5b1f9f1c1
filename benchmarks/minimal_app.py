"""The yardstick of the cached-path benchmark: a minimal FastAPI app doing one Redis HMGET per request.

It parses the JSON body into a dict, reads one hash with the same async Redis client the API uses,
and returns a small JSON document -- the least any cached answer has to do. Run by
benchmarks/cached_path.py under the same uvicorn settings as the API:

    uvicorn benchmarks.minimal_app:app   (ARCHSCORE_REDIS_URL selects the Redis)
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from redis.asyncio import Redis

KEY = "archscore-bench:minimal"
app = FastAPI()
redis = Redis.from_url(os.environ.get("ARCHSCORE_REDIS_URL", "redis://127.0.0.1:6379/0"), decode_responses=True)


@app.post("/v1/scores")
async def scores(request: Request) -> dict:
    body = await request.json()
    values = await redis.hmget(KEY, [str(a) for a in body["archs"]])
    return {"status": "done", "results": [{"arch": a, "value": v} for a, v in zip(body["archs"], values)]}
