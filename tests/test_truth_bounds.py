"""Uploaded ground-truth tables never expire, so they are bounded (number and rows of all tables), an
operator can delete them, and a Redis that runs out of memory is answered with a 507, never a 500."""

from __future__ import annotations

import httpx
import pytest
from helpers.stack import api_process

from archscore.contract import store
from archscore.estimators.spaces import get_space
from archscore.service import runner

TEXT = {"content-type": "text/plain"}
NB201 = get_space("nb201")


def _table(n: int, offset: int = 0, value: float = 50.0) -> str:
    return "arch,acc\n" + "".join(f"{NB201.to_string(NB201.parse(offset + i))},{value}\n" for i in range(n))


def _fields(resp, status: int) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    return {d["field"]: d["reason"] for d in resp.json()["error"]["details"]}


@pytest.fixture
def clean_tables(r):
    """No uploaded table before or after the test (the bounds count every table kept)."""

    def drop():
        for table_id in r.hkeys(store.truth_tables_key()):
            space, name = (table_id.decode() if isinstance(table_id, bytes) else table_id).split("/", 1)
            r.delete(store.truth_key(space, name))
        r.delete(store.truth_tables_key())

    drop()
    yield
    drop()


def test_the_number_and_rows_of_tables_are_bounded_and_delete_frees_room(client, r, settings_env, clean_tables):
    settings_env(max_truth_tables="2", max_truth_rows_total="30")
    assert client.put("/v1/truth/nb201/first", content=_table(10), headers=TEXT).status_code == 200
    assert client.put("/v1/truth/nb201/second", content=_table(10, 10), headers=TEXT).status_code == 200
    full = _fields(client.put("/v1/truth/nb201/third", content=_table(5), headers=TEXT), 507)
    assert "2 uploaded tables are kept, at most 2" in full["name"] and "DELETE /v1/truth" in full["name"]
    assert not r.exists(store.truth_key("nb201", "third"))
    # replacing a table of the same name takes no new room, but its rows count
    assert client.put("/v1/truth/nb201/second", content=_table(20, 10), headers=TEXT).status_code == 200
    rows = _fields(client.put("/v1/truth/nb201/second", content=_table(21, 10), headers=TEXT), 507)
    assert "21 rows on top of the 10 kept" in rows["body"] and "30" in rows["body"]
    assert r.hlen(store.truth_key("nb201", "second")) == 20  # the refused upload lost nothing

    deleted = client.delete("/v1/truth/nb201/first")
    assert deleted.status_code == 200 and deleted.json() == {
        "space": "nb201",
        "name": "first",
        "deleted": True,
        "rows": 10,
    }
    assert not r.exists(store.truth_key("nb201", "first"))
    assert client.put("/v1/truth/nb201/third", content=_table(5), headers=TEXT).status_code == 200
    assert client.delete("/v1/truth/nb201/first").status_code == 404
    assert "reserved" in client.delete("/v1/truth/nb201/cifar10_test").json()["error"]["message"]
    ranked = client.get("/v1/rankings/nb201", params={"truth": "first"})
    assert "truth" in _fields(ranked, 422)  # a deleted table is gone for the rankings too


def test_redis_out_of_memory_is_507_not_500(tmp_path):
    """A real redis-server with a small maxmemory and nothing evictable: uploads fill it, and the one that
    no longer fits is answered 507 with a reason; what was stored before stays readable."""
    port = runner.free_port()
    server = runner.start_redis(tmp_path / "redis", port, maxmemory="3mb")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with api_process(url, tmp_path, max_truth_tables="1000", max_truth_rows_total="10000000") as base:
            table = _table(3000)
            statuses = []
            for i in range(40):
                resp = httpx.put(f"{base}/v1/truth/nb201/fill{i}", content=table, headers=TEXT, timeout=30)
                statuses.append(resp.status_code)
                if resp.status_code != 200:
                    break
            assert statuses[0] == 200 and statuses[-1] == 507, statuses
            assert "maxmemory" in _fields(resp, 507)["redis"]
            kept = httpx.get(f"{base}/v1/rankings/nb201", params={"truth": "fill0"}, timeout=10)
            assert kept.status_code == 200, kept.text
    finally:
        runner.stop_process(server, 10)
