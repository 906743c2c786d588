"""`roofseg evaluate-scene`: a prediction raster scored against a scene's labels."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from roofseg.raster.labels import VectorLabels, open_labels
from roofseg.raster.scene import Scene
from roofseg.training.evaluate import pixel_counts, pixel_scores
from roofseg.prediction.vectorize import polygons

ROWS = 256  # rows scored at a time


def match_objects(predicted: list, truth: list, iou_threshold: float = 0.5) -> int:
    """How many one-to-one pairs of (predicted, true) polygons overlap with IoU ≥ the threshold.

    Pairs are taken greedily, best IoU first, as in the SpaceNet building metric.
    """
    from shapely import STRtree

    if not predicted or not truth:
        return 0
    tree = STRtree(truth)
    pairs = []
    for i, p in enumerate(predicted):
        for j in tree.query(p):
            t = truth[j]
            union = p.union(t).area
            iou = p.intersection(t).area / union if union else 0.0
            if iou >= iou_threshold:
                pairs.append((iou, i, int(j)))
    used_p, used_t = set(), set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_p)


def evaluate_scene(prediction: str | os.PathLike, labels: str | os.PathLike, threshold: float = 0.5,
                   iou_threshold: float = 0.5, min_area: float = 0.0) -> dict:
    """Pixel IoU/F1/precision/recall over the prediction's valid pixels; with vector labels,
    also object precision/recall/F1 of predicted polygons at IoU ≥ ``iou_threshold``."""
    from shapely.geometry import shape
    from shapely.validation import make_valid

    with Scene(prediction, bands=(1,)) as grid, tempfile.TemporaryDirectory() as tmp:
        truth = open_labels(labels, grid)
        ds = grid.ds
        cut = threshold * 255 if ds.dtypes[0] == "uint8" else threshold
        profile = dict(driver="GTiff", width=ds.width, height=ds.height, count=1, dtype="uint8", crs=ds.crs,
                       transform=ds.transform, tiled=True, compress="deflate")
        binary = Path(tmp) / "binary.tif"
        counts = np.zeros(4, np.int64)
        with rasterio.open(binary, "w", **profile) as out:
            for row in range(0, ds.height, ROWS):
                h = min(ROWS, ds.height - row)
                window = Window(0, row, ds.width, h)
                valid = ds.read_masks(1, window=window) > 0
                pred = (ds.read(1, window=window) >= cut) & valid
                counts += pixel_counts(pred, truth.read(row, 0, h, ds.width).astype(bool), valid)
                out.write(pred.astype(np.uint8), 1, window=window)
        tp, fp, fn, tn = (int(c) for c in counts)
        result = {"prediction": str(prediction), "labels": str(labels), "threshold": threshold,
                  "pixel": {**pixel_scores(tp, fp, fn, tn), "counts": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}}
        if isinstance(truth, VectorLabels):
            predicted = [shape(g) for g, _ in polygons(binary, min_area)]
            left, bottom, right, top = rasterio.windows.bounds(Window(0, 0, ds.width, ds.height), ds.transform)
            from shapely.geometry import box

            footprint = box(left, bottom, right, top)
            true_polys = [make_valid(shape(g)) for g in truth.geoms]
            true_polys = [p for p in true_polys if p.intersects(footprint)]
            matched = match_objects(predicted, true_polys, iou_threshold)
            precision = matched / len(predicted) if predicted else 1.0
            recall = matched / len(true_polys) if true_polys else 1.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            result["objects"] = {"iou_threshold": iou_threshold, "predicted": len(predicted), "true": len(true_polys),
                                 "matched": matched, "precision": precision, "recall": recall, "f1": f1}
        truth.close()
    return result
