"""Supernet checkpoints downloaded from the API by a worker whose supernet folder lacks them (a worker on
another host: ARCHSCORE_CHECKPOINT_SOURCE).

The manifest, then the weights, come from ``GET /v1/supernets/{sha256}/files/{file}``, streamed into a
fresh folder under ``{supernet folder}/.fetching/`` and stopped once the two together pass
ARCHSCORE_MAX_CHECKPOINT_BYTES. The manifest must record the sha256 asked for, and the weights must
hash to it; only then is the folder renamed into place (``fetched-{sha256}``), so that the other
processes of the host see the whole checkpoint or none of it, and later jobs find it on disk like any
other. Anything short of that leaves nothing behind and raises CheckpointError with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import httpx

from archscore.contract.settings import Settings
from archscore.estimators.one_shot.registry import MANIFEST, WEIGHTS, CheckpointError, folder_of, read_manifest

STAGING = ".fetching"  # no manifest directly inside: the checkpoint listing never sees a partial download
TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # per connection attempt and per read, not for the whole file
BLOCK = 1 << 20


def fetched_name(sha256: str) -> str:
    return f"fetched-{sha256}"


def fetch_checkpoint(root: Path, sha256: str, settings: Settings, transport: httpx.BaseTransport | None = None) -> Path:
    """Download the checkpoint with these weights from ``settings.checkpoint_source`` into ``root``; its
    folder there. ``transport``: httpx's, for tests."""
    source = (settings.checkpoint_source or "").rstrip("/")
    if not source:
        raise CheckpointError("no checkpoint source to download from (ARCHSCORE_CHECKPOINT_SOURCE)")
    staging = Path(root) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{sha256[:16]}-", dir=staging))
    try:
        headers = {"X-API-Key": settings.checkpoint_source_key} if settings.checkpoint_source_key else {}
        with httpx.Client(base_url=source, headers=headers, timeout=TIMEOUT, transport=transport) as client:
            budget = settings.max_checkpoint_bytes
            budget -= _download(client, sha256, MANIFEST, partial / MANIFEST, budget)[1]
            recorded = (read_manifest(partial) or {}).get("sha256")
            if recorded != sha256:
                raise CheckpointError(f"{source} sent a manifest for sha256 {str(recorded)[:16]}…, not {sha256[:16]}…")
            digest, _ = _download(client, sha256, WEIGHTS, partial / WEIGHTS, budget)
        if digest != sha256:
            raise CheckpointError(
                f"the weights downloaded from {source} hash to {digest[:16]}…, not {sha256[:16]}…: refused "
                "(changed on the server while being downloaded, or altered on the way)"
            )
        return _move_into_place(partial, Path(root), sha256)
    except httpx.HTTPError as exc:
        raise CheckpointError(f"could not download checkpoint {sha256[:16]}… from {source}: {exc!r}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # gone already once moved into place


def _download(client: httpx.Client, sha256: str, name: str, dest: Path, budget: int) -> tuple[str, int]:
    """Stream one file to ``dest``; its sha256 and size. Refused past ``budget`` bytes."""
    bound = f"more than ARCHSCORE_MAX_CHECKPOINT_BYTES ({budget:,} bytes left of the bound)"
    with client.stream("GET", f"/v1/supernets/{sha256}/files/{name}") as resp:
        if resp.status_code != 200:
            raise CheckpointError(
                f"{client.base_url} answered {resp.status_code} for {name} of checkpoint {sha256[:16]}…: "
                f"{_reason(resp)}"
            )
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > budget:
            raise CheckpointError(f"{name} of checkpoint {sha256[:16]}… is {int(declared):,} bytes: {bound}")
        digest, size = hashlib.sha256(), 0
        with open(dest, "wb") as out:
            for block in resp.iter_bytes(BLOCK):
                size += len(block)
                if size > budget:
                    raise CheckpointError(f"{name} of checkpoint {sha256[:16]}… is {bound}")
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    return digest.hexdigest(), size


def _reason(resp: httpx.Response) -> str:
    """The API's error message and details, from the first few KB of the answer."""
    head = b""
    for block in resp.iter_bytes():
        head += block
        if len(head) > 4096:
            break
    try:
        error = json.loads(head)["error"]
        return "; ".join([error["message"], *(d["reason"] for d in error["details"])])
    except (ValueError, KeyError, TypeError):
        return head[:200].decode(errors="replace") or resp.reason_phrase


def _move_into_place(partial: Path, root: Path, sha256: str) -> Path:
    """Rename the complete download to its place; another process of this host that got there first wins."""
    final = root / fetched_name(sha256)
    try:
        os.rename(partial, final)
    except OSError:  # the folder exists: another process fetched it meanwhile (or a leftover: see below)
        try:
            return folder_of(root, sha256)
        except CheckpointError:  # a leftover of the same name that is no longer this checkpoint
            shutil.rmtree(final, ignore_errors=True)
            os.rename(partial, final)
    return final
