#!/usr/bin/env bash
# On a machine with a GPU: score 50 NB201 cells with every zero-shot estimator on cuda and on cpu and print,
# per estimator, the largest relative difference and the speed-up (a Markdown table for docs/results/gpu.md);
# then the cost of each zero-shot proxy on the GPU in forward passes (benchmarks/zero_shot.py, NB201, batch 64),
# and ntk_cond's and vkdnw's with their backward passes one at a time and batched (benchmarks/cotangents.py).
# Uses the environment's own torch; installs archscore (no dependencies) when it is not importable yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import archscore.estimators" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
"$PYTHON" scripts/gpu_check.py "$@"
"$PYTHON" benchmarks/zero_shot.py --space nb201 --cells 3 --repeats 3 --batch-sizes 64 --device cuda
"$PYTHON" benchmarks/cotangents.py --space nb201 --cells 3 --repeats 3 --batch-size 64 --device cuda
