"""Study figures a researcher would publish: PNG, PDF or SVG at a chosen resolution, complexity bins
labelled by their range and size, bootstrap confidence intervals of tau in the numbers and the figure."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from archscore.estimators.analysis.complexity_bias import bin_label
from archscore.estimators.ranking import kendall_tau, kendall_tau_ci
from archscore.service.cli import app

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


def _study(tmp_path, *extra) -> tuple[object, dict]:
    out = tmp_path / "study"
    result = CliRunner().invoke(app, ["study", "complexity_bias", "--space", "nb201", "--sample", "40", "--seed", "0",
                                      "-e", "params,flops", "--bins", "2", "--device", "cpu", "--out", str(out),
                                      *extra])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "result.json").read_text())


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_figures_in_each_format(tmp_path, fmt):
    out, result = _study(tmp_path, "--format", fmt)
    for name in result["figures"]:
        assert (out / f"{name}.{fmt}").read_bytes().startswith(MAGIC[fmt])


def test_dpi_sets_the_resolution(tmp_path):
    from PIL import Image

    sizes = []
    for dpi in ("80", "160"):
        out, result = _study(tmp_path / dpi, "--dpi", dpi)
        sizes.append(Image.open(out / f"{result['figures'][0]}.png").size)
    assert sizes[1][0] == pytest.approx(2 * sizes[0][0], rel=0.05)


def test_bad_format_or_dpi_exits_2(tmp_path):
    runner = CliRunner()
    for extra, needle in ((["--format", "jpg"], "--format"), (["--dpi", "5"], "--dpi")):
        result = runner.invoke(app, ["study", "complexity_bias", "--sample", "20", "-e", "params", "--out",
                                     str(tmp_path / "x"), *extra])
        assert result.exit_code == 2 and needle in result.output


def test_bins_carry_their_range_their_size_and_a_bootstrap_interval(tmp_path):
    _, result = _study(tmp_path)
    for measure, table in result["result"]["by"].items():
        for row in table["bins"]:
            label = bin_label(row, measure)
            low, high = (f"{v / 1e6:.3g}" for v in row["range"])
            assert f"{low}–{high}" in label and f"(n={row['n']})" in label
            for estimator, tau in row["kendall_tau"].items():
                ci = row["kendall_tau_ci"][estimator]
                if tau is not None and ci is not None:
                    assert ci[0] <= tau <= ci[1]


def test_kendall_tau_ci_is_reproducible_and_narrows_with_more_data():
    import numpy as np

    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    small, large = kendall_tau_ci(x[:30], y[:30]), kendall_tau_ci(x, y)
    assert small == kendall_tau_ci(x[:30], y[:30])  # seeded
    assert small[0] <= kendall_tau(x[:30], y[:30]) <= small[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert kendall_tau_ci([1.0, 2.0], [1.0, 2.0]) is None
