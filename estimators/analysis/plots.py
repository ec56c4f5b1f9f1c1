"""Figures for the studies: matplotlib on the headless Agg backend, imported only when drawing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt


def new_figure(width: float = 6.4, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.grid(alpha=0.3)
    return fig, ax


def outside_legend(ax, **kwargs) -> None:
    """The legend beside the plot area, never on the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, **kwargs)


FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 150


def save(fig, path, dpi: int = DEFAULT_DPI) -> None:
    """Write ``fig`` in the format its file name says (png, pdf or svg; a file object: png); tight
    bounding box, so no label is clipped."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
