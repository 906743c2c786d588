"""`roofseg evaluate-scene`: a prediction raster scored against a scene's labels."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
from rasterio.windows import Window
from shapely import STRtree
from shapely.geometry import Polygon, shape
from shapely.ops import unary_union
from tqdm import tqdm

from roofseg.contracts.card import MIN_AREA, PostProcess
from roofseg.contracts.tags import read_tags
from roofseg.prediction.vector.geometry import valid_polygonal
from roofseg.prediction.vector.instances import contact_band
from roofseg.prediction.vector.vectorize import binary_raster, buildings, roof_cut
from roofseg.raster.ground import GroundArea
from roofseg.raster.labels import VectorLabels, open_labels
from roofseg.raster.scene import Scene
from roofseg.raster.windows import corners, covering_window
from roofseg.terminal import terminal
from roofseg.training.evaluate import pixel_counts, pixel_scores

ROWS = 256  # rows scored at a time
#: true footprints (clipped to the raster's extent and valid pixels) smaller than this, in m², are not counted
TRUE_MIN_AREA = 2.0


def match_objects(predicted: list, truth: list, iou_threshold: float = 0.5) -> int:
    """How many one-to-one pairs of (predicted, true) polygons overlap with IoU ≥ the threshold.

    Pairs are taken greedily, best IoU first, as in the SpaceNet building metric.
    """

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


def valid_part(geom, ds: rasterio.DatasetReader, extent):
    """The part of ``geom`` (a shapely polygon in ``ds``'s CRS) inside the raster and off its nodata."""

    geom = valid_polygonal(geom.intersection(extent))
    if geom.is_empty:
        return geom
    window = covering_window(geom.bounds, ds.transform, ds.height, ds.width)
    if window is None:
        return type(geom)()
    valid = ds.read_masks(1, window=window)
    if valid.all():
        return geom
    if not valid.any():
        return type(geom)()
    wt = ds.window_transform(window)
    cover = unary_union(
        [shape(g) for g, v in rasterio.features.shapes((valid > 0).astype(np.uint8), transform=wt) if v == 1]
    )
    return valid_polygonal(geom.intersection(cover))


def precision_recall(
    predicted: list, confidences: list[float], truth: list, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, precision, recall) after each predicted polygon, most confident first: each is
    a hit when it overlaps a true polygon not yet taken with IoU ≥ the threshold (the best one),
    as building-detection benchmarks (COCO, SpaceNet) rank detections."""

    order = np.argsort(-np.asarray(confidences, float), kind="stable")
    tree = STRtree(truth) if truth else None
    taken: set[int] = set()
    hits = np.zeros(len(order), bool)
    for k, i in enumerate(order):
        p = predicted[i]
        best, best_iou = None, iou_threshold
        for j in tree.query(p) if tree is not None else []:
            j = int(j)
            if j in taken:
                continue
            union = p.union(truth[j]).area
            iou = p.intersection(truth[j]).area / union if union else 0.0
            if iou >= best_iou:
                best, best_iou = j, iou
        if best is not None:
            taken.add(best)
            hits[k] = True
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(order) + 1) if len(order) else np.zeros(0)
    recall = tp / len(truth) if truth else np.ones(len(order))
    return np.asarray(confidences, float)[order], precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """The area under the precision–recall curve, precision made monotone (all-point interpolation,
    as PASCAL VOC from 2010 and COCO)."""
    if not len(precision):
        return 0.0
    p = np.concatenate([[0.0], precision, [0.0]])
    r = np.concatenate([[0.0], recall, [recall[-1]]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def true_polygons(footprints: list, ds: rasterio.DatasetReader, min_area: float = 0.0) -> list:
    """The true buildings (shapely polygons in ``ds``'s CRS) as objects are counted: clipped to the
    raster ``ds``'s extent and valid pixels, pieces under ``min_area`` m² left out."""

    extent = Polygon(corners(ds.transform, ds.height, ds.width))
    area_of = GroundArea(ds.crs)
    clipped = [valid_part(valid_polygonal(g), ds, extent) for g in footprints]
    return [p for p in clipped if not p.is_empty and area_of(p) >= min_area]


def object_scores(
    predicted: list,
    footprints: list[dict],
    ds: rasterio.DatasetReader,
    min_area: float = 0.0,
    iou_threshold: float = 0.5,
    confidences: list[float] | None = None,
) -> dict:
    """Object precision, recall and F1 of ``predicted`` polygons (shapely, in ``ds``'s CRS) against
    true ``footprints`` (GeoJSON-like, same CRS), matched one to one at IoU ≥ ``iou_threshold``.

    The footprints are clipped to the raster ``ds``'s extent and valid pixels, and pieces under
    ``min_area`` m² left out: objects are counted where the pixels are.
    """

    true_polys = true_polygons([shape(g) for g in footprints], ds, min_area)
    matched = match_objects(predicted, true_polys, iou_threshold)
    precision = matched / len(predicted) if predicted else 1.0
    recall = matched / len(true_polys) if true_polys else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    scores = {
        "iou_threshold": iou_threshold,
        "predicted": len(predicted),
        "true": len(true_polys),
        "matched": matched,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    if confidences is not None:
        ranked, p, r = precision_recall(predicted, confidences, true_polys, iou_threshold)
        scores["average_precision"] = average_precision(p, r)
        scores["curve"] = {"confidence": ranked.tolist(), "precision": p.tolist(), "recall": r.tolist()}
    return scores


def evaluate_scene(
    prediction: str | os.PathLike,
    labels: str | os.PathLike,
    threshold: float | None = None,
    iou_threshold: float = 0.5,
    min_area: float | None = None,
    labels_crs: str | None = None,
    separate: bool = True,
    progress: bool = False,
    regularize: bool | None = None,
    defaults: PostProcess = PostProcess(0.5, None, MIN_AREA, False),
) -> dict:
    """Pixel IoU/F1/precision/recall over the prediction's valid pixels; with vector labels,
    also object precision/recall/F1 of predicted polygons at IoU ≥ ``iou_threshold``: the
    polygons ``roofseg predict --vector`` makes (:func:`~roofseg.prediction.vector.vectorize.buildings`),
    touching buildings split along the prediction's contact band when it has one (unless
    ``separate`` is False).

    The threshold, smallest area, outlines and seeding are those the raster was made with (its
    tags, where ``roofseg predict --vector`` wrote footprints from it), unless given here; else
    ``defaults``. Objects are counted where the pixels are: true footprints are clipped to the
    raster's extent and to its valid pixels, and pieces under :data:`TRUE_MIN_AREA` m² left out.
    """
    with rasterio.open(prediction) as ds:
        tags = read_tags(ds)
    made = tags.postprocess if tags else None
    base = made or defaults
    post = PostProcess(
        base.threshold if threshold is None else threshold,
        made.contact_cut if made is not None and threshold is None else None,
        base.min_area if min_area is None else min_area,
        base.regularize if regularize is None else regularize,
        made.seed_depth if made is not None and threshold is None else None,
    )
    with Scene(prediction, bands=(1,)) as grid, tempfile.TemporaryDirectory() as tmp:
        ds = grid.ds
        cut = roof_cut(ds, post.threshold)
        truth = open_labels(labels, grid, crs=labels_crs)
        counts = np.zeros(4, np.int64)
        for row in tqdm(range(0, ds.height, ROWS), desc="scoring", unit="band", disable=not progress, file=terminal()):
            h = min(ROWS, ds.height - row)
            window = Window(0, row, ds.width, h)
            valid = ds.read_masks(1, window=window) > 0
            pred = (ds.read(1, window=window) >= cut) & valid
            counts += pixel_counts(pred, truth.read(row, 0, h, ds.width).astype(bool), valid)
        tp, fp, fn, tn = (int(c) for c in counts)
        result = {
            "prediction": str(prediction),
            "labels": str(labels),
            "threshold": post.threshold,
            "postprocess": asdict(post),
            "pixel": {**pixel_scores(tp, fp, fn, tn), "counts": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}},
        }
        if isinstance(truth, VectorLabels):
            binary = binary_raster(prediction, post.threshold, Path(tmp) / "binary.tif")
            found = list(buildings(prediction, binary, post, separate))
            predicted = [shape(b.geometry) for b in found]
            scores = object_scores(
                predicted, truth.geoms, ds, TRUE_MIN_AREA, iou_threshold, [b.confidence for b in found]
            )
            result["objects"] = {**scores, "separated": separate and contact_band(str(prediction)) is not None}
        truth.close()
    return result
