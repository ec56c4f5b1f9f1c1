"""The cached-path fast path (archscore.service.scoring.cache): cached requests are answered before routing with
exactly what the route answers; everything else reaches the route with its body intact.

The middleware is driven as an ASGI app over a real Redis (scores put there by the real worker), with
a recording app behind it standing in for the route, and through the whole app with TestClient.
"""

from __future__ import annotations

import json

import pytest
from helpers.http import error_fields
from helpers.scoring import cells, request

from archscore.service.errors import BodyTooLarge
from archscore.service.scoring.cache import CachedScoresFastPath

pytestmark = pytest.mark.usefixtures("celery_worker")


class Recorder:
    """The app behind the middleware: records the body it receives and answers 299."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.error: Exception | None = None

    async def __call__(self, scope, receive, send):
        body = b""
        try:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except Exception as exc:
            self.error = exc
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(client, app, body: bytes, query: bytes = b"", headers=(), pieces: int = 1, fail_after: int | None = None):
    """Send one POST /v1/scores through ``app`` (on the TestClient's event loop, where the API's Redis
    client lives); the body in ``pieces`` messages, the receive raising BodyTooLarge once ``fail_after``
    of them were given. Returns (status, parsed body or None)."""
    size = -(-len(body) // pieces)
    messages = [
        {"type": "http.request", "body": body[i : i + size], "more_body": i + size < len(body)}
        for i in range(0, len(body), size)
    ]
    given, sent = 0, []

    async def receive():
        nonlocal given
        if given == fail_after:
            raise BodyTooLarge(10)
        given += 1
        return messages[given - 1] if given <= len(messages) else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/scores",
        "query_string": query,
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    client.portal.call(app, scope, receive, send)
    status = sent[0]["status"]
    raw = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(raw) if raw else None


def _cached_body(client, seed: int) -> tuple[dict, dict]:
    body = request(cells(3, seed=seed), ["params", "relu"], seed=seed, truth="cifar10_test")
    routed = client.post("/v1/scores?wait=60", json=body)
    assert routed.status_code == 200 and routed.json()["status"] == "done", routed.text
    return body, routed.json()


def without_id(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "job_id"}


def test_a_cached_request_is_answered_before_the_route_with_the_routes_answer(client):
    body, _ = _cached_body(client, seed=301)
    routed = client.post("/v1/scores?wait=1", json=body).json()  # with a query string: the route answers
    assert routed["cached"] == 3 and routed["progress"] == {"done": 0, "total": 0}
    recorder = Recorder()
    status, fast = call(client, CachedScoresFastPath(recorder), json.dumps(body).encode(), pieces=3)
    assert recorder.bodies == []  # the route was not reached
    assert status == 200 and fast["status"] == "done" and fast["cached"] == 3
    assert without_id(fast) == without_id(routed)  # results and ranking statistics alike
    assert fast["rankings"]["n"] >= 3
    # and through the whole app: the job it names exists
    job = client.get(f"/v1/jobs/{fast['job_id']}").json()
    assert job["status"] == "done" and without_id(job) == without_id(routed)


@pytest.mark.parametrize(
    "case",
    ["missing score", "invalid body", "not json", "query string", "unknown estimator", "invalid arch"],
)
def test_everything_else_reaches_the_route_with_its_body_intact(client, case):
    body, _ = _cached_body(client, seed=302)
    raw = json.dumps(body).encode()
    query = b""
    if case == "missing score":
        raw = json.dumps({**body, "archs": cells(4, seed=302)}).encode()
    elif case == "invalid body":
        raw = json.dumps({**body, "estimators": []}).encode()
    elif case == "not json":
        raw = raw[:-3]
    elif case == "query string":
        query = b"wait=5"
    elif case == "unknown estimator":
        raw = json.dumps({**body, "estimators": ["relu", "nope"]}).encode()
    elif case == "invalid arch":
        raw = json.dumps({**body, "archs": ["|bogus~0|"]}).encode()
    recorder = Recorder()
    status, _ = call(client, CachedScoresFastPath(recorder), raw, query=query, pieces=4)
    assert status == 299 and recorder.bodies == [raw] and recorder.error is None


def test_an_error_met_reading_the_body_reaches_the_route_after_what_was_read(client):
    body, _ = _cached_body(client, seed=303)
    raw = json.dumps(body).encode()
    recorder = Recorder()
    status, _ = call(client, CachedScoresFastPath(recorder), raw, pieces=4, fail_after=2)
    assert status == 299
    assert recorder.bodies == [raw[: 2 * -(-len(raw) // 4)]]
    assert isinstance(recorder.error, BodyTooLarge)


def test_cached_answers_keep_the_api_key_and_the_metrics(client, settings_env):
    body, _ = _cached_body(client, seed=304)

    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('archscore_http_requests_total{method="POST",route="/v1/scores",status="200"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    assert client.post("/v1/scores", json=body).status_code == 200
    assert count() == before + 1  # counted under its route
    settings_env(api_keys='["k1"]')
    assert error_fields(client.post("/v1/scores", json=body), 401) == {"X-API-Key": "this server requires an API key"}
    assert "X-API-Key" in error_fields(client.post("/v1/scores", json=body, headers={"X-API-Key": "k2"}), 401)
    assert client.post("/v1/scores", json=body, headers={"X-API-Key": "k1"}).json()["status"] == "done"
