"""`archscore up`, the quickstart's service command: everything comes up on the embedded defaults,
answers, and SIGTERM (a service manager, a container stop, kill) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest
from helpers.http import wait_answering
from helpers.stack import REPO, UP, alive, child_pids
from helpers.waiting import wait_until

from archscore.service import runner


@pytest.mark.slow
def test_up_serves_on_embedded_defaults_and_sigterm_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    env.update(ARCHSCORE_DATA_DIR=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    port = runner.free_port()
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen([*UP, "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # the scoring worker and the supernet trainer (ready needs only Redis and a scoring worker: on a
        # loaded machine the trainer may register a moment later)
        wait_answering(
            f"http://127.0.0.1:{port}/readyz",
            90,
            procs={"archscore up": up},
            logs={"archscore up": tmp_path / "up.log"},
            interval=0.5,
            ok=lambda ready: ready.status_code == 200 and ready.json()["workers"] == 2,
        )
        scored = httpx.post(
            f"http://127.0.0.1:{port}/v1/scores",
            params={"wait": 30},
            timeout=40,
            json={"archs": [[0, 1, 2, 3, 4, 0]], "estimators": ["params", "relu"]},
        ).json()
        assert scored["status"] == "done" and scored["results"][0]["scores"]["relu"] > 0
        # the worker's device is recorded (auto resolves to the CPU here); params is the API's exact count
        assert scored["results"][0]["devices"] == {"relu": "cpu"}
        children = child_pids(up.pid)
        assert len(children) == 4  # redis-server, two workers, the API
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0
        wait_until(
            lambda: not any(alive(c) for c in children),
            20,
            message=lambda: f"processes left behind after SIGTERM: {[c for c in children if alive(c)]}",
        )
        assert not [c for c in children if alive(c)], "processes left behind after SIGTERM"
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
