"""Made-up records in the published NDS format (facebookresearch/nds data files: one JSON list of
records, each with its ``net`` and the per-epoch test top-1 errors). Not real data: the errors are
drawn from a seeded generator, so tests can check which of them became the ground truth."""

from __future__ import annotations

import random


def nds_records(space, archs, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for arch in archs:
        epochs = [round(rng.uniform(5.0, 60.0), 3) for _ in range(5)]
        params, flops = space.cost(arch)
        records.append(
            {
                "net": {**space.to_record(arch), "stem_type": "res_stem_cifar", "stem_w": 16, "nc": 10},
                "optim": {"base_lr": 0.1, "max_ep": 5},
                "params": params,
                "flops": flops,
                "min_test_top1": min(epochs),
                "test_ep_top1": epochs,
                "train_ep_loss": [2.0 - 0.1 * e for e in range(5)],
            }
        )
    return records
