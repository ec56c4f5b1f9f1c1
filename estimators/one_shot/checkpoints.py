"""Supernet checkpoints: a folder with ``weights.pt`` (a state dict, always loaded with
``weights_only=True``), ``optimizer.pt`` (for resuming; absent from averaged checkpoints) and
``manifest.json`` (space, network config, sampler, epochs, dataset, seed, sha256 of the weights).

Files are written to a temporary name and renamed, the manifest last, so a reader sees either the
old or the new checkpoint; a reader that catches the two files mid-swap gets a sha256 mismatch.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from archscore.estimators.one_shot.registry import MANIFEST, OPTIMIZER, WEIGHTS, CheckpointError, folder_of, sha256_file
from archscore.estimators.spaces import DEFAULT_SPACE, get_space

if TYPE_CHECKING:
    from archscore.estimators.spaces.supernet import Supernet


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)


def save_checkpoint(folder: Path, supernet: torch.nn.Module, optimizer, fields: dict) -> dict:
    """Write weights (and optimizer state when given), then the manifest with the weights' sha256."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save({k: v.detach().cpu() for k, v in supernet.state_dict().items()}, folder / WEIGHTS)
    if optimizer is not None:
        _atomic_save(optimizer.state_dict(), folder / OPTIMIZER)
    manifest = {"space": supernet.space, "network": supernet.config, **fields, "sha256": sha256_file(folder / WEIGHTS)}
    write_manifest(folder, manifest)
    return manifest


def load_checkpoint(folder: Path, device: str = "cpu") -> tuple[Supernet, dict]:
    """Load safely (weights_only) and check the weights against the manifest's sha256."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: not a readable checkpoint ({exc})") from None
    if sha256_file(folder / WEIGHTS) != manifest.get("sha256"):
        raise CheckpointError(f"{folder / WEIGHTS}: sha256 differs from the manifest (changed or being written)")
    supernet = get_space(manifest.get("space", DEFAULT_SPACE)).make_supernet(**manifest["network"])
    supernet.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return supernet.to(device), manifest


@functools.lru_cache(maxsize=4)
def checkpoint_by_sha256(root: str, sha256: str, device: str = "cpu") -> tuple[Supernet, dict]:
    """(supernet in eval mode, manifest) of the checkpoint under ``root`` with these weights, on
    ``device``, loaded once per process (the supernet loader of library scoring; workers keep their own
    cache)."""
    net, manifest = load_checkpoint(folder_of(Path(root), sha256), device)
    if manifest["sha256"] != sha256:
        raise CheckpointError(f"checkpoint with sha256 {sha256[:16]}… changed while being read")
    return net.eval(), manifest


def _relative_name(folder: Path, out: Path) -> str:
    """A source checkpoint as named beside the output (``deiso/snapshots/epoch-0250``), never a
    server path: listings show manifests to every API client."""
    root = out.resolve().parent
    folder = folder.resolve()
    return folder.relative_to(root).as_posix() if folder.is_relative_to(root) else folder.name


def average_checkpoints(folders: list[Path], out: Path) -> dict:
    """Average the weights of checkpoints of the same network (a one-shot mitigation:
    docs/concepts/estimators.md); BN running
        statistics are averaged too, integer buffers (batch counters) taken from the last checkpoint."""
    if len(folders) < 2:
        raise CheckpointError("averaging needs at least two checkpoints")
    loaded = [load_checkpoint(f) for f in folders]
    configs = {json.dumps([m.get("space", DEFAULT_SPACE), m["network"]], sort_keys=True) for _, m in loaded}
    if len(configs) > 1:
        raise CheckpointError("checkpoints of different spaces or network configurations; cannot average")
    states = [net.state_dict() for net, _ in loaded]
    averaged = {}
    for name, last in states[-1].items():
        if last.is_floating_point():
            averaged[name] = torch.stack([s[name] for s in states]).mean(0)
        else:
            averaged[name] = last
    supernet = get_space(loaded[0][1].get("space", DEFAULT_SPACE)).make_supernet(**loaded[0][1]["network"])
    supernet.load_state_dict(averaged)
    first = loaded[-1][1]
    fields = {k: first[k] for k in ("sampler", "dataset", "seed", "train_config") if k in first}
    fields.update(
        epochs=first.get("epochs"),
        complete=True,
        history=[],
        updated=time.time(),
        averaged_from=[
            {"name": _relative_name(Path(f), Path(out)), "sha256": m["sha256"], "epochs": m.get("epochs")}
            for f, (_, m) in zip(folders, loaded)
        ],
    )
    return save_checkpoint(out, supernet, None, fields)
