"""Matplotlib without a display, and figures saved atomically as PNG."""

from __future__ import annotations

import os

import matplotlib
import matplotlib.pyplot as plt

from roofseg.atomic import atomic_output


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""

    matplotlib.use("Agg")

    return plt


def save_png(fig, out_png: str | os.PathLike, dpi: int = 80) -> None:
    """Write ``fig`` to ``out_png`` under a temporary name, then close it."""
    with atomic_output(out_png) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
