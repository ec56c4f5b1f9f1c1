#!/usr/bin/env bash
# On a machine with a GPU: score 50 NB201 cells with every zero-shot estimator on cuda and on cpu and print,
# per estimator, the largest relative difference and the speed-up (a Markdown table for docs/results/gpu.md).
# Uses the environment's own torch; installs archscore (no dependencies) when it is not importable yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import archscore.estimators" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
exec "$PYTHON" scripts/gpu_check.py "$@"
