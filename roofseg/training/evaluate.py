"""`roofseg evaluate`: loss, IoU, F1, precision and recall of a model on one split of a manifest."""

from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from roofseg.pipeline.check import shard_faults_named
from roofseg.pipeline.dataset import make_dataset, shards_of
from roofseg.terminal import terminal
from roofseg.training.losses import THRESHOLD
from roofseg.training.model import load_model


def pixel_counts(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(tp, fp, fn, tn) of boolean ``pred`` against boolean ``truth``, over ``valid`` pixels if given."""
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    tp = np.count_nonzero(pred & truth)
    fp = np.count_nonzero(pred) - tp
    fn = np.count_nonzero(truth) - tp
    return np.array([tp, fp, fn, pred.size - tp - fp - fn], np.int64)


def pixel_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """IoU, F1, precision and recall from pixel counts (1.0 where there is nothing to find)."""

    def ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    return {
        "iou": ratio(tp, tp + fp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
    }


def evaluate(
    model_path: str | os.PathLike,
    manifest: str | os.PathLike,
    split: str = "test",
    batch_size: int = 16,
    tile_size: int | None = None,
    progress: bool = False,
) -> dict:
    """Scores over every pixel of the split (counts summed first, not per-batch averages).

    Every tile the manifest lists is scored, or the read fails naming the shard at fault.
    """
    model = load_model(model_path)
    # a model with a contact output is scored on the roof; its loss takes the contact targets too
    contact = model.output_shape[-1] == 2
    ds = make_dataset(manifest, split, batch_size, tile_size, training=False, contact=contact)
    losses, weights = [], []
    counts = np.zeros(4, np.int64)

    tiles = shards_of(manifest, split).tiles
    total = -(-tiles // batch_size) if tiles else None
    with shard_faults_named(manifest, (split,)):
        for images, masks in tqdm(
            ds, total=total, desc=f"scoring {split}", unit="batch", disable=not progress, file=terminal()
        ):
            probs = model(images, training=False)
            losses.append(float(model.compiled_loss(masks, probs)))
            weights.append(int(images.shape[0]))
            counts += pixel_counts(probs.numpy()[..., 0] >= THRESHOLD, masks.numpy()[..., 0] > 0.5)
    tp, fp, fn, tn = (int(c) for c in counts)
    return {
        "split": split,
        "tiles": int(sum(weights)),
        "loss": float(np.average(losses, weights=weights)),
        **pixel_scores(tp, fp, fn, tn),
        "pixels": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }
