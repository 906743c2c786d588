"""`roofseg tune`: choose the post-processing of a model on labelled scenes of a new area.

Each scene is predicted as predict reads it, and a scene coarser than the model's own GSD once more
at that GSD (:func:`reading_caps`); the probabilities are kept and post-processings are scored on them
against the scene's labels, with the very function that makes ``roofseg predict``'s footprints
(:func:`roofseg.prediction.vector.vectorize.buildings`), so the scores are those of what predict
writes with the choice. The search goes in two steps: the threshold and how touching buildings are
seeded (a contact cut, or a depth of peaks; at the default smallest area and outlines), then the
smallest area and the outlines at that choice. A smallest area above the default is tried only
where no more than :data:`SMALL_SHARE` of the labelled buildings are smaller: a larger one wins on
the labelled scenes by dropping what the model misses there, and then drops the small houses of the
next block (Dhaka block0, median 52 m², chose 20 m²; on block1, median 11 m², that alone took object
F1 from 0.52 to 0.24). The smallest area also sets how small a building's core may be when touching
buildings are split, so each is traced anew. The best (pooled over the scenes, by object F1 at
IoU ≥ 0.5 or by pixel IoU) goes into a copy of the model's card, with the reading it was found at
(``max_gsd``), which ``roofseg predict`` takes as its defaults.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window
from shapely.geometry import shape
from tqdm import tqdm

from roofseg.atomic import ensure_writable_dir, remove_stale_partials
from roofseg.contracts.card import MIN_AREA, ModelCard, PostProcess, Tuning, read_card, write_model
from roofseg.contracts.provenance import TuneScores
from roofseg.contracts.sizes import capped_range
from roofseg.errors import RoofsegError, RoofsegWarning
from roofseg.prediction.rasters.engines import load_predictor
from roofseg.prediction.rasters.inference import Inference
from roofseg.prediction.rasters.predict import predict_scene, scene_gsd
from roofseg.prediction.request import PredictRequest, colour_default, resolve
from roofseg.prediction.scoring.score import TRUE_MIN_AREA, match_objects, true_polygons
from roofseg.prediction.vector.vectorize import binary_raster, buildings, roof_cut
from roofseg.raster.ground import GroundArea
from roofseg.raster.labels import VectorLabels, open_labels
from roofseg.raster.scene import Scene
from roofseg.terminal import terminal
from roofseg.tiler.heldout import held_out_scenes
from roofseg.tiler.inputs import scene_inputs

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.2, 0.81, 0.05))
CONTACT_CUTS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: the depths of the peaks that seed buildings (see roofseg.prediction.vector.instances), tried beside the cuts
SEED_DEPTHS = (0.03, 0.06, 0.1, 0.15, 0.2, 0.3)
MIN_AREAS = tuple(sorted({0.0, 2.0, MIN_AREA, 10.0, 20.0}))
#: the share of the labelled buildings a smallest area above the default may leave out, at most
SMALL_SHARE = 0.05
ROWS = 512
OBJECTIVES = ("object-f1", "pixel-iou")


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
    read, each pixel compared with each threshold's cut as evaluate-scene compares it."""
    thresholds = sorted(thresholds)
    with rasterio.open(prediction) as ds:
        cuts = np.array([roof_cut(ds, t) for t in thresholds])
        roof_hist = np.zeros(len(cuts) + 1, np.int64)
        ground_hist = np.zeros(len(cuts) + 1, np.int64)
        for row in range(0, ds.height, ROWS):
            h = min(ROWS, ds.height - row)
            window = Window(0, row, ds.width, h)
            valid = ds.read_masks(1, window=window) > 0
            above = np.searchsorted(cuts, ds.read(1, window=window), side="right")  # how many cuts each pixel passes
            truth = labels.read(row, 0, h, ds.width).astype(bool)
            roof_hist += np.bincount(above[valid & truth], minlength=len(cuts) + 1)
            ground_hist += np.bincount(above[valid & ~truth], minlength=len(cuts) + 1)
    out = {}
    for k, t in enumerate(thresholds):
        tp, fp = int(roof_hist[k + 1 :].sum()), int(ground_hist[k + 1 :].sum())
        out[t] = Counts(tp=tp, fp=fp, fn=int(roof_hist.sum()) - tp)
    return out


def true_buildings(labels, ds) -> list:
    """The true buildings of a scene as shapely polygons in the prediction's CRS, counted as
    evaluate-scene counts them (:func:`roofseg.prediction.scoring.score.true_polygons`): footprints, or a
    mask's 8-connected regions."""
    if isinstance(labels, VectorLabels):
        geoms = [shape(g) for g in labels.geoms]
    else:
        mask = labels.read(0, 0, ds.height, ds.width)
        geoms = [shape(g) for g, v in shapes(mask, mask=mask > 0, connectivity=8, transform=ds.transform) if v == 1]
    return true_polygons(geoms, ds, TRUE_MIN_AREA)


class SceneScorer:
    """Scores post-processings on one predicted scene: its pixel counts at every threshold (one
    read), its true buildings, and the footprints of each post-processing as predict makes them."""

    def __init__(self, prediction: Path, labels_path: str, objective: str, labels_crs: str | None, work: Path):
        self.prediction, self.objective, self.work = prediction, objective, work
        self.labels_path, self.labels_crs = labels_path, labels_crs
        self._truth: list | None = None
        self._scored: dict[PostProcess, Counts] = {}
        with self._labels() as (labels, _):
            self.vector = isinstance(labels, VectorLabels)
            self.pixels = pixel_counts_by_threshold(str(prediction), labels, THRESHOLDS)

    @contextlib.contextmanager
    def _labels(self):
        """The scene's labels on its prediction's grid, and that grid's dataset."""
        with Scene(self.prediction, bands=(1,)) as grid, warnings.catch_warnings():
            # said by tune of the user's scene, not of this copy of its prediction
            warnings.simplefilter("ignore", RoofsegWarning)
            labels = open_labels(self.labels_path, grid, crs=self.labels_crs)
            try:
                yield labels, grid.ds
            finally:
                labels.close()

    @property
    def roof_pixels(self) -> int:
        """The labels' roof pixels on the prediction's valid pixels."""
        counts = self.pixels[THRESHOLDS[0]]
        return counts.tp + counts.fn

    @property
    def true_areas(self) -> np.ndarray:
        """The ground areas (m²) of the true buildings."""
        with rasterio.open(self.prediction) as ds:
            area_of = GroundArea(ds.crs)
        return np.array([area_of(g) for g in self.truth], float)

    @property
    def truth(self) -> list:
        """The true buildings, traced on the first object score (a run that chooses by pixel IoU never needs them)."""
        if self._truth is None:
            with self._labels() as (labels, ds):
                self._truth = true_buildings(labels, ds)
        return self._truth

    def __call__(self, post: PostProcess) -> Counts:
        if post not in self._scored:  # a scene read alike in two readings is scored once for both
            self._scored[post] = self._score(post)
        return Counts(**asdict(self._scored[post]))

    def _score(self, post: PostProcess) -> Counts:
        counts = Counts(**asdict(self.pixels[post.threshold]))
        if self.objective == "object-f1":
            binary = self.work / f"{self.prediction.stem}_{post.threshold}.tif"
            if not binary.exists():
                binary_raster(self.prediction, post.threshold, binary)
            found = [shape(b.geometry) for b in buildings(self.prediction, binary, post, confidence=False)]
            counts.matched, counts.predicted = match_objects(found, self.truth, 0.5), len(found)
            counts.true = len(self.truth)
        return counts


def threshold_and_cut(contact: bool, objective: str) -> list[PostProcess]:
    """The first step's candidates: every threshold, and how touching buildings are seeded (each
    contact cut, each peak depth), at the default smallest area and outlines. Pixel IoU depends on
    the threshold alone."""
    if not (contact and objective == "object-f1"):
        return [PostProcess(t, 0.5 if contact else None) for t in THRESHOLDS]
    seeds = [(c, None) for c in CONTACT_CUTS] + [(None, d) for d in SEED_DEPTHS]
    return [PostProcess(t, c, seed_depth=d) for t, (c, d) in itertools.product(THRESHOLDS, seeds)]


def area_and_outline(chosen: PostProcess, objective: str, largest: float = np.inf) -> list[PostProcess]:
    """The second step's candidates: every smallest area up to ``largest`` m² (the default's always)
    and outline at the chosen threshold and cut."""
    if objective == "pixel-iou":
        return []
    areas = [a for a in MIN_AREAS if a <= max(largest, MIN_AREA)]
    return [replace(chosen, min_area=a, regularize=r) for a, r in itertools.product(areas, (False, True))]


def small_building_area(scorers: Sequence[SceneScorer]) -> float:
    """The area (m²) under which :data:`SMALL_SHARE` of the scenes' labelled buildings lie, pooled
    (infinite where none is labelled)."""
    areas = np.concatenate([scorer.true_areas for scorer in scorers] or [np.empty(0)])
    return float(np.quantile(areas, SMALL_SHARE)) if areas.size else np.inf


def capped_options(options, cap: float | None):
    """``options`` reading scenes no coarser than ``cap`` (None: as they are)."""
    return replace(options, gsd_range=capped_range(options.gsd_range, cap)) if cap else options


def reading_caps(card: ModelCard, options, scene_images: Sequence[str]) -> list[float | None]:
    """The coarsest GSDs tune tries reading the scenes at: the range predict reads at as it is
    (None), and the model's own GSD (its card's ``gsd_m``, the training tiles' median) where that
    lies inside the range and some scene would be read coarser than it, so the two readings differ.
    A run at a stated GSD (``options.gsd``) or at each scene's own (no range) tries nothing else."""
    own = card.gsd_m
    if options.gsd or not options.gsd_range or not own or not options.gsd_range[0] <= own < options.gsd_range[1]:
        return [None]
    capped = capped_options(options, own)
    if all(scene_gsd(image, capped) == scene_gsd(image, options) for image in scene_images):
        return [None]
    return [None, own]


class Search:
    """The scores of post-processings on the scenes predicted one way (one reading): per scene and
    pooled, each setting scored once."""

    def __init__(self, scorers: dict[str, SceneScorer]):
        self.scorers = scorers
        self.per_scene: dict[str, dict[PostProcess, Counts]] = {sid: {} for sid in scorers}
        self.pooled: dict[PostProcess, Counts] = {}

    def score(self, settings: list[PostProcess], progress: bool) -> None:
        for post in tqdm(settings, desc="tuning: scoring", unit="setting", disable=not progress, file=terminal()):
            if post in self.pooled:
                continue
            self.pooled[post] = Counts()
            for sid, scorer in self.scorers.items():
                self.per_scene[sid][post] = scorer(post)
                self.pooled[post] += self.per_scene[sid][post]


def predict_readings(
    infer: Inference, scenes, options, caps: list[float | None], objective: str, labels_crs, work: Path, progress: bool
) -> dict[float | None, Search]:
    """A :class:`Search` of the scenes for each coarsest GSD of ``caps``, each scene predicted once per
    GSD it is read at (a scene read alike under two caps is predicted and scored once)."""
    searches, made = {}, {}
    for cap in caps:
        read = capped_options(options, cap)
        scorers = {}
        for scene in tqdm(scenes, desc="tuning: predicting", unit="scene", disable=not progress, file=terminal()):
            key = (scene.id, scene_gsd(scene.image, read))
            if key not in made:
                prediction = work / f"{scene.id}@{key[1] or 'own'}.tif"
                predict_scene(infer, scene.image, prediction, read, progress=False)
                made[key] = SceneScorer(prediction, scene.labels, objective, labels_crs, work)
            scorers[scene.id] = made[key]
        searches[cap] = Search(scorers)
    return searches


def checked_objective(scenes, searches: dict[float | None, Search], objective: str | None) -> str:
    """What the choice maximises (``objective``, else object F1 unless a mask labels a scene), set
    on every scorer; a RoofsegError where no scene's labels hold a building, a warning for each
    scene without one and where object F1 is asked of a mask."""
    scorers = searches[None].scorers
    if not any(scorer.roof_pixels for scorer in scorers.values()):
        raise RoofsegError(
            scenes[0].labels if len(scenes) == 1 else None,
            "the labels hold no building on the scenes' valid pixels: tune chooses by how well buildings are "
            "found, so it needs scenes with labelled buildings",
        )
    for s in scenes:
        if not scorers[s.id].roof_pixels:
            warnings.warn(
                f"{s.labels}: holds no building on {s.image}: scored as a scene without buildings",
                RoofsegWarning,
                stacklevel=3,
            )
    chosen = objective or "object-f1"
    masks = [s.labels for s in scenes if not scorers[s.id].vector]
    if masks and objective is None:
        chosen = "pixel-iou"
        warnings.warn(
            f"{masks[0]}: a mask raster counts touching buildings as one, so object F1 would reward "
            "leaving them joined: the choice is made by pixel IoU",
            RoofsegWarning,
            stacklevel=3,
        )
    elif masks and chosen == "object-f1":
        warnings.warn(
            f"{masks[0]}: a mask raster counts touching buildings as one, so object F1 rewards leaving "
            "them joined; --objective pixel-iou does not",
            RoofsegWarning,
            stacklevel=3,
        )
    for search in searches.values():
        for scorer in search.scorers.values():
            scorer.objective = chosen
    return chosen


def tune(
    model: str | os.PathLike,
    entries: Sequence[str],
    out: str | os.PathLike,
    labels: Sequence[str] = (),
    objective: str | None = None,
    options=None,
    progress: bool = True,
    labels_crs: str | None = None,
    work_dir: str | os.PathLike | None = None,
    infer=None,
    match_colours: bool | None = None,
    reading_only: bool = False,
    held_out: str | os.PathLike | None = None,
) -> dict:
    """Choose the post-processing of ``model`` on the labelled scenes ``entries`` (named as ``tile``
    names them), or on the held-out blocks of the tile manifest ``held_out`` (its validation
    blocks no training tile came from, :mod:`roofseg.tiler.heldout`), and write ``out``:
    ``model`` with the choice in its card. Returns the table: per
    scene and pooled, the defaults' and the chosen scores. ``objective``: object-f1 or pixel-iou;
    None chooses object F1 where every scene has footprints, pixel IoU where a mask raster labels
    one (its touching buildings are one region: object F1 would reward leaving them joined).
    ``infer``: what predicts (an :class:`~roofseg.prediction.rasters.inference.Inference`, or a
    model or callable as it takes) instead of ``model`` loaded with its engine. ``match_colours``:
    each scene's colours matched to the card's reference, as ``predict --match-colours`` does (the
    tuned card then has predict do so by default); None: as predict would by default, from the
    model's history (an adapted model, as it was adapted). The scenes are read as predict reads
    them (:func:`roofseg.prediction.request.resolve`) over the model's trained GSD range, and, where
    some scene is coarser than the model's own GSD, also at that GSD (:func:`reading_caps`): the
    reading that scores better goes into the card as ``max_gsd``, the coarsest GSD predict reads at.
    ``reading_only``: the card's post-processing (its tuned choice, else the defaults) is kept and
    only the reading is chosen, at it; the card records the scenes it was chosen on
    (``reading_scenes``)."""
    if objective is not None and objective not in OBJECTIVES:
        raise RoofsegError(None, f"unknown objective {objective!r} ({', '.join(OBJECTIVES)})")
    if held_out is not None:
        if entries or labels:
            raise RoofsegError(held_out, "tune takes labelled scenes or a tile manifest's held-out blocks, not both")
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            blocks, block_labels = held_out_scenes(held_out, Path(tmp) / "held-out")
            return tune(
                model,
                blocks,
                out,
                block_labels,
                objective,
                options=options,
                progress=progress,
                labels_crs=labels_crs,
                work_dir=tmp,
                infer=infer,
                match_colours=match_colours,
                reading_only=reading_only,
            )
    model, out = os.fspath(model), Path(out)
    if out.exists() and os.path.samefile(out, model):
        raise RoofsegError(out, "is the input model; tune writes a copy (choose another output)")
    ensure_writable_dir(out.parent)
    remove_stale_partials(out.parent, out.name)  # what a killed tune left
    scenes = scene_inputs(entries, labels)
    card = read_card(model) or ModelCard()
    if options is None:  # over the trained range (an earlier tune's coarsest GSD is chosen anew), colours as predict
        matches = colour_default(card) if match_colours is None else match_colours
        options = resolve(card.with_tuning(None), PredictRequest(match_colours=matches), model).options
    # before the model is loaded: a run with nothing to choose is refused at once
    caps = reading_caps(card, options, [s.image for s in scenes])
    if reading_only and len(caps) == 1:
        raise RoofsegError(
            scenes[0].image if len(scenes) == 1 else None,
            f"no scene is read coarser than the model's own GSD ({f'{card.gsd_m:.3g} m' if card.gsd_m else 'unknown'}) "
            "within its trained range: --reading-only has no reading to choose; give it coarser labelled scenes, "
            "or tune without --reading-only",
        )
    if infer is None:
        infer = load_predictor(model, options.engine, options.precision)
    if not isinstance(infer, Inference):
        infer = Inference(infer, options.devices, options.tta)
    contact = infer.channels > 1
    default = PostProcess(0.5, 0.5 if contact else None, MIN_AREA, False)
    if reading_only:  # the post-processing stays the card's: only the reading is searched, at it
        default = card.postprocess.choice if card.postprocess else default
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        asked = objective or "object-f1"
        searches = predict_readings(infer, scenes, options, caps, asked, labels_crs, Path(tmp), progress)
        chosen_objective = checked_objective(scenes, searches, objective)
        largest = None
        if chosen_objective == "object-f1" and not reading_only:
            largest = small_building_area(list(searches[None].scorers.values()))
        cap, best = choose(searches, default, contact, chosen_objective, reading_only, progress, largest)
    table = tune_table(searches, default, cap, best, chosen_objective, reading_only)
    table["min_area_limit"] = largest if largest is None or np.isfinite(largest) else None
    scene_ids = tuple(s.id for s in scenes)
    if reading_only and card.postprocess:  # the post-processing's record kept; where the reading was chosen beside it
        tuning = replace(card.postprocess, max_gsd=cap, reading_scenes=scene_ids)
    else:
        scores = TuneScores.from_dict(table["pooled"]["chosen"])
        tuning = Tuning(best, chosen_objective, scores, scene_ids, options.colour_reference is not None, max_gsd=cap)
        if len(caps) == 1:
            tuning = kept_reading(tuning, card.postprocess, table)
    write_model(out, card.with_tuning(tuning), lambda tmp: shutil.copyfile(model, tmp))
    return table


def choose(
    searches: dict[float | None, Search],
    default: PostProcess,
    contact: bool,
    objective: str,
    reading_only: bool,
    progress: bool,
    largest: float | None = None,
) -> tuple[float | None, PostProcess]:
    """The reading (its coarsest GSD, None: as predict reads) and post-processing that score best,
    pooled, by ``objective``: the threshold and seeding of touching buildings first, then the
    smallest area (up to ``largest`` m², :func:`small_building_area`) and outlines at that choice
    (``reading_only``: ``default`` alone, at each reading).
    Ties go to the setting closest to the defaults: the search must earn a change."""

    def preference(item: tuple[float | None, PostProcess]) -> tuple:
        cap, s = item
        return (
            round(searches[cap].pooled[s].score(objective), 6),
            cap is None,
            s == default,
            -abs(s.threshold - 0.5),
            s.seed_depth is None,
            -abs((s.contact_cut or 0.5) - 0.5),
            s.min_area == default.min_area,
            not s.regularize,
        )

    def best() -> tuple[float | None, PostProcess]:
        return max(((cap, post) for cap, search in searches.items() for post in search.pooled), key=preference)

    for search in searches.values():
        search.score([default, *([] if reading_only else threshold_and_cut(contact, objective))], progress)
    cap, first = best()
    if not reading_only:
        searches[cap].score(area_and_outline(first, objective, np.inf if largest is None else largest), progress)
    return best()


def tune_table(
    searches: dict[float | None, Search],
    default: PostProcess,
    cap: float | None,
    chosen: PostProcess,
    objective: str,
    reading_only: bool,
) -> dict:
    """What tune returns (and the CLI prints): the defaults' and the chosen scores, per scene and
    pooled, and each reading's best."""
    before, after = searches[None], searches[cap]
    return {
        "objective": objective,
        "default": asdict(default),
        "chosen": asdict(chosen),
        "max_gsd": cap,
        "reading_only": reading_only,
        "readings": {
            str(c): _scores(max((s.pooled[p] for p in s.pooled), key=lambda n: n.score(objective)))
            for c, s in searches.items()
        },
        "scenes": {
            sid: {"default": _scores(before.per_scene[sid][default]), "chosen": _scores(after.per_scene[sid][chosen])}
            for sid in before.scorers
        },
        "pooled": {"default": _scores(before.pooled[default]), "chosen": _scores(after.pooled[chosen])},
    }


def kept_reading(tuning: Tuning, earlier: Tuning | None, table: dict) -> Tuning:
    """``tuning`` made where no scene was read coarser than the model's GSD, so none could choose
    the reading: the ``earlier`` choice's reading stands, with the scenes it was chosen on (said
    in ``table``)."""
    if earlier is None or earlier.max_gsd is None:
        return tuning
    where = earlier.reading_scenes or earlier.scenes
    table.update(max_gsd=earlier.max_gsd, reading_kept=list(where))
    return replace(tuning, max_gsd=earlier.max_gsd, reading_scenes=where)


def _scores(c: Counts) -> dict:
    return {
        "pixel_iou": c.pixel_iou,
        "object_f1": c.object_f1,
        "matched": c.matched,
        "predicted": c.predicted,
        "true": c.true,
    }
