"""Running a study: numbers, then result.json (every number with the inputs that produced it) and
one figure file per figure (PNG, PDF or SVG) in the output folder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from archscore.estimators.analysis.context import ScoreSource, StudyContext
from archscore.estimators.analysis.registry import Study
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import DEFAULT_SPACE  # checkpoints written before manifests named their space
from archscore.estimators.spaces.base import Arch


def run_study(
    study: Study,
    ctx: StudyContext,
    out_dir: Path | None = None,
    truth_name: str = "",
    fmt: str = "png",
    dpi: int | None = None,
) -> dict:
    started = time.perf_counter()
    numbers = study.run(ctx)
    result = {
        "study": study.name,
        "description": study.description,
        "inputs": {
            **ctx.describe(),
            "truth": truth_name,
            "truth_values": list(ctx.truth),
            "protocols_scored": sorted(ctx._cache),
        },
        "result": numbers,
        "seconds": round(time.perf_counter() - started, 2),
        "figures": [],
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        result["figures"] = write_figures(study, numbers, out_dir, fmt, dpi)
        (out_dir / "result.json").write_text(json.dumps(result, indent=1, allow_nan=False))
    return result


def write_figures(study: Study, numbers: dict, out_dir: Path, fmt: str = "png", dpi: int | None = None) -> list[str]:
    from archscore.estimators.analysis.plots import DEFAULT_DPI, save

    names = []
    for name, fig in study.figures(numbers).items():
        save(fig, out_dir / f"{name}.{fmt}", dpi or DEFAULT_DPI)
        names.append(name)
    return names


def with_checkpoints(
    study: Study, protocol: Protocol, options: dict, supernet_dir: Path, space: str, owner: str | None = None
) -> dict:
    """``options``, plus what the study reads of the checkpoints on disk: the per-epoch snapshots of the
    protocol's one-shot checkpoint (Study.needs_snapshots), the checkpoints named in
    options["supernets"], each a supernet of ``space`` (Study.needs_checkpoints), among those ``owner``
    sees (the service's API keys: archscore.estimators.one_shot.registry.list_checkpoints)."""
    from archscore.estimators.analysis.registry import StudyInputError
    from archscore.estimators.one_shot.registry import CheckpointError, resolve, snapshots_of

    if study.needs_snapshots and protocol.oneshot is not None:
        try:
            options = {**options, "snapshots": snapshots_of(supernet_dir, protocol.oneshot.supernet)}
        except CheckpointError as exc:
            raise StudyInputError("protocol.oneshot.supernet", str(exc)) from None
    if study.needs_checkpoints:
        checkpoints = []
        for i, ref in enumerate(options.get("supernets") or []):
            try:
                c = resolve(supernet_dir, ref, owner=owner)
            except CheckpointError as exc:
                raise StudyInputError(f"options.supernets[{i}]", str(exc)) from None
            if (c["space"] or DEFAULT_SPACE) != space:
                raise StudyInputError(
                    f"options.supernets[{i}]", f"{c['name']!r} is a supernet of {c['space']}, not of {space}"
                )
            checkpoints.append(
                {
                    "name": c["name"],
                    "sha256": c["sha256"],
                    "sampler": c["sampler"],
                    "partitions": (c["network"] or {}).get("partitions", 1),
                    "epochs": c["epochs"],
                }
            )
        options = {**options, "checkpoints": checkpoints}
    return options


def local_source(
    space: str,
    archs: Sequence[Arch],
    estimators: list[str],
    jobs: int,
    on_protocol: Callable[[Protocol], Callable[[int, int], None] | None] = lambda p: None,
    supernet_dir: Path | None = None,
    device: str = "cpu",
) -> ScoreSource:
    """Scores computed in this process (or a pool of ``jobs`` processes), one pass per protocol;
    ``supernet_dir`` holds the checkpoints protocols name as ``weights``. Each architecture is scored
    as the service scores it (``scored_arch``: its class's representative unless ``per_member``;
    params and flops the architecture itself where the space has a cost model), so a study gives the
    same numbers here and over HTTP."""
    from archscore.estimators.protocol import PER_ARCHITECTURE, scored_arch
    from archscore.estimators.scoring import score_many
    from archscore.estimators.spaces import get_space
    from archscore.estimators.spaces.base import COST

    sp = get_space(space)
    own = [e for e in estimators if e in PER_ARCHITECTURE and sp.has(COST)]
    shared = [e for e in estimators if e not in own]

    def source(protocol: Protocol) -> dict[str, list[float | None]]:
        progress = on_protocol(protocol)
        scores: dict[str, list[float | None]] = {}
        if shared:
            scored = [scored_arch(sp, a, protocol.per_member) for a in archs]
            records = score_many(scored, space, shared, protocol, jobs, progress, supernet_dir, device)
            scores.update({e: [r["scores"][e] for r in records] for e in shared})
        if own:
            records = score_many(archs, space, own, protocol, 1, None if shared else progress, supernet_dir, device)
            scores.update({e: [r["scores"][e] for r in records] for e in own})
        return {e: scores[e] for e in estimators}

    return source
