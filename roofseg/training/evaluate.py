"""`roofseg evaluate`: loss, IoU, F1, precision and recall of a model on one split of a manifest."""

from __future__ import annotations

import os

import numpy as np

from roofseg.pipeline.dataset import make_dataset
from roofseg.training.losses import THRESHOLD
from roofseg.training.model import load_model


def pixel_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """IoU, F1, precision and recall from pixel counts (1.0 where there is nothing to find)."""
    def ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    return {"iou": ratio(tp, tp + fp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn)}


def evaluate(model_path: str | os.PathLike, manifest: str | os.PathLike, split: str = "test", batch_size: int = 16,
             tile_size: int | None = None) -> dict:
    """Scores over every pixel of the split (counts summed first, not per-batch averages)."""
    model = load_model(model_path)
    ds = make_dataset(manifest, split, batch_size, tile_size, training=False)
    losses, weights = [], []
    tp = fp = fn = tn = 0
    for images, masks in ds:
        probs = model(images, training=False)
        losses.append(float(model.compiled_loss(masks, probs)))
        weights.append(int(images.shape[0]))
        pred = probs.numpy() >= THRESHOLD
        truth = masks.numpy() > 0.5
        tp += int(np.count_nonzero(pred & truth))
        fp += int(np.count_nonzero(pred & ~truth))
        fn += int(np.count_nonzero(~pred & truth))
        tn += int(np.count_nonzero(~pred & ~truth))
    return {"split": split, "tiles": int(sum(weights)), "loss": float(np.average(losses, weights=weights)),
            **pixel_scores(tp, fp, fn, tn), "pixels": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}
