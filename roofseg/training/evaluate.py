"""`roofseg evaluate`: loss, IoU, F1, precision and recall of a model on one split of a manifest."""

from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from roofseg.contracts.card import ModelCard, read_card
from roofseg.contracts.manifest import read_manifest
from roofseg.pipeline.check import shard_faults_named
from roofseg.pipeline.dataset import make_dataset, shards_of
from roofseg.raster import colours
from roofseg.raster.scene import Scene
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


SAMPLE_STEP = 7  # every 7th pixel of each tile gives a scene's quantiles: enough, and a seventh of the memory


def scene_tables(model_path, manifest, split: str, batch_size: int, tile_size: int | None) -> dict[bytes, np.ndarray]:
    """Per scene of the split, the tables that match its tiles' colours to the model's reference:
    the very table ``predict --match-colours`` makes of that scene (from a sample of the scene's
    windows, read at the GSD its tiles were cut at), one table for a scene whoever asks. A job
    without a scene file (a folder of images) takes its tiles' quantiles instead."""
    card = read_card(model_path) or ModelCard()
    reference = np.asarray(card.colour_quantiles(model_path), np.float32)
    size = tile_size or card.tile_size
    tiled = read_manifest(manifest)
    in_split = {j.id for j in tiled.jobs if j.tiles_in(split)}
    tables: dict[bytes, np.ndarray] = {}
    for job in tiled.jobs:
        if job.id not in in_split or not job.image:
            continue
        params = tiled.params
        # at the GSD the tiles were cut at: Scene reads the scene as it is where that is its own
        with Scene(job.image, job.bands or None, job.gsd_m, params.get("pixel_size"), params.get("nodata")) as scene:
            table = colours.scene_table(scene.read, scene.height, scene.width, size, reference)
        if table is not None:
            tables[job.id.encode()] = table
    if len(tables) < len(in_split):  # folder jobs: their tiles' own quantiles
        tables = {**_tile_tables(manifest, split, batch_size, tile_size, reference), **tables}
    return tables


def _tile_tables(manifest, split: str, batch_size: int, tile_size: int | None, reference) -> dict[bytes, np.ndarray]:
    pixels: dict[bytes, list[np.ndarray]] = {}
    with shard_faults_named(manifest, (split,)):
        for images, _, meta in make_dataset(manifest, split, batch_size, tile_size, training=False, with_meta=True):
            for image, scene in zip(np.round(images.numpy() * 255).astype(np.uint8), meta["scene_id"].numpy()):
                sample = image.reshape(-1, image.shape[-1])[::SAMPLE_STEP]
                pixels.setdefault(scene, []).append(sample[sample.any(axis=-1)])
    return {
        scene: colours.matching_table(colours.band_quantiles(np.concatenate(chunks)), reference)
        for scene, chunks in pixels.items()
        if sum(len(c) for c in chunks) >= colours.MIN_PIXELS
    }


def matched(images: np.ndarray, scenes: np.ndarray, tables: dict[bytes, np.ndarray]) -> np.ndarray:
    """A batch (float in [0, 1]) with each tile passed through its scene's tables."""
    out = np.round(images * 255).astype(np.uint8)
    for k, scene in enumerate(scenes):
        if scene in tables:
            out[k] = colours.apply_table(out[k], tables[scene], out[k].any(axis=-1))
    return out.astype(np.float32) / 255


def evaluate(
    model_path: str | os.PathLike,
    manifest: str | os.PathLike,
    split: str = "test",
    batch_size: int = 16,
    tile_size: int | None = None,
    progress: bool = False,
    match_colours: bool = False,
) -> dict:
    """Scores over every pixel of the split (counts summed first, not per-batch averages).

    Every tile the manifest lists is scored, or the read fails naming the shard at fault.
    ``match_colours``: each scene's tiles matched to the card's colour reference first, through
    the table ``predict --match-colours`` makes of that scene (see :func:`scene_tables`).
    """
    model = load_model(model_path)
    # a model with a contact output is scored on the roof; its loss takes the contact targets too
    contact = model.output_shape[-1] == 2
    tables = scene_tables(model_path, manifest, split, batch_size, tile_size) if match_colours else None
    ds = make_dataset(manifest, split, batch_size, tile_size, training=False, contact=contact, with_meta=True)
    losses, weights = [], []
    counts = np.zeros(4, np.int64)

    tiles = shards_of(manifest, split).tiles
    total = -(-tiles // batch_size) if tiles else None
    with shard_faults_named(manifest, (split,)):
        for images, masks, meta in tqdm(
            ds, total=total, desc=f"scoring {split}", unit="batch", disable=not progress, file=terminal()
        ):
            if tables is not None:
                images = matched(images.numpy(), meta["scene_id"].numpy(), tables)
            probs = model(images, training=False)
            losses.append(float(model.compiled_loss(masks, probs)))
            weights.append(int(images.shape[0]))
            masks = masks.numpy()
            # a review's tiles carry a known mask last (one channel more than the model's output)
            known = masks[..., -1] > 0.5 if masks.shape[-1] > probs.shape[-1] else None
            counts += pixel_counts(probs.numpy()[..., 0] >= THRESHOLD, masks[..., 0] > 0.5, known)
    tp, fp, fn, tn = (int(c) for c in counts)
    return {
        "split": split,
        "tiles": int(sum(weights)),
        "loss": float(np.average(losses, weights=weights)),
        **pixel_scores(tp, fp, fn, tn),
        "pixels": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }
