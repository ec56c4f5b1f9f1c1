"""Worker processes as operators start them (`archscore worker`, `archscore up`)."""

from __future__ import annotations

import pytest
from celery import Celery
from helpers.stack import child, child_env
from helpers.waiting import wait_until

from archscore.service import runner


@pytest.mark.slow
def test_two_workers_on_one_host_answer_ping_as_two_nodes(test_redis, tmp_path):
    test_redis.client(test_redis.crash_db).flushdb()
    env = child_env(test_redis.crash_url)
    ping = Celery(broker=test_redis.crash_url)
    with (
        child(runner.worker_command(1, "info"), env, tmp_path / "w1.log"),
        child(runner.worker_command(1, "info"), env, tmp_path / "w2.log"),
    ):
        replies: list = []

        def two_replies() -> bool:
            replies[:] = ping.control.ping(timeout=1.0) or []
            return len(replies) >= 2

        wait_until(two_replies, 60, interval=0, message=lambda: f"two workers to answer ping (replies: {replies})")
    names = {name for reply in replies for name in reply}
    assert len(names) == 2, replies


@pytest.mark.slow  # ~23 s measured
def test_the_embedded_redis_keeps_its_port_across_restarts_of_one_data_folder(tmp_path):
    import socket

    with socket.socket() as taken:  # the default port is busy at the first start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        default = taken.getsockname()[1]
        first = runner.embedded_redis_port(tmp_path / "redis", default=default)
        assert first != default
    # at the next start the default is free again, but the folder keeps the port it had
    assert runner.embedded_redis_port(tmp_path / "redis", default=default) == first
    assert runner.embedded_redis_port(tmp_path / "other", default=default) == default
