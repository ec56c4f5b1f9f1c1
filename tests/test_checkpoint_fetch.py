"""A scoring worker whose supernet folder lacks a checkpoint downloads it from the API
(ARCHSCORE_CHECKPOINT_SOURCE) before scoring one-shot estimators: a real API process over a socket, with
API keys and a supernet folder of its own, and the tests' Celery worker with another, empty, folder.

The download is checked (the weights must hash to the sha256 asked for), bounded
(ARCHSCORE_MAX_CHECKPOINT_BYTES) and atomic: a refused one leaves nothing in the worker's folder, and its
architectures get an error each. tests/test_remote_workers.py runs workers on hosts of their own."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from helpers.http import error_fields
from helpers.stack import api_process

from archscore.contract.settings import Settings
from archscore.estimators.one_shot import training
from archscore.estimators.one_shot.checkpoints import load_checkpoint
from archscore.estimators.one_shot.evaluation import score_arch, validation_batches
from archscore.estimators.one_shot.registry import CheckpointError, read_manifest, sha256_file
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import has_conv_path
from archscore.workers.checkpoint_fetch import STAGING, fetch_checkpoint, fetched_name

pytestmark = pytest.mark.usefixtures("celery_worker")

KEY = "fetch-key"
SP = get_space("nb201")
TINY = {"network": {"C": 4, "N": 1}, "epochs": 1, "steps_per_epoch": 3, "batch_size": 64}


def cells(n: int, seed: int) -> list[str]:
    picked = [a for a in SP.sample(4 * n, seed=seed, deisomorphic=True) if has_conv_path(a)][:n]
    return [SP.to_string(a) for a in picked]


@pytest.fixture(scope="module")
def api(test_redis, tmp_path_factory):
    """(base URL, supernet folder) of an API process with keys on the tests' Redis, beside the tests' worker;
    two checkpoints trained into its folder."""
    folder = tmp_path_factory.mktemp("api-supernets")
    for seed, name in ((101, "alpha"), (102, "beta")):  # seeds no other module trains with: checkpoints of their own
        training.train(training.TrainConfig(seed=seed, **TINY), folder / name)
    logs = tmp_path_factory.mktemp("api-logs")
    with api_process(test_redis.url, logs, supernet_dir=str(folder), api_keys=json.dumps([KEY])) as base:
        yield base, folder


@pytest.fixture
def worker_folder(settings_env, tmp_path, api):
    """The tests' worker, now with an empty supernet folder of its own and the API as its checkpoint source."""
    folder = tmp_path / "worker-supernets"
    settings_env(supernet_dir=str(folder), checkpoint_source=api[0], checkpoint_source_key=KEY)
    return folder


def score(base: str, archs: list[str], supernet: str) -> dict:
    body = {
        "space": "nb201",
        "archs": archs,
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"supernet": supernet, "num_batches": 2}},
    }
    resp = httpx.post(f"{base}/v1/scores", params={"wait": 60}, json=body, headers={"X-API-Key": KEY}, timeout=90)
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "done", job
    return job


def library_scores(folder: Path, archs: list[str]) -> list[dict]:
    net, manifest = load_checkpoint(folder)
    batches = validation_batches(manifest, 100, 2)
    return [score_arch(net, SP.representative(SP.parse(a)), batches, "train", True) for a in archs]


def left_behind(folder: Path) -> list[str]:
    """What the worker's folder holds besides complete checkpoints: partial downloads."""
    staging = folder / STAGING
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def test_a_worker_without_the_checkpoint_downloads_it_and_scores_as_the_library(api, worker_folder):
    base, api_folder = api
    sha = read_manifest(api_folder / "alpha")["sha256"]
    assert not worker_folder.exists()
    archs = cells(3, seed=51)
    job = score(base, archs, "alpha")
    assert job["protocol"]["oneshot"]["supernet"] == sha
    for result, want in zip(job["results"], library_scores(api_folder / "alpha", archs)):
        assert result["error"] is None, result
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
        assert result["scores"]["oneshot_loss"] == pytest.approx(want["oneshot_loss"])
    fetched = worker_folder / fetched_name(sha)  # kept: the next job reads it from disk
    assert (fetched / "weights.pt").read_bytes() == (api_folder / "alpha" / "weights.pt").read_bytes()
    assert read_manifest(fetched) == read_manifest(api_folder / "alpha")
    assert left_behind(worker_folder) == []


def test_weights_that_do_not_hash_to_the_sha256_are_refused_per_architecture(api, worker_folder):
    base, api_folder = api
    weights = api_folder / "beta" / "weights.pt"
    sha = read_manifest(api_folder / "beta")["sha256"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # altered on the server's disk (or on the way): the manifest still names sha
    weights.write_bytes(bytes(data))
    archs = cells(2, seed=52)
    job = score(base, archs, "beta")
    for result in job["results"]:
        assert result["error"] and "CheckpointError" in result["error"], result
        assert f"hash to {sha256_file(weights)[:16]}…, not {sha[:16]}…: refused" in result["error"], result
        assert result["scores"] == {"oneshot_acc": None, "oneshot_loss": None}
    assert not (worker_folder / fetched_name(sha)).exists()
    assert left_behind(worker_folder) == []


def test_downloads_past_the_bound_without_a_key_or_of_unknown_checkpoints_are_refused(api, tmp_path):
    base, api_folder = api
    sha = read_manifest(api_folder / "alpha")["sha256"]
    size = sum((api_folder / "alpha" / name).stat().st_size for name in ("weights.pt", "manifest.json"))

    def fetch(sha256: str = sha, **settings) -> Path:
        return fetch_checkpoint(tmp_path, sha256, Settings(checkpoint_source=base, **settings))

    with pytest.raises(CheckpointError, match="more than ARCHSCORE_MAX_CHECKPOINT_BYTES"):
        fetch(checkpoint_source_key=KEY, max_checkpoint_bytes=size - 1)
    with pytest.raises(CheckpointError, match="answered 401 for manifest.json .*missing API key"):
        fetch()
    with pytest.raises(CheckpointError, match="answered 404 .*replaced or removed"):
        fetch("0" * 64, checkpoint_source_key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STAGING] and left_behind(tmp_path) == []
    assert fetch(checkpoint_source_key=KEY, max_checkpoint_bytes=size) == tmp_path / fetched_name(sha)

    # the route itself: the exact sha256 only, the two files only, under the API's key rules
    resp = httpx.get(f"{base}/v1/supernets/{sha[:12]}/files/weights.pt", headers={"X-API-Key": KEY})
    assert "sha256" in error_fields(resp, 422)
    resp = httpx.get(f"{base}/v1/supernets/{sha}/files/optimizer.pt", headers={"X-API-Key": KEY})
    assert "file" in error_fields(resp, 422)
    assert "X-API-Key" in error_fields(httpx.get(f"{base}/v1/supernets/{sha}/files/weights.pt"), 401)


def test_a_stream_past_the_bound_is_cut_off_whatever_its_declared_length(tmp_path):
    """A server that declares no length (or a false one) is stopped once the bytes pass the bound."""
    manifest = json.dumps({"sha256": "a" * 64}).encode()

    def endless(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("manifest.json"):
            return httpx.Response(200, content=manifest)
        return httpx.Response(200, content=iter([b"x" * 1000] * 1000))  # chunked: no Content-Length

    settings = Settings(checkpoint_source="http://api.invalid", max_checkpoint_bytes=len(manifest) + 5000)
    with pytest.raises(CheckpointError, match=r"weights.pt of checkpoint a{16}… is more than"):
        fetch_checkpoint(tmp_path, "a" * 64, settings, transport=httpx.MockTransport(endless))
    assert left_behind(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [STAGING]
