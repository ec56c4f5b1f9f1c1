"""How much memory scoring a network needs, estimated before building it, and how much there is.

Scoring keeps the forward graph of one batch for backward passes (and GraSP a second-order one), so
its peak grows with batch size x the feature-map elements the network produces. Those are counted
exactly, for any space's network, by passing one image through it before the batch. The
bytes per element are measured (benchmarks/memory.py, results in benchmarks/results/memory.txt): the
estimate is meant to be an upper bound, so that a worker refuses, with a batch size that fits, an
architecture it could not score, instead of being killed by the kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

# Peak bytes of scoring with every zero-shot estimator, per feature-map element per sample (float32
# activations kept for backward, their gradients, GraSP's second graph, allocator slack), and per
# parameter (weights, gradients, synflow's float64 copy). Measured slopes on the largest network of
# each space (benchmarks/memory.py): 6.4 (nb201, nb101), 9.0 (nds_resnet), 9.3 (nb301) bytes per
# element; 15.3 bytes per parameter (nds_resnet); both rounded up by about a third.
BYTES_PER_FEATURE_ELEMENT = 12
BYTES_PER_PARAMETER = 20
BYTES_PER_GRADIENT_ENTRY = 4  # a pass's float32 gradient rows (registry: gradient_rows), per parameter
BASELINE_BYTES = 400 * 2**20  # the process itself: torch and the data batches (measured: about 310 MiB)
MEMORY_LIMIT_ENV = "ARCHSCORE_MEMORY_LIMIT_MB"


def feature_elements(net: nn.Module, input_size: int = 32, forward=None) -> int:
    """Output elements of every leaf module in one forward pass of one sample: one image through the
    network in eval mode without gradients (a small fraction of scoring it; a network built on the
    meta device works too, shapes only). ``forward(x)`` runs the pass where ``net(x)`` does not (a
    supernet's path: ``lambda x: supernet(x, arch)``). The network's state is left as it was."""
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    device = next(net.parameters(), torch.empty(0)).device
    handles = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    was_training = net.training
    try:
        net.eval()  # no BatchNorm statistics updated by this look
        with torch.no_grad():
            (forward or net)(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def gradient_rows(passes: set[str] | frozenset[str], batch_size: int) -> int:
    """The most float32 copies of the parameters one of the registered ``passes`` holds at ``batch_size``."""
    from archscore.estimators.zero_shot.passes import OWN_PASSES

    return max((min(OWN_PASSES[p].gradient_rows, batch_size) for p in passes if p in OWN_PASSES), default=0)


def scoring_bytes(elements: int, params: int, batch_size: int, rows: int = 0) -> int:
    """Estimated peak bytes of scoring a network of ``elements`` feature elements per sample, with passes
    that hold ``rows`` gradients of the parameters (``gradient_rows``)."""
    per_parameter = BYTES_PER_PARAMETER + BYTES_PER_GRADIENT_ENTRY * rows
    return BASELINE_BYTES + per_parameter * params + BYTES_PER_FEATURE_ELEMENT * elements * batch_size


def largest_batch(elements: int, params: int, limit: int, rows: int = 0) -> int:
    """The largest batch size whose estimate fits in ``limit`` bytes (0 when none does), ``rows`` taken at
    their most (a smaller batch can hold fewer, which this leaves aside: the answer is on the safe side)."""
    spare = limit - BASELINE_BYTES - (BYTES_PER_PARAMETER + BYTES_PER_GRADIENT_ENTRY * rows) * params
    return max(0, spare // (BYTES_PER_FEATURE_ELEMENT * elements))


def memory_limit(device: str | torch.device = "cpu") -> int:
    """Bytes a scoring process may use: ``ARCHSCORE_MEMORY_LIMIT_MB`` when set; else 80% of the GPU's
    memory on CUDA, or of the container's limit (cgroup v2 memory.max) or the machine's memory."""
    configured = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if configured:
        try:
            return int(float(configured) * 2**20)
        except ValueError:
            raise ValueError(f"{MEMORY_LIMIT_ENV} must be a number of MiB, got {configured!r}") from None
    if torch.device(device).type == "cuda":
        return int(0.8 * torch.cuda.get_device_properties(torch.device(device)).total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cgroup.isdigit():
            total = min(total, int(cgroup))
    except OSError:
        pass
    return int(0.8 * total)
