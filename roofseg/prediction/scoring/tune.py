"""`roofseg tune`: choose the post-processing of a model on labelled scenes of a new area.

Each scene is predicted once; the probabilities are kept and every combination of threshold,
contact cut, smallest area and outline is scored on them against the scene's labels. The best
combination (pooled over the scenes, by object F1 at IoU ≥ 0.5 or by pixel IoU) goes into a copy
of the model's card, which ``roofseg predict`` takes as its defaults.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window
from shapely.geometry import shape
from tqdm import tqdm

from roofseg.atomic import temp_path
from roofseg.contracts.card import ModelCard, PostProcess, Tuning, read_card, write_card
from roofseg.errors import RoofsegError
from roofseg.prediction.options import card_options
from roofseg.prediction.rasters.engines import load_predictor
from roofseg.prediction.rasters.inference import Inference
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.prediction.scoring.score import match_objects, true_polygons
from roofseg.prediction.vector.instances import ContactBand, contact_band
from roofseg.prediction.vector.vectorize import polygons, probability_band
from roofseg.raster.labels import VectorLabels, open_labels
from roofseg.raster.scene import Scene
from roofseg.terminal import terminal
from roofseg.tiler.inputs import scene_inputs

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.81, 0.05))
CONTACT_CUTS = (0.3, 0.4, 0.5, 0.6, 0.7)
MIN_AREAS = (0.0, 2.0, 5.0, 10.0, 20.0)
ROWS = 512


@dataclass
class Counts:
    """What one post-processing gives on one scene, summed over scenes for the pooled score."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    matched: int = 0
    predicted: int = 0
    true: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)
        return self

    @property
    def pixel_iou(self) -> float:
        total = self.tp + self.fp + self.fn
        return self.tp / total if total else 1.0

    @property
    def object_f1(self) -> float:
        precision = self.matched / self.predicted if self.predicted else 1.0
        recall = self.matched / self.true if self.true else 1.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def score(self, objective: str) -> float:
        return self.object_f1 if objective == "object-f1" else self.pixel_iou


def pixel_counts_by_threshold(prediction: str, labels, thresholds: Sequence[float]) -> dict[float, Counts]:
    """Pixel tp/fp/fn of the prediction's roof band against ``labels`` at every threshold, in one
    read: histograms of the probabilities over roof and over ground pixels."""

    scale = probability_band(prediction).scale
    roof_hist, ground_hist = np.zeros(1001, np.int64), np.zeros(1001, np.int64)
    with rasterio.open(prediction) as ds:
        for row in range(0, ds.height, ROWS):
            h = min(ROWS, ds.height - row)
            window = Window(0, row, ds.width, h)
            valid = ds.read_masks(1, window=window) > 0
            bins = np.clip(np.rint(ds.read(1, window=window, out_dtype="float64") / scale * 1000), 0, 1000).astype(
                np.int64
            )
            truth = labels.read(row, 0, h, ds.width).astype(bool)
            roof_hist += np.bincount(bins[valid & truth], minlength=1001)
            ground_hist += np.bincount(bins[valid & ~truth], minlength=1001)
    out = {}
    for t in thresholds:
        k = int(round(t * 1000))
        tp, fp = int(roof_hist[k:].sum()), int(ground_hist[k:].sum())
        out[t] = Counts(tp=tp, fp=fp, fn=int(roof_hist.sum()) - tp)
    return out


def true_buildings(labels, ds, min_area: float) -> list:
    """The true buildings of a scene as shapely polygons in the prediction's CRS, counted as
    evaluate-scene counts them (:func:`roofseg.prediction.scoring.score.true_polygons`): footprints, or a
    mask's 8-connected regions."""

    if isinstance(labels, VectorLabels):
        geoms = [shape(g) for g in labels.geoms]
    else:
        mask = labels.read(0, 0, ds.height, ds.width)
        geoms = [shape(g) for g, v in shapes(mask, mask=mask > 0, connectivity=8, transform=ds.transform) if v == 1]
    return true_polygons(geoms, ds, min_area)


def object_counts(
    prediction: str, truth: list, settings: Sequence[PostProcess], iou: float = 0.5
) -> dict[PostProcess, Counts]:
    """Matched, predicted and true building counts of each post-processing on one scene. The
    polygons are traced once per threshold, contact cut and outline; the smallest area is a filter."""

    out: dict[PostProcess, Counts] = {}
    band = contact_band(prediction)
    scale = probability_band(prediction).scale
    with rasterio.open(prediction) as ds, tempfile.TemporaryDirectory() as tmp:
        profile = dict(
            driver="GTiff",
            width=ds.width,
            height=ds.height,
            count=1,
            dtype="uint8",
            crs=ds.crs,
            transform=ds.transform,
            tiled=True,
            compress="deflate",
        )
        traced: dict[tuple, list] = {}
        for s in settings:
            key = (s.threshold, s.contact_cut, s.regularize)
            if key not in traced:
                binary = Path(tmp) / f"b{s.threshold}.tif"
                if not binary.exists():
                    with rasterio.open(binary, "w", **profile) as dst:
                        for row in range(0, ds.height, ROWS):
                            window = Window(0, row, ds.width, min(ROWS, ds.height - row))
                            roof = (ds.read(1, window=window) >= s.threshold * scale) & (
                                ds.read_masks(1, window=window) > 0
                            )
                            dst.write(roof.astype(np.uint8), 1, window=window)
                contact = (
                    ContactBand(band.path, band.band, s.contact_cut * scale)
                    if band is not None and s.contact_cut is not None
                    else None
                )
                traced[key] = [(shape(b.geometry), b.area) for b in polygons(binary, 0.0, s.regularize, contact)]
            kept = [p for p, area in traced[key] if area >= s.min_area]
            out[s] = Counts(matched=match_objects(kept, truth, iou), predicted=len(kept), true=len(truth))
    return out


def candidates(contact: bool, objective: str) -> list[PostProcess]:
    """Every post-processing the search tries (pixel IoU depends on the threshold alone)."""
    if objective == "pixel-iou":
        return [PostProcess(t, 0.5 if contact else None) for t in THRESHOLDS]
    cuts = CONTACT_CUTS if contact else (None,)
    return [PostProcess(t, c, a, r) for t, c, a, r in itertools.product(THRESHOLDS, cuts, MIN_AREAS, (False, True))]


def tune(
    model: str | os.PathLike,
    entries: Sequence[str],
    out: str | os.PathLike,
    labels: Sequence[str] = (),
    objective: str = "object-f1",
    options=None,
    progress: bool = True,
    labels_crs: str | None = None,
    work_dir: str | os.PathLike | None = None,
    infer=None,
) -> dict:
    """Choose the post-processing of ``model`` on the labelled scenes ``entries`` (named as ``tile``
    names them) and write ``out``: ``model`` with the choice in its card. Returns the table: per
    scene and pooled, the defaults' and the chosen scores. ``infer``: what predicts (an
    :class:`~roofseg.prediction.rasters.inference.Inference`, or a model or callable as it takes) instead
    of ``model`` loaded with TensorFlow."""

    if objective not in ("object-f1", "pixel-iou"):
        raise RoofsegError(None, f"unknown objective {objective!r} (object-f1, pixel-iou)")
    model, out = os.fspath(model), Path(out)
    if out.exists() and os.path.samefile(out, model):
        raise RoofsegError(out, "is the input model; tune writes a copy (choose another output)")
    scenes = scene_inputs(entries, labels)
    card = read_card(model) or ModelCard()
    options = options or card_options(card)
    if infer is None:
        infer = load_predictor(model, options.engine, options.precision)
    if not isinstance(infer, Inference):
        infer = Inference(infer, options.devices, options.tta)
    contact = infer.channels > 1
    settings = candidates(contact, objective)
    default = PostProcess(0.5, 0.5 if contact else None, 5.0, False)
    if default not in settings:
        settings.append(default)
    per_scene: dict[str, dict[PostProcess, Counts]] = {}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for scene in tqdm(scenes, desc="tuning: predicting", unit="scene", disable=not progress, file=terminal()):
            cached = Path(tmp) / f"{scene.id}.tif"
            predict_scene(infer, scene.image, cached, options, progress=False)
            with Scene(cached, bands=(1,)) as grid:
                truth_labels = open_labels(scene.labels, grid, crs=labels_crs)
                try:
                    pixels = pixel_counts_by_threshold(
                        str(cached), truth_labels, sorted({s.threshold for s in settings})
                    )
                    counts = {s: Counts(**asdict(pixels[s.threshold])) for s in settings}
                    if objective == "object-f1":
                        truth = true_buildings(truth_labels, grid.ds, min(MIN_AREAS[1:]))
                        for s, c in object_counts(str(cached), truth, settings).items():
                            counts[s].matched, counts[s].predicted, counts[s].true = c.matched, c.predicted, c.true
                finally:
                    truth_labels.close()
            per_scene[scene.id] = counts
    pooled = {s: Counts() for s in settings}
    for counts in per_scene.values():
        for s, c in counts.items():
            pooled[s] += c

    # ties go to the setting closest to the defaults: the search must earn a change
    def preference(s: PostProcess) -> tuple:
        return (
            round(pooled[s].score(objective), 6),
            s == default,
            -abs(s.threshold - 0.5),
            -abs((s.contact_cut or 0.5) - 0.5),
            s.min_area == default.min_area,
            not s.regularize,
        )

    best = max(settings, key=preference)
    table = {
        "objective": objective,
        "default": asdict(default),
        "chosen": asdict(best),
        "scenes": {sid: {"default": _scores(c[default]), "chosen": _scores(c[best])} for sid, c in per_scene.items()},
        "pooled": {"default": _scores(pooled[default]), "chosen": _scores(pooled[best])},
    }
    tmp_out = temp_path(out, keep_suffix=True)
    try:
        shutil.copyfile(model, tmp_out)
        write_card(
            tmp_out, card.with_tuning(Tuning(best, objective, table["pooled"]["chosen"], tuple(s.id for s in scenes)))
        )
        os.replace(tmp_out, out)
    finally:
        tmp_out.unlink(missing_ok=True)
    return table


def _scores(c: Counts) -> dict:
    return {
        "pixel_iou": c.pixel_iou,
        "object_f1": c.object_f1,
        "matched": c.matched,
        "predicted": c.predicted,
        "true": c.true,
    }
