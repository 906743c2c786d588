"""What a prediction run is asked for, and where each option's default comes from.

One policy for every caller (the command line, the Beam runner, Python): the model card's tile
size and GSD, and ``roofseg tune``'s post-processing, are the defaults; what the caller states wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roofseg.contracts.card import ModelCard
from roofseg.contracts.sizes import DEFAULT_TILE_SIZE, check_tile_size, default_overlap
from roofseg.errors import RoofsegError
from roofseg.scenes import is_remote, suffix_of

RASTER_SUFFIXES = (".tif", ".tiff")  # an output named so is one scene's raster; anything else a folder


@dataclass(frozen=True)
class PredictOptions:
    """How a scene is cut, predicted and written (the CLI's options)."""

    tile: int = DEFAULT_TILE_SIZE
    overlap: int = 64
    batch: int = 8
    dtype: str = "uint8"  # or float32
    threshold: float | None = None  # also write a 0/1 raster
    tta: bool = False
    cog: bool = False
    bands: tuple[int, ...] | None = None
    pipelined: bool = True  # read, predict, and blend/write on three threads; False: one after another
    devices: tuple[str, ...] | None = None  # a model replica on each (see roofseg.devices.visible_devices)
    gsd: float | None = None  # metres: predict on scenes resampled to this ground pixel size
    gsd_range: tuple[float, float] | None = None  # without gsd: a scene outside it is read at its nearest end
    keep_binary: bool = True  # keep the thresholded raster beside the prediction (else it only makes the vectors)
    engine: str = "tf"  # what runs a model file: tf, onnx, openvino or auto (see roofseg.prediction.rasters.engines)
    precision: str = "f32"  # or bf16 (OpenVINO on CPUs with bfloat16 arithmetic)
    colour_reference: tuple[tuple[float, ...], ...] | None = None  # match each scene's colours to these quantiles

    @property
    def writes_binary(self) -> bool:
        """Whether a thresholded ``NAME_binary.tif`` is among the outputs."""
        return self.threshold is not None and self.keep_binary


def card_options(card: ModelCard | None, native: bool = False, **stated) -> PredictOptions:
    """The options a model is predicted with by default: windows of the size it was trained on,
    overlapping by :func:`~roofseg.contracts.sizes.default_overlap`; a scene inside the GSD range it
    reads at (:attr:`~roofseg.contracts.card.ModelCard.reading_range`: the range it was trained on, up
    to ``tune``'s coarsest) read at its own GSD, one outside at the range's nearest end (``native``:
    every scene at its own). ``stated`` (any :class:`PredictOptions` field) wins. The tile size and
    overlap are checked."""
    card = card or ModelCard()
    tile = check_tile_size(stated.pop("tile", None) or card.tile_size, "--tile-size")
    overlap = stated.pop("overlap", None)
    overlap = default_overlap(tile) if overlap is None else overlap
    if overlap >= tile:
        raise RoofsegError("--overlap", f"must be smaller than --tile-size ({tile})")
    gsd = stated.pop("gsd", None)
    span = stated.pop("gsd_range", None if gsd or native else card.reading_range)
    return PredictOptions(tile=tile, overlap=overlap, gsd=gsd, gsd_range=span, **stated)


def tuned_defaults(card: ModelCard | None, stated: dict) -> dict:
    """Footprint options from ``roofseg tune``'s choice in ``card``, where ``stated`` (the caller's
    options: threshold, min_area, regularize, contact_cut, seed_depth; None for not stated) does not say
    otherwise. Without a tuned card, ``stated`` as it is."""
    tuned = card.postprocess.choice if card and card.postprocess else None
    if tuned is None:
        return dict(stated)
    chosen = {
        "threshold": tuned.threshold,
        "min_area": tuned.min_area,
        "regularize": tuned.regularize,
        "contact_cut": tuned.contact_cut,
        "seed_depth": tuned.seed_depth,
    }
    return {k: chosen[k] if stated.get(k) is None else stated[k] for k in chosen}


def single_scene(inputs: list[str], output: str) -> bool:
    """Whether a run is one scene into one raster (``OUTPUT.tif``) rather than scenes into a folder:
    one input that is a scene file or URL (not a list, STAC document or folder) and a raster output
    that is not an existing folder."""
    return (
        len(inputs) == 1
        and suffix_of(inputs[0]) not in (".txt", ".json", ".geojson")
        and (is_remote(inputs[0]) or Path(inputs[0]).is_file())
        and Path(output).suffix.lower() in RASTER_SUFFIXES
        and not Path(output).is_dir()
    )
