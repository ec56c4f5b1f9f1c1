"""scripts/gpu_check.py, the check run on every GPU machine the project gets: here it runs with the CPU
as both devices (every row present, nothing differs) and refuses CUDA where there is none."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.scripts import load_script

from archscore.estimators.zero_shot.manifest import ZERO_SHOT

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def _module():
    return load_script("gpu_check")


def test_relative_difference():
    diff = _module().relative_difference
    assert diff(1.0, 1.0) == 0.0 and diff(None, None) == 0.0 and diff(0.0, 0.0) == 0.0
    assert diff(2.0, 1.0) == 0.5 and diff(-1.0, 1.0) == 2.0
    assert diff(None, 1.0) is None and diff(math.inf, 1.0) == math.inf


@pytest.mark.slow
def test_report_on_two_cpu_runs(tmp_path):
    out = tmp_path / "report.md"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--cells",
            "1",
            "--batch-size",
            "16",
            "--devices",
            "cpu",
            "cpu",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "estimator" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == list(ZERO_SHOT)
    assert all(r.split(" | ")[1:] == ["0.00e+00", "0 |"] for r in rows)  # the same device twice: bit for bit
    assert "speed-up" in out.read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_cuda_where_there_is_none():
    run = subprocess.run([sys.executable, str(SCRIPT), "--cells", "2"], capture_output=True, text=True)
    assert run.returncode == 2 and "CUDA is not available" in run.stderr


def test_refuses_an_unknown_space():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--space", "nope", "--devices", "cpu", "cpu"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "unknown search space 'nope'" in run.stderr, run.stderr
