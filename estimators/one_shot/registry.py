"""Find supernet checkpoints on disk by name or sha256, without torch (the API lists them)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from archscore.estimators.spaces import DEFAULT_SPACE  # checkpoints written before manifests named their space

WEIGHTS, OPTIMIZER, MANIFEST = "weights.pt", "optimizer.pt", "manifest.json"


def default_supernet_dir() -> Path:
    """Where the command line looks for checkpoints: where the service keeps them
    (ARCHSCORE_SUPERNET_DIR, else ARCHSCORE_DATA_DIR/supernets, as archscore.contract.settings)."""
    return Path(
        os.environ.get("ARCHSCORE_SUPERNET_DIR")
        or Path(os.environ.get("ARCHSCORE_DATA_DIR", ".archscore")) / "supernets"
    )


# Checkpoints that ship with archscore (package data, read only): listed and found beside those of the
# supernet directory, under their folder names, unless a folder there takes the name. A built-in one is
# the space's supernet when no other is named (:func:`resolve`, :func:`builtin_supernet`).
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "supernets"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, ambiguous or does not match its manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def summary(name: str, manifest: dict, builtin: bool = False) -> dict:
    """What a listing shows of a checkpoint (``builtin``: one that ships with archscore)."""
    config = manifest.get("train_config", {})
    return {
        "name": name,
        "builtin": builtin,
        "sha256": manifest["sha256"],
        "space": manifest.get("space"),
        "network": manifest.get("network"),
        "sampler": manifest.get("sampler"),
        "epochs": manifest.get("epochs"),
        "planned_epochs": config.get("epochs", manifest.get("epochs")),
        "complete": bool(manifest.get("complete")),
        "dataset": manifest.get("dataset"),
        "seed": manifest.get("seed"),
        "train_loss": (manifest.get("history") or [{}])[-1].get("train_loss"),
        "averaged_from": [  # by name only (manifests written before kept server paths)
            {
                "name": s.get("name") or Path(s.get("path", "")).name,
                "sha256": s.get("sha256"),
                "epochs": s.get("epochs"),
            }
            for s in manifest.get("averaged_from") or []
        ]
        or None,
        "updated": manifest.get("updated"),
    }


# The service keeps each API key's checkpoints apart: a key's checkpoint NAME is the folder
# "{owner}~{NAME}" ("~" is outside the names a request may give). Folders without "~" are shared: written
# by the operator (or by a server without keys), readable by every key, written by none.
OWNER_MARK = "~"


def folder_name(name: str, owner: str | None) -> str:
    """The folder of the checkpoint ``name`` written for ``owner`` (None or "": a shared one)."""
    return f"{owner}{OWNER_MARK}{name}" if owner else name


def name_seen_by(folder: str, owner: str | None) -> str:
    """The name ``owner`` gives the checkpoint folder (its own folders without the owner)."""
    return folder.removeprefix(f"{owner}{OWNER_MARK}") if owner else folder


def seen_by(checkpoint: dict, owner: str | None) -> dict:
    """A checkpoint's :func:`summary` with the names ``owner`` gives it and its sources, and whether it
    is ``shared``."""
    sources = checkpoint.get("averaged_from")
    if sources:
        sources = [{**s, "name": name_seen_by(s["name"] or "", owner)} for s in sources]
    return {
        **checkpoint,
        "name": name_seen_by(checkpoint["name"], owner),
        "averaged_from": sources,
        "shared": OWNER_MARK not in checkpoint["name"],
    }


def _checkpoints_in(root: Path, builtin: bool = False) -> list[dict]:
    found = []
    if root.is_dir():
        for folder in root.iterdir():
            manifest = read_manifest(folder) if folder.is_dir() else None
            if manifest and "sha256" in manifest:
                found.append(summary(folder.name, manifest, builtin))
    return found


def list_checkpoints(root: Path, owner: str | None = None) -> list[dict]:
    """The checkpoint folders directly under ``root``, newest first, then the built-in ones whose names no
    folder there takes (:func:`seen_by`; built-in ones are shared). With ``owner``, only those it sees: its
    own, and the shared ones whose name it does not use itself."""
    root = Path(root)
    found = _checkpoints_in(root)
    taken = {c["name"] for c in found}
    found += [c for c in _checkpoints_in(BUILTIN_DIR, builtin=True) if c["name"] not in taken]
    if owner is not None:
        own = [c for c in found if owner and c["name"].startswith(f"{owner}{OWNER_MARK}")]
        taken = {name_seen_by(c["name"], owner) for c in own}
        found = own + [c for c in found if OWNER_MARK not in c["name"] and c["name"] not in taken]
    checkpoints = [seen_by(c, owner) for c in found]
    return sorted(checkpoints, key=lambda c: (not c["builtin"], c["updated"] or 0, c["name"]), reverse=True)


def builtin_supernet(space: str) -> dict | None:
    """The built-in checkpoint of ``space`` (:func:`summary`), if archscore ships one."""
    found = [c for c in _checkpoints_in(BUILTIN_DIR, builtin=True) if c["complete"] and c["space"] == space]
    return sorted(found, key=lambda c: c["name"])[0] if found else None


def checkpoint_folder(root: Path, checkpoint: dict) -> Path:
    """The folder of a listed checkpoint (:func:`list_checkpoints` without owner: folder names)."""
    return (BUILTIN_DIR if checkpoint["builtin"] else Path(root)) / checkpoint["name"]


def resolve(root: Path, ref: str | None, space: str | None = None, owner: str | None = None) -> dict:
    """A checkpoint by folder name, full sha256 or a sha256 prefix of at least 8 hex digits; with no
    ``ref``, the newest complete one (of ``space`` when given) under ``root``, else the built-in one. With
    ``owner``, among those it sees (:func:`list_checkpoints`)."""
    checkpoints = list_checkpoints(root, owner)
    if ref is None:
        complete = [c for c in checkpoints if c["complete"] and space in (None, c["space"] or DEFAULT_SPACE)]
        if not complete:
            of = f" of {space}" if space else ""
            raise CheckpointError(f"no complete supernet checkpoint{of} in {root}; train one first")
        return complete[0]
    matches = [c for c in checkpoints if c["name"] == ref]
    if not matches and len(ref) >= 8 and all(ch in "0123456789abcdef" for ch in ref.lower()):
        matches = [c for c in checkpoints if c["sha256"].startswith(ref.lower())]
    if not matches:
        names = ", ".join(c["name"] for c in checkpoints) or "none"
        raise CheckpointError(f"no supernet checkpoint {ref!r} (available: {names})")
    if len({c["sha256"] for c in matches}) > 1:
        raise CheckpointError(f"{ref!r} matches several checkpoints; give more of the sha256")
    return matches[0]


def unnamed_supernet(root: Path, space: str, owner: str | None = None) -> dict | None:
    """The checkpoint used for ``space`` when none is named (:func:`resolve` without ``ref``: the newest
    complete one under ``root``, else the built-in one), or None where there is none."""
    try:
        return resolve(root, None, space, owner)
    except CheckpointError:
        return None


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused unless it resolves to a folder below ``root`` (no absolute paths,
    no '..', no links out)."""
    base = Path(root).resolve()
    folder = (base / relative).resolve()
    if Path(relative).is_absolute() or folder == base or not folder.is_relative_to(base):
        raise CheckpointError(f"{relative!r} is not a checkpoint below the supernet directory")
    return folder


SNAPSHOTS = "snapshots"  # per-epoch snapshots a training keeps (TrainConfig.keep_snapshots), inside its folder


def snapshots_of(root: Path, sha256: str) -> list[dict]:
    """The per-epoch snapshots kept beside the checkpoint with this sha256, oldest first: epoch,
    sha256 and name ("NAME/snapshots/epoch-0003")."""
    folder = folder_of(root, sha256)
    found = []
    for snapshot in sorted((folder / SNAPSHOTS).glob("epoch-*")):
        manifest = read_manifest(snapshot)
        if manifest and "sha256" in manifest:
            found.append(
                {
                    "epoch": manifest.get("epochs"),
                    "sha256": manifest["sha256"],
                    "name": snapshot.relative_to(Path(root)).as_posix(),
                }
            )
    return found


def folder_of(root: Path, sha256: str) -> Path:
    """The folder currently holding the checkpoint (or kept snapshot) with this exact sha256."""
    for c in list_checkpoints(root):
        if c["sha256"] == sha256:
            return checkpoint_folder(root, c)
    for snapshot in Path(root).glob(f"*/{SNAPSHOTS}/epoch-*"):
        if (read_manifest(snapshot) or {}).get("sha256") == sha256:
            return snapshot
    raise CheckpointError(f"no supernet checkpoint with sha256 {sha256[:16]}… in {root} (replaced or removed)")
