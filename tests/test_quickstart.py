"""`archscore up`, the quickstart's service command: everything comes up on the embedded defaults,
answers, and SIGTERM (a service manager, a container stop, kill) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import alive as _alive
from conftest import child_pids as _children
from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]


def test_up_serves_on_embedded_defaults_and_sigterm_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    env.update(ARCHSCORE_DATA_DIR=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    port = runner.free_port()
    log = open(tmp_path / "up.log", "wb")
    command = [sys.executable, "-c", "from archscore.service.cli import main; main()", "up", "--port", str(port)]
    up = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                # the scoring worker and the supernet trainer (ready needs only Redis and a scoring worker:
                # on a loaded machine the trainer may register a moment later)
                if ready.status_code == 200 and ready.json()["workers"] == 2:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.5)
        scored = httpx.post(f"http://127.0.0.1:{port}/v1/scores", params={"wait": 30}, timeout=40,
                            json={"archs": [[0, 1, 2, 3, 4, 0]], "estimators": ["params", "relu"]}).json()
        assert scored["status"] == "done" and scored["results"][0]["scores"]["relu"] > 0
        # the worker's device is recorded (auto resolves to the CPU here); params is the API's exact count
        assert scored["results"][0]["devices"] == {"relu": "cpu"}
        children = _children(up.pid)
        assert len(children) == 4  # redis-server, two workers, the API
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0
        deadline = time.monotonic() + 20
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "processes left behind after SIGTERM"
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
