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


@pytest.fixture(autouse=True)
def _data_folder(tmp_path, monkeypatch):
    """`archscore study` keeps a copy of each run in ARCHSCORE_DATA_DIR/studies: a test's own folder."""
    monkeypatch.setenv("ARCHSCORE_DATA_DIR", str(tmp_path / "data"))


def _study(tmp_path, *extra) -> tuple[object, dict]:
    out = tmp_path / "study"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "complexity_bias",
            "--space",
            "nb201",
            "--sample",
            "40",
            "--seed",
            "0",
            "-e",
            "params,flops",
            "--bins",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            *extra,
        ],
    )
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
        result = runner.invoke(
            app, ["study", "complexity_bias", "--sample", "20", "-e", "params", "--out", str(tmp_path / "x"), *extra]
        )
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


def _published_figures(study: str, **options) -> tuple[dict, dict]:
    from helpers.data import published_context

    from archscore.estimators.analysis import get_study

    ctx = published_context("nb201", n=400)
    ctx.options = {"bins": 5, "top": 5, **options}
    numbers = get_study(study).run(ctx)
    return numbers, get_study(study).figures(numbers)


def _misplaced_text(fig) -> list[str]:
    """What of ``fig`` as drawn lies outside the figure, and horizontal tick labels on top of each other."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    tight, (width, height) = fig.get_tightbbox(renderer), fig.get_size_inches()  # inches
    if tight.x0 < -0.01 or tight.y0 < -0.01 or tight.x1 > width + 0.01 or tight.y1 > height + 0.01:
        found.append(f"outside the {width:.1f}x{height:.1f} in figure: {tight}")
    for ax in fig.axes:
        low, high = sorted(ax.get_xlim())
        labels = [
            t
            for t in ax.get_xticklabels()
            if t.get_text() and t.get_rotation() == 0 and low <= t.get_position()[0] <= high
        ]
        boxes = [t.get_window_extent(renderer) for t in labels]
        found += [
            f"{a.get_text()!r} on {b.get_text()!r}"
            for (a, ba), (b, bb) in zip(zip(labels, boxes), zip(labels[1:], boxes[1:]))
            if ba.overlaps(bb)
        ]
    return found


@pytest.mark.parametrize("study", ["complexity_bias", "operation_bias", "architecture_bias"])
def test_no_text_is_clipped_or_overlaps(study):
    import matplotlib.pyplot as plt

    _, figures = _published_figures(study, bins=8)
    if study == "operation_bias":
        assert "operation_swaps" in figures  # its long rotated labels and y label fit too
    for name, fig in figures.items():
        assert _misplaced_text(fig) == [], name
        plt.close(fig)


def test_complexity_figure_labels_bins_by_range_and_draws_the_intervals():
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    numbers, figures = _published_figures("complexity_bias")
    assert numbers["interval"]["resamples"] == 1000 and numbers["interval"]["level"] == 0.95
    for measure, table in numbers["by"].items():
        fig = figures[f"complexity_bias_{measure}"]
        ax = fig.axes[0]
        rows = table["bins"]
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == [bin_label(r, measure) for r in rows]
        for row, tick in zip(rows, ticks):
            low, high = (f"{v / 1e6:.3g}" for v in row["range"])
            assert tick.startswith(f"{low}–{high}\n") and f"(n={row['n']})" in tick and row["n"] == 80
            assert row["label"] == tick.replace("\n", " ")  # and in result.json
        assert "95% bootstrap interval (1000 resamples)" in ax.get_title()
        bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
        assert set(bars) == set(numbers["global"])
        for estimator, bar in bars.items():
            (segments,) = bar.lines[2]  # one vertical segment per bin: the interval
            drawn = [sorted((p[0][1], p[1][1])) for p in segments.get_segments()]
            cis = [r["kendall_tau_ci"][estimator] for r in rows]
            assert len(drawn) == len(rows) and all(ci is not None for ci in cis)
            assert [v for pair in drawn for v in pair] == pytest.approx([v for ci in cis for v in ci])
            if estimator != "oracle":
                assert all(high - low > 0.01 for low, high in drawn)  # a real interval, not a point
        plt.close(fig)
