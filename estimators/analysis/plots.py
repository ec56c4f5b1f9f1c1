"""Figures for the studies: matplotlib on the headless Agg backend, imported only when drawing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


def new_figure(width: float = 6.4, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.grid(alpha=0.3)
    return fig, ax


def save(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
