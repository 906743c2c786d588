"""`roofseg predict`: a sliding window over a whole scene into a georeferenced probability raster."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.shutil import copy
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from tqdm import tqdm

from roofseg.atomic import atomic_output, check_outputs, temp_path
from roofseg.contracts.card import PostProcess
from roofseg.contracts.sizes import (
    check_tile_size,
    describe_range,
    gsd_ratio,
    nearest_end,
    off_range,
    reading_gsd,
)
from roofseg.contracts.tags import RasterTags, probability_scale
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.inference import Inference
from roofseg.prediction.rasters.stitch import BandAccumulator, BlockAligner
from roofseg.raster import colours
from roofseg.raster.gdal_errors import raise_gdal_errors
from roofseg.raster.scene import Scene, band_cache, native_gsd
from roofseg.raster.windows import grid_rows, stride_for
from roofseg.readahead import WriteBehind, read_ahead
from roofseg.terminal import terminal

BLOCK = 256  # output GeoTIFF block size


def binary_path(out: str | os.PathLike) -> Path:
    """Where the thresholded 0/1 raster goes: beside ``out``, named ``<stem>_binary.tif``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_binary.tif")


def pad_reflect(image: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an (h, w, c) window at the bottom and right to size × size."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    return np.pad(image, [(0, size - h), (0, size - w), (0, 0)], mode="symmetric")


def _profile(grid, dtype: str, count: int = 1) -> dict:
    # Bands stored apart (roof, contact): reading the roof alone, as scoring and mosaics do, reads
    # half. GDAL's multi-threaded compression of a second band reports spurious ExtraSamples errors
    # (OSGeo/gdal#7921), which roofseg takes for failed writes: one band only is compressed in threads.
    threads = {"NUM_THREADS": "ALL_CPUS"} if count == 1 else {}
    return dict(
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=count,
        dtype=dtype,
        crs=grid.crs,
        transform=grid.transform,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        compress="deflate",
        predictor=2 if dtype == "uint8" else 3,
        BIGTIFF="IF_SAFER",
        interleave="band",
        photometric="minisblack",
        **threads,
    )


def _to_cog(path: Path, resampling: str) -> None:
    """Rewrite the GeoTIFF at ``path`` as a Cloud-Optimised GeoTIFF with overviews (GDAL's COG driver)."""

    cog = path.with_name(path.name + ".cog")
    try:
        copy(str(path), str(cog), driver="COG", compress="DEFLATE", overview_resampling=resampling, BIGTIFF="IF_SAFER")
        os.replace(cog, path)
    finally:
        cog.unlink(missing_ok=True)


def scene_gsd(scene_path: str | os.PathLike, options: PredictOptions) -> float | None:
    """The ground pixel size ``scene_path`` is predicted at: ``options.gsd`` where given, else its
    own inside the model's GSD range and the range's nearest end outside it (None: its own)."""
    if options.gsd or not options.gsd_range:
        return options.gsd
    return reading_gsd(native_gsd(scene_path), options.gsd_range)


def warn_if_other_gsd(span: tuple[float, float] | None, scene_path: str | os.PathLike) -> float | None:
    """Warn when the scene's ground pixel size is more than the tolerance outside ``span``, the
    GSDs the model was trained on (from its card): roofs then look the wrong size to it. Returns
    the ratio to the range's nearest end."""
    if not span:
        return None
    gsd = native_gsd(scene_path)
    if not gsd:
        return None
    end = nearest_end(gsd, span)
    if off_range(gsd, span):
        warnings.warn(
            f"{scene_path}: ground pixel size {gsd:.3g} m, but the model was trained at {describe_range(span)}: "
            f"roofs look {gsd_ratio(gsd, end):.2g}x their trained size to it",
            stacklevel=2,
        )
    return gsd_ratio(gsd, end)


def predict_scene(
    model,
    scene_path: str | os.PathLike,
    out_path: str | os.PathLike,
    options: PredictOptions = PredictOptions(),
    overwrite: bool = False,
    progress: bool = True,
    bar: tqdm | None = None,
    run: str | None = None,
    postprocess: PostProcess | None = None,
) -> dict:
    """Predict ``scene_path`` into ``out_path`` on the scene's grid; return what was written.

    ``model`` is a Keras model, any callable from a float32 (n, h, w, 3) batch in [0, 1] to
    (n, h, w, 1) probabilities (or (n, h, w, 2), roof and contact, with ``channels = 2``), or an
    :class:`Inference` made of either (several scenes, one model set up once). The probability
    raster has a band per output channel: roof, then contact where the model has it (tagged
    ROOFSEG_BANDS). Windows are read, predicted and blended band of rows by band of rows, so
    memory follows the scene's width, not its area. A failed write (GDAL's errors included)
    raises, and nothing is left under the output's name. ``bar``: a progress bar to advance
    instead of one of its own. ``run``: the stamp of the run record the raster is made under;
    ``postprocess``: what the footprints made from it are made with (both tags of the raster).
    """
    out_path = Path(out_path)
    outputs = [out_path] + ([binary_path(out_path)] if options.threshold is not None else [])
    check_outputs(outputs, [scene_path], overwrite)
    check_tile_size(options.tile)
    stride = stride_for(options.tile, options.overlap)
    infer = model if isinstance(model, Inference) else Inference(model, options.devices, options.tta)

    gsd = scene_gsd(scene_path, options)
    with Scene(scene_path, options.bands, gsd) as scene, band_cache(scene, options.tile), ExitStack() as stack:
        if not scene.georeferenced:
            warnings.warn(f"{scene.path}: has no georeference; the prediction will have none either", stacklevel=2)
        rows = list(grid_rows(scene.height, scene.width, options.tile, stride))
        total = sum(len(r) for r in rows)
        temps = [stack.enter_context(atomic_output(p)) for p in outputs]
        if bar is None:
            bar = stack.enter_context(
                tqdm(total=total, desc="predicting", unit="window", disable=not progress, file=terminal())
            )
        resampled = scene.ds is not scene.source
        table = colour_table(scene, options)
        # the outputs close inside the watch, also on failure: closing flushes, and may fail too
        with raise_gdal_errors(out_path), ExitStack() as outs:
            if resampled:  # predicted on the model's grid, then brought back onto the scene's
                grid_path = stack.enter_context(_scratch(out_path))
                with rasterio.open(grid_path, "w", **_profile(scene, "float32", infer.channels)) as grid:
                    _predict_rows(
                        infer, scene, rows, [grid], replace(options, dtype="float32", threshold=None), bar, table
                    )
                datasets = _open_outputs(temps, scene.source, options, outs, infer.channels, run, postprocess)
                _regrid(grid_path, scene, datasets, options)
            else:
                datasets = _open_outputs(temps, scene, options, outs, infer.channels, run, postprocess)
                _predict_rows(infer, scene, rows, datasets, options, bar, table)
            for ds in datasets:
                ds.close()  # flushes the last blocks: a full disk often shows only here
            if options.cog:
                for path, resampling in zip(temps, ("average", "nearest")):
                    _to_cog(path, resampling)
        width, height = scene.source.width, scene.source.height
    return {
        "prediction": str(out_path),
        "binary": str(outputs[1]) if len(outputs) > 1 else None,
        "windows": total,
        "width": width,
        "height": height,
    }


def _open_outputs(
    temps: list[Path],
    grid,
    options: PredictOptions,
    outs: ExitStack,
    channels: int,
    run: str | None = None,
    postprocess: PostProcess | None = None,
) -> list:
    """The output rasters on ``grid`` (a scene or dataset: its size, CRS and transform), tagged."""
    tags = RasterTags.probability(options.dtype, channels, run, postprocess)
    datasets = [outs.enter_context(rasterio.open(temps[0], "w", **_profile(grid, options.dtype, channels)))]
    datasets[0].update_tags(**tags.to_gdal())
    for band, name in enumerate(tags.bands, 1):
        datasets[0].set_band_description(band, f"{name} probability")
    if options.threshold is not None:
        datasets.append(outs.enter_context(rasterio.open(temps[1], "w", **_profile(grid, "uint8"))))
        datasets[1].update_tags(**RasterTags.binary(options.threshold).to_gdal())
    return datasets


def colour_table(scene: Scene, options: PredictOptions) -> np.ndarray | None:
    """The lookup tables that match ``scene``'s colours to the model's reference (``--match-colours``),
    from a sample of its windows; None where not asked, or where the scene has too few valid pixels."""
    if options.colour_reference is None:
        return None
    reference = np.asarray(options.colour_reference, np.float32)
    table = colours.scene_table(scene.read, scene.height, scene.width, options.tile, reference)
    if table is None:
        warnings.warn(f"{scene.path}: too few valid pixels to match its colours; predicted as it is", stacklevel=2)
    return table


def _predict_rows(
    infer, scene: Scene, rows: list, datasets: list, options: PredictOptions, bar: tqdm, table: np.ndarray | None = None
) -> None:
    """Predict the windows of ``rows`` and blend them into ``datasets``, on ``scene``'s grid.

    Three stages: a thread reads windows (GDAL releases the GIL), this one runs the model, a
    thread blends and writes. Each dataset is touched by one thread only.
    """
    stitch = _Stitcher(scene.height, scene.width, rows, datasets, options)
    windows = _windows(scene, rows, options, table)
    batches = read_ahead(windows, depth=2) if options.pipelined else windows
    with contextlib.closing(batches), WriteBehind(stitch, depth=2 if options.pipelined else 0) as sink:
        for k, tiles, batch, valids in batches:
            sink.put((k, tiles, infer(batch), valids))
            bar.update(len(tiles))


@contextlib.contextmanager
def _scratch(out_path: Path) -> Iterator[Path]:
    """A temporary GeoTIFF beside ``out_path``, always deleted."""
    path = temp_path(out_path.with_name(f"{out_path.stem}_model_grid.tif"), keep_suffix=True)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _regrid(grid_path: Path, scene: Scene, datasets: list, options: PredictOptions) -> None:
    """Bring the probabilities predicted on the model's grid back onto the scene's own grid
    (bilinear), block row by block row; validity is the scene's own, read at its resolution."""

    src = scene.source
    with (
        rasterio.open(grid_path) as grid,
        WarpedVRT(
            grid,
            crs=src.crs,
            transform=src.transform,
            width=src.width,
            height=src.height,
            resampling=Resampling.bilinear,
        ) as back,
        Scene(scene.path, options.bands) as native,
    ):
        for top in range(0, src.height, BLOCK):
            h = min(BLOCK, src.height - top)
            band = back.read(window=Window(0, top, src.width, h), out_dtype="float32").transpose(1, 2, 0).copy()
            _, valid = native.read(top, 0, h, src.width)
            _write_band(datasets, top, band, valid, options)


def _windows(
    scene: Scene, rows: list, options: PredictOptions, table: np.ndarray | None = None
) -> Iterator[tuple[int, list, np.ndarray, list]]:
    """(grid row index, tiles, uint8 windows reflect-padded to the tile size, validities), batch by batch.

    Windows are cut in memory from each grid row's strip of the scene (see :func:`_strips`), its
    colours matched through ``table`` where given.
    """
    for k, (grid_row, (image, valid)) in enumerate(zip(rows, _strips(scene, rows))):
        if table is not None:
            image = colours.apply_table(image, table, valid)
        for start in range(0, len(grid_row), options.batch):
            tiles = grid_row[start : start + options.batch]
            cols = [slice(t.col, t.col + t.width) for t in tiles]
            yield (
                k,
                tiles,
                np.stack([pad_reflect(image[:, c], options.tile) for c in cols]),
                [valid[:, c] for c in cols],
            )


def _strips(scene: Scene, rows: list) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The scene's rows under each grid row, as (uint8 image, validity), full width.

    One GDAL read per grid row rather than one per window, and only of the rows the previous
    strip did not hold: each pixel is read once, however much the windows overlap.
    """
    top, image, valid = 0, None, None
    for grid_row in rows:
        start, end = grid_row[0].row, grid_row[0].row + grid_row[0].height
        kept = 0 if image is None else max(0, top + len(image) - start)
        new_image, new_valid = scene.read(start + kept, 0, end - start - kept, scene.width)
        if kept:  # new arrays, never filled in place: windows cut from the last strip may still be queued
            new_image = np.concatenate([image[start - top :], new_image])
            new_valid = np.concatenate([valid[start - top :], new_valid])
        top, image, valid = start, new_image, new_valid
        yield image, valid


class _Stitcher:
    """Blends predicted batches into rows and writes each block of rows once it is final."""

    def __init__(self, height: int, width: int, rows: list, datasets: list, options: PredictOptions):
        channels = datasets[0].count
        self.acc = BandAccumulator(height, width, options.tile, options.overlap, channels)
        self.aligner = BlockAligner(height, width, BLOCK, channels)
        self.height, self.rows, self.datasets, self.options = height, rows, datasets, options
        self.left = [len(r) for r in rows]  # windows of each grid row still to come

    def __call__(self, item: tuple[int, list, np.ndarray, list]) -> None:
        k, tiles, probs, valids = item
        for t, p, valid in zip(tiles, probs, valids):
            self.acc.add(t.row, t.col, p, valid)
        self.left[k] -= len(tiles)
        if self.left[k] == 0:
            next_row = self.rows[k + 1][0].row if k + 1 < len(self.rows) else self.height
            for top, band, valid in self.acc.advance(next_row):
                for block_top, block, block_valid in self.aligner.push(top, band, valid):
                    _write_band(self.datasets, block_top, block, block_valid, self.options)


def _write_band(datasets: list, top: int, band: np.ndarray, valid: np.ndarray, options: PredictOptions) -> None:
    """Write blended rows [top, top + len(band)) — (rows, width, channels) — to the probability
    raster's bands (and the roof channel, thresholded, to the binary raster); the scene's validity
    becomes the mask band.

    ``band`` (float32) is changed in place: it is a block the caller refills afterwards, and a
    copy per step would cost a band of rows each.
    """
    window = Window(0, top, band.shape[1], band.shape[0])
    if not valid.all():  # nodata to 0: a multiply, far cheaper than a masked assignment
        np.multiply(band, valid[..., None], out=band)
    for c in range(band.shape[2]):
        if options.dtype == "uint8":  # OpenCV scales, rounds and saturates in one multi-threaded pass
            stored = cv2.convertScaleAbs(band[..., c], alpha=255.0)
        else:
            stored = np.ascontiguousarray(band[..., c])
        datasets[0].write(stored, c + 1, window=window)
        if c == 0 and len(datasets) > 1:  # the roof as stored, thresholded: as tune and evaluate-scene read it
            cut = options.threshold * probability_scale(options.dtype)
            datasets[1].write((stored >= cut).view(np.uint8), 1, window=window)
    mask = valid.view(np.uint8) * np.uint8(255)
    for ds in datasets:
        ds.write_mask(mask, window=window)
