"""`archscore study` keeps a copy of each run in ARCHSCORE_DATA_DIR/studies, and the dashboard's routes
list those runs and serve their figures, never a file outside a record."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from archscore.estimators.analysis import records
from archscore.service.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def _study(tmp_path, monkeypatch, *extra: str):
    monkeypatch.setenv("ARCHSCORE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app,
        [
            "study",
            "complexity_bias",
            "--space",
            "nb201",
            "--sample",
            "12",
            "--seed",
            "3",
            "-e",
            "params,flops",
            "--bins",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "out"),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "data" / "studies"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_study_command_keeps_a_record_with_png_figures(tmp_path, monkeypatch, fmt):
    root = _study(tmp_path, monkeypatch, "--format", fmt)
    (record_id,) = records.record_ids(root)
    assert records.RECORD_ID.match(record_id) and "complexity_bias" in record_id
    kept = records.read_record(record_id, root)
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert kept["result"] == written["result"] and kept["record"]["id"] == record_id
    assert sorted(kept["figures"]) == ["complexity_bias_flops", "complexity_bias_params"]
    for name in kept["figures"]:  # PNG whatever --format wrote (the dashboard shows PNG)
        assert records.figure_path(record_id, name, root).read_bytes().startswith(PNG)
        assert (tmp_path / "out" / f"{name}.{fmt}").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".partial")]


def test_no_record_keeps_nothing(tmp_path, monkeypatch):
    root = _study(tmp_path, monkeypatch, "--no-record")
    assert records.record_ids(root) == []


def test_only_the_newest_records_are_kept(tmp_path):
    root = tmp_path / "studies"
    for i in range(records.KEEP + 3):
        (root / f"20260101T0000{i:02d}Z-variance-0000{i:04x}").mkdir(parents=True)
    (root / "not-a-record").mkdir()
    records.prune(root)
    kept = records.record_ids(root)
    assert len(kept) == records.KEEP and kept[-1] == "20260101T000003Z-variance-00000003"
    assert (root / "not-a-record").is_dir()  # only record folders are ever removed


def test_figure_paths_stay_inside_a_record(tmp_path):
    root = tmp_path / "studies"
    good = "20260101T000000Z-complexity_bias-0123abcd"
    (root / good).mkdir(parents=True)
    (root / good / "result.json").write_text(json.dumps({"figures": ["fig", "link"]}))
    (root / good / "fig.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(b"secret")
    (root / good / "link.png").symlink_to(tmp_path / "secret.png")
    (root / good / "unlisted.png").write_bytes(PNG)
    assert records.figure_path(good, "fig", root) == root / good / "fig.png"
    for record_id, name in [
        (good, "link"),
        (good, "unlisted"),
        (good, "../secret"),
        (good, "..%2Fsecret"),
        ("..", "secret"),
        ("../studies/" + good, "fig"),
        (good + "/..", "fig"),
        ("", "fig"),
    ]:
        assert records.figure_path(record_id, name, root) is None, (record_id, name)
    assert records.read_record("../secret", root) is None


def test_dashboard_routes_list_the_records_and_serve_their_figures(client, tmp_path, monkeypatch, settings_env):
    root = _study(tmp_path, monkeypatch)
    settings_env(data_dir=str(tmp_path / "data"))
    runs = client.get("/v1/dashboard/cli-studies").json()
    (run,) = runs
    assert run["study"] == "complexity_bias" and run["space"] == "nb201" and run["n"] == 12
    assert run["id"] == records.record_ids(root)[0] and run["truth"] == "cifar10_test"
    for name, url in run["figures"].items():
        figure = client.get(url)
        assert figure.status_code == 200 and figure.headers["content-type"] == "image/png"
        assert figure.content.startswith(PNG)
    assert client.get(f"/v1/dashboard/cli-studies/{run['id']}/figures/nope.png").status_code == 404
    assert client.get("/v1/dashboard/cli-studies/..%2F..%2Fetc/figures/passwd.png").status_code == 404
    assert client.get(f"/v1/dashboard/cli-studies/{run['id']}/figures/..%2Fresult.png").status_code == 404
    # on a server with keys the host's studies are the operator's: an admin key sees them, others do not
    settings_env(api_keys='["k-user"]', admin_keys='["k-admin"]', rate_limit_per_minute="0")
    assert client.get("/v1/dashboard/cli-studies", headers={"X-API-Key": "k-user"}).json() == []
    url = next(iter(run["figures"].values()))
    assert client.get(url, headers={"X-API-Key": "k-user"}).status_code == 404
    assert client.get(url, headers={"X-API-Key": "k-admin"}).status_code == 200
    assert len(client.get("/v1/dashboard/cli-studies", headers={"X-API-Key": "k-admin"}).json()) == 1
    assert client.get("/v1/dashboard/cli-studies").status_code == 401
