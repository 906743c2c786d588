"""The front door of prediction: what a caller asks (:class:`PredictRequest`, ``None`` for what it
did not say) and the one function that decides every default from the model's card
(:func:`resolve`). The command line, :func:`roofseg.prediction.many.predict_scenes` called from
Python, the Beam runner, ``roofseg tune`` and ``roofseg adapt`` all go through it, so a model is
predicted alike whoever asks.

The defaults, in the order they are decided:

- windows of the tile size the model was trained on, overlapping by a quarter (at most 64 px);
  a scene inside the GSD range it was trained on read at its own GSD, one outside at the range's
  nearest end, and one coarser than the model's own GSD at that where ``roofseg tune`` chose so
  (``gsd``: every scene at that; ``native``: every scene at its own);
- the footprints' threshold, seeding (contact cut or peak depth), smallest area and outlines as
  ``roofseg tune`` chose (or the base a fine-tuned model started from)
  (in the card), else 0.5, the threshold, :data:`MIN_AREA` m² and the traced outlines;
- colour matching as the model's own history says (:func:`colour_default`);
- the engine: TensorFlow where devices are named (only it holds replicas on several), else as asked;
- a binary raster kept only where a threshold is stated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from roofseg.contracts.card import MIN_AREA, ModelCard, read_card
from roofseg.errors import RoofsegError
from roofseg.prediction.options import PredictOptions, card_options, tuned_defaults
from roofseg.prediction.vector.existing import EXISTING_OVERLAP, check_existing
from roofseg.prediction.vector.vectorize import DRIVERS, VectorOptions

VECTOR_THRESHOLD = 0.5  # footprints are cut here where neither the caller nor tune says otherwise


@dataclass(frozen=True)
class PredictRequest:
    """What a caller asks of a prediction: every field ``None`` (or its plain default) where the
    caller did not say, so that :func:`resolve` knows what it may decide."""

    tile: int | None = None
    overlap: int | None = None
    batch: int = 8
    bands: tuple[int, ...] | None = None
    dtype: str = "uint8"
    threshold: float | None = None  # also a binary raster; None: none (footprints cut at tune's or 0.5)
    vector: str | None = None  # a file (one scene) or a format (one file per scene)
    min_area: float | None = None
    regularize: bool | None = None
    separate: bool = True
    min_confidence: float = 0.0
    existing: str | None = None
    existing_overlap: float = EXISTING_OVERLAP
    existing_crs: str | None = None
    keep_existing: bool = False
    preview: str | None = None  # a .png file (one scene), or "png" for one per scene
    gsd: float | None = None
    native: bool = False
    engine: str = "auto"
    precision: str = "f32"
    match_colours: bool | None = None
    tta: bool = False
    cog: bool = False
    devices: str = "all"  # replicas on every visible GPU, or on these ('GPU:0,GPU:1'; TensorFlow)


@dataclass(frozen=True)
class Resolved:
    """A request with every default decided: the raster options and, where asked, the footprints'."""

    options: PredictOptions
    vectors: VectorOptions | None
    card: ModelCard | None

    @property
    def trained_range(self) -> tuple[float, float] | None:
        return self.card.gsd_range if self.card else None


def colour_default(card: ModelCard | None) -> bool:
    """Whether a model's scenes are colour-matched where the caller does not say: as its latest
    step chose. ``roofseg tune`` records its choice; ``roofseg adapt`` records its own and drops an
    earlier tune's (chosen for the model before adaptation), so a tune after an adapt is the
    latest, and an adapt after a tune is too. An untuned, unadapted model: no matching."""
    if card is None:
        return False
    if card.postprocess is not None:
        return card.postprocess.match_colours
    return bool(card.adaptation and card.adaptation.match_colours)


def engine_for(engine: str, devices: str) -> str:
    """TensorFlow where devices are named (only it holds replicas on several); else as asked."""
    if devices != "all":
        if engine not in ("auto", "tf"):
            raise RoofsegError("--engine", f"--devices runs replicas of the model with TensorFlow, not {engine}")
        return "tf"
    return engine


def _devices(choice: str) -> tuple[str, ...] | None:
    # here, not at the top: the devices TensorFlow sees (it is imported by then for any model)
    from roofseg.devices import visible_devices

    found = visible_devices(choice)
    return tuple(found) if found else None


def _vector_suffix(vector: str) -> str:
    suffix = Path(vector).suffix.lower() or f".{vector.lower()}"
    if suffix not in DRIVERS:
        raise RoofsegError("--vector", f"use a file or format of {', '.join(DRIVERS)}")
    return suffix


def resolve(card: ModelCard | None, request: PredictRequest = PredictRequest(), model=None) -> Resolved:
    """Every default of a prediction, decided once from ``card`` (None: a model without one) and what
    ``request`` states; what contradicts itself is a RoofsegError naming the option. ``model``
    (its file) is named where its card lacks what is asked of it."""
    if request.gsd and request.native:
        raise RoofsegError("--native", "--gsd and --native contradict each other")
    if not request.vector and (request.existing or request.keep_existing):
        raise RoofsegError("--existing", "leaves mapped buildings out of --vector, which is not asked for")
    if not request.vector and request.regularize:
        raise RoofsegError("--regularize", "regularizes the outlines of --vector, which is not asked for")
    if request.existing:  # said now, not after the first scene's prediction
        check_existing(request.existing, request.existing_crs)
    preview = request.preview
    if preview and Path(preview).suffix.lower() != ".png" and preview.lower() != "png":
        raise RoofsegError("--preview", "a .png file, or 'png' for one per scene")
    threshold, vectors = request.threshold, None
    if request.vector:
        post = tuned_defaults(
            card,
            {
                "threshold": request.threshold,
                "contact_cut": None,
                "seed_depth": None,
                "min_area": request.min_area,
                "regularize": request.regularize,
            },
        )
        threshold = VECTOR_THRESHOLD if post["threshold"] is None else post["threshold"]
        vectors = VectorOptions(
            suffix=_vector_suffix(request.vector),
            min_area=MIN_AREA if post["min_area"] is None else post["min_area"],
            regularize=bool(post["regularize"]),
            separate=request.separate,
            min_confidence=request.min_confidence,
            contact_cut=post["contact_cut"],
            seed_depth=post["seed_depth"],
            existing=os.path.abspath(request.existing) if request.existing else None,
            existing_overlap=request.existing_overlap,
            existing_crs=request.existing_crs,
            keep_existing=request.keep_existing,
        )
    matches = colour_default(card) if request.match_colours is None else request.match_colours
    options = card_options(
        card,
        tile=request.tile,
        overlap=request.overlap,
        batch=request.batch,
        dtype=request.dtype,
        threshold=threshold,
        tta=request.tta,
        cog=request.cog,
        bands=request.bands,
        devices=_devices(request.devices),
        gsd=None if request.native else request.gsd,
        native=request.native,
        keep_binary=request.threshold is not None,  # a binary raster only where a threshold is stated
        engine=engine_for(request.engine, request.devices),
        precision=request.precision,
        colour_reference=(card or ModelCard()).colour_quantiles(model) if matches else None,
    )
    return Resolved(options, vectors, card)


def resolve_model(model: str | os.PathLike, request: PredictRequest = PredictRequest()) -> Resolved:
    """:func:`resolve` for the model file ``model``, its card read once here (a model from
    elsewhere, without a card, takes the plain defaults)."""
    card = read_card(model) if os.path.isfile(model) else None
    return resolve(card, request, model)


@dataclass(frozen=True)
class SceneOutputs:
    """The files of a prediction of one scene into ``output``: its footprints and quicklook."""

    vector: Path | None
    preview: Path | None


def single_outputs(output: str | os.PathLike, request: PredictRequest, resolved: Resolved) -> SceneOutputs:
    """Where one scene's footprints and quicklook go: the files the request names, else beside
    ``output`` (``NAME.gpkg``, ``NAME_preview.png``)."""
    output = Path(output)
    vector = None
    if resolved.vectors is not None:
        given = Path(request.vector)
        vector = given if given.suffix else output.with_suffix(resolved.vectors.suffix)
    preview = None
    if request.preview:
        given = Path(request.preview)
        preview = given if given.suffix.lower() == ".png" else output.with_name(f"{output.stem}_preview.png")
    return SceneOutputs(vector, preview)
