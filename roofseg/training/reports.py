"""The run's pictures: learning curves from the CSV log, and image / truth / prediction samples."""

from __future__ import annotations

import csv
import os

import numpy as np
from matplotlib.ticker import MaxNLocator

from roofseg.figures import pyplot, save_png


def read_history(csv_path: str | os.PathLike) -> dict[str, list[float]]:
    """Columns of Keras' CSVLogger file as lists of floats, keyed by name. A column Keras filled
    with ``NA`` (its validation columns, in a run without a validation split) is left out."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [k for k in (rows[0].keys() if rows else []) if all(r[k] not in (None, "", "NA") for r in rows)]
    return {k: [float(r[k]) for r in rows] for k in names}


def plot_curves(history: dict[str, list[float]], out_png: str | os.PathLike) -> None:
    """Training and validation loss and IoU per epoch, side by side."""
    plt = pyplot()

    epochs = [int(e) + 1 for e in history.get("epoch", range(len(history.get("loss", []))))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "iou_score", "IoU")):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            if prefix + key in history:
                ax.plot(
                    epochs, history[prefix + key], style, label=("validation " if prefix else "training ") + title, ms=3
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    save_png(fig, out_png, dpi=90)


def plot_samples(images: np.ndarray, truths: np.ndarray, probs: np.ndarray, out_png: str | os.PathLike) -> None:
    """One row per tile: image, ground truth, predicted probability."""
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for k in range(n):
        for ax, data, title, kw in (
            (axes[k, 0], images[k], "image", {}),
            (axes[k, 1], truths[k][..., 0], "ground truth", {"cmap": "gray", "vmin": 0, "vmax": 1}),
            (axes[k, 2], probs[k][..., 0], "prediction", {"cmap": "gray", "vmin": 0, "vmax": 1}),
        ):
            ax.imshow(data, **kw)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    save_png(fig, out_png)
