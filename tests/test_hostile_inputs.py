"""Inputs that once crashed the API with a 500: each now gets a 4xx in the one error shape, with a
reason, and stores nothing (real Redis behind the app)."""

from __future__ import annotations

import json

import pytest
from helpers.http import error_fields

from archscore.contract import store

TEXT = {"content-type": "text/plain"}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "body, needle",
    [
        ("arch,v\n1," + "9" * 5000 + "\n", "not finite"),  # a 5,000-digit integer in a CSV cell
        ("arch,v\n" + "x" * 200_000 + ",1\n", "field larger"),  # over the csv module's field limit
        ('{"1": ' + "9" * 400 + "}", "too large"),  # float overflow
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),  # a too-deep body
        ('arch,v\n"' + "[" * 10_000 + '",1\n', "entry 0"),  # a too-deep CSV cell
        (json.dumps({"[" * 10_000: 1}), "entry 0"),  # a too-deep JSON key
        (json.dumps({"9" * 5000: 1}), "entry 0"),  # a 5,000-digit JSON key
    ],
    ids=[
        "int-5000-digits",
        "csv-field-200k",
        "json-number-400-digits",
        "nested-body",
        "nested-csv-cell",
        "nested-json-key",
        "json-key-5000-digits",
    ],
)
def test_hostile_truth_tables_are_422_with_a_reason(client, r, body, needle):
    fields = error_fields(client.put("/v1/truth/nb201/hostile", content=body, headers=TEXT), 422)
    assert needle in fields["body"]
    assert not r.exists(store.truth_key("nb201", "hostile"))


def test_truth_names_with_a_trailing_newline_are_refused(client, r):
    fields = error_fields(client.put("/v1/truth/nb201/name%0A", content="arch,v\n1,2\n", headers=TEXT), 422)
    assert "letters" in fields["name"]
    assert not list(r.scan_iter(store.truth_key("nb201", "name*")))


def test_a_lone_surrogate_as_truth_is_422(client):
    body = b'{"archs": [1], "estimators": ["params"], "truth": "\\ud800"}'
    fields = error_fields(client.post("/v1/scores", content=body, headers=JSON), 422)
    assert "truth" in fields


def test_an_undecodable_or_too_deep_body_is_400_with_a_reason(client):
    for body in (b"[" * 10_000, b'{"archs": "\xff\xfe"}'):
        resp = client.post("/v1/scores", content=body, headers=JSON)
        assert resp.status_code in (400, 422), resp.text
        details = resp.json()["error"]["details"]
        assert details and details[0]["field"].startswith("body") and details[0]["reason"]


def _snapshot(r) -> dict:
    return {"jobs": sorted(r.scan_iter(f"{store.PREFIX}:job:*")), "queue": r.llen("celery")}


@pytest.mark.parametrize(
    "protocol, field, needle",
    [
        ({"batch_size": 1024, "num_batches": 4}, "protocol.batch_size", "exceeds the 4000 training images"),
        ({"dataset": "cifar100"}, "protocol.dataset", "not configured on this server (available: cifar10)"),
    ],
)
def test_protocols_the_workers_cannot_run_are_422_before_anything_is_enqueued(client, r, protocol, field, needle):
    before = _snapshot(r)
    body = {"archs": [1, 2], "estimators": ["synflow", "params"], "protocol": protocol}
    fields = error_fields(client.post("/v1/scores", json=body), 422)
    assert needle in fields[field]
    assert _snapshot(r) == before


def test_the_embedded_dataset_size_is_what_the_server_checks_against(tmp_path):
    from archscore.estimators.datasets import load_embedded_cifar10, training_images_available

    assert training_images_available(None) == {"cifar10": len(load_embedded_cifar10("train"))}
    (tmp_path / "cifar-100-python").mkdir()
    assert training_images_available(tmp_path) == {"cifar100": 50_000}


def test_redis_down_gives_503_with_retry_after_on_every_redis_backed_route(client, settings_env):
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings_env(redis_url=f"redis://127.0.0.1:{port}/0")
    calls = [
        ("POST", "/v1/scores", {"json": {"archs": [1], "estimators": ["params"]}}),
        ("GET", "/v1/jobs/" + "a" * 32, {}),
        ("GET", "/v1/rankings/nb201", {}),
        ("PUT", "/v1/truth/nb201/t", {"content": "arch,v\n1,2\n", "headers": TEXT}),
    ]
    for method, path, kwargs in calls:
        resp = client.request(method, path, **kwargs)
        assert resp.status_code == 503, (path, resp.text)
        assert resp.headers["Retry-After"] == "2"
        assert error_fields(resp, 503)["redis"]
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["redis"] is False


@pytest.mark.slow
def test_a_request_over_the_work_bound_is_422_with_the_figure(client, r, settings_env):
    settings_env(max_work_per_request="10000")
    before = _snapshot(r)
    body = {"archs": list(range(20)), "estimators": ["synflow", "snip", "params"], "protocol": {"batch_size": 256}}
    fields = error_fields(client.post("/v1/scores", json=body), 422)
    assert "20 architectures x 2 estimators x 256 images = 10,240 exceeds" in fields["archs"]
    assert _snapshot(r) == before
    body = {"archs": list(range(20)), "estimators": ["synflow", "params", "flops"], "protocol": {"batch_size": 500}}
    assert client.post("/v1/scores?wait=60", json=body).status_code == 200  # 20 x 1 x 500: within the bound


@pytest.mark.slow
def test_a_stalled_upload_times_out_with_408_over_a_real_socket(test_redis, tmp_path):
    """A client that sends part of a body and stops gets 408 after the upload timeout, and the
    connection is closed, instead of holding it open for ever."""
    import socket
    import time

    from helpers.stack import child, child_env
    from helpers.waiting import wait_until

    from archscore.service import runner

    port = runner.free_port()
    env = child_env(test_redis.url, upload_timeout_seconds="1")
    with child(runner.api_command("127.0.0.1", port), env, tmp_path / "api.log"):
        sock = wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=10),
            30,
            interval=0.1,
            ignore=(OSError,),
            message=lambda: "the API to accept\n" + (tmp_path / "api.log").read_text(),
        )
        with sock:
            sock.sendall(
                b"PUT /v1/truth/nb201/slow HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 1000\r\n\r\narch,value\n"
            )
            started = time.monotonic()
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            waited = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"not received within 1 s" in reply
    assert 0.9 < waited < 10


def test_an_nds_error_that_is_not_a_percentage_is_422(client, r):
    from helpers.nds_records import nds_records

    from archscore.estimators.spaces import get_space

    resnet = get_space("nds_resnet")
    records = nds_records(resnet, resnet.sample(3, seed=0), seed=1)
    records[1]["min_test_top1"] = 500  # would be an accuracy of -400
    fields = error_fields(client.put("/v1/truth/nds_resnet/odd", content=json.dumps(records), headers=JSON), 422)
    assert "record 1" in fields["body"] and "not a percentage" in fields["body"]
    assert not r.exists(store.truth_key("nds_resnet", "odd"))


def test_a_truth_table_sent_as_json_is_read_like_text(client, r):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|none~2|"
    sent = client.put("/v1/truth/nb201/as-json", json={arch: 71.5})
    assert sent.status_code == 200 and sent.json()["rows"] == 1, sent.text
    client.delete("/v1/truth/nb201/as-json")
    assert (
        "not UTF-8" in error_fields(client.put("/v1/truth/nb201/bytes", content=b"\xff\xfe", headers=TEXT), 422)["body"]
    )


def test_a_method_a_route_does_not_take_is_405_with_allow(client):
    resp = client.request("TRACE", "/v1/scores")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"


def test_the_document_says_an_encoding_is_never_null_or_a_boolean(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ScoreRequest"]["properties"]["archs"]
    assert {t["type"] for t in schema["items"]["anyOf"]} == {"string", "integer", "array", "object"}
    assert "archs[0]" in error_fields(client.post("/v1/scores", json={"archs": [None], "estimators": ["params"]}), 422)
