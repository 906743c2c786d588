"""The blocks of a tile manifest's scenes that no training tile came from, as scenes to score on.

``tile --split-by block`` draws each ``split_block``-pixel square of a scene into train, val or
test. A model's post-processing chosen on the blocks it trained on favours what only a trained
place shows (sharp borders: cores, where a place it never saw needs peaks); chosen on its
validation blocks, it is chosen on pixels it never learnt from, of the same places.

A block counts as held out only where no other scene of the manifest that gave training tiles
covers any of it: the same place is often tiled twice, as files of two zoom levels, and each
file's blocks are drawn on its own.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box

from roofseg.contracts.manifest import Job, Manifest, read_manifest
from roofseg.errors import RoofsegError
from roofseg.raster.labels import VECTOR_SUFFIXES
from roofseg.raster.scene import resampled_shape
from roofseg.tiler.split import BlockSplit

#: the footprints' common frame when scenes' extents are compared
_LONLAT = "EPSG:4326"
#: a block overlapped by less than this share of its area is not trained on (neighbouring scenes
#: that share an edge overlap by a sliver once reprojected)
_SLIVER = 0.01


@dataclass(frozen=True)
class HeldOutBlock:
    """A square of a scene that no training tile came from: its source pixel window, and the
    scene's footprints (clipped to the window when it is scored)."""

    name: str  # the scene's id, the split, and the block's row and column in its grid
    image: str
    labels: str
    window: Window


def _vector_labels(job: Job) -> bool:
    """The job's labels are footprints (a mask joins touching buildings: no object score)."""
    labels = (job.labels or "").lower()
    return labels.endswith(VECTOR_SUFFIXES + (".osm.pbf",))


def _grid_shape(job: Job, ds, params: dict) -> tuple[int, int]:
    """(height, width) of the grid the job's blocks were drawn on (see ``tiler.tile.block_split``)."""
    split_gsd = params.get("split_gsd")
    if split_gsd:
        return resampled_shape(ds, float(split_gsd), job.image) or (ds.height, ds.width)
    return int(job.height or ds.height), int(job.width or ds.width)


def _footprint(ds) -> object | None:
    """The scene's extent in longitude and latitude, or None where its CRS cannot say."""
    try:
        return box(*transform_bounds(ds.crs, _LONLAT, *ds.bounds))
    except Exception:  # no CRS, or a declared one with no datum: it cannot overlap a real place
        return None


def held_out_blocks(
    manifest: Manifest, split: str = "val", source: str | os.PathLike | None = None
) -> list[HeldOutBlock]:
    """The ``split`` blocks of the manifest's block-split scenes labelled by footprints, each as
    a window of its scene, those that overlap another scene with training tiles left out.
    ``source``: the manifest's file, named in errors."""
    params = manifest.params or {}
    if manifest.split_mode != "block" or not params.get("split_block"):
        raise RoofsegError(
            source, "was tiled with whole scenes as splits: it has no held-out blocks (tile with --split-by block)"
        )
    block = int(params["split_block"])
    scene_jobs = [j for j in manifest.jobs if j.image]
    footprints: dict[str, object | None] = {}
    candidates = []
    for job in scene_jobs:
        try:
            with warnings.catch_warnings(), rasterio.open(job.image) as ds:
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a declared pixel size
                footprints[job.id] = _footprint(ds)
                if job.split == "block" and job.tiles_in(split) and _vector_labels(job):
                    candidates.append((job, ds.height, ds.width, _grid_shape(job, ds, params), ds.transform, ds.crs))
        except rasterio.errors.RasterioIOError as e:
            raise RoofsegError(job.image, f"cannot be read to find its held-out blocks ({e})") from None
    out = []
    for job, height, width, (grid_h, grid_w), transform, crs in candidates:
        grid = BlockSplit(grid_h, grid_w, block, float(params["val"]), float(params["test"]), int(params["seed"]))
        sy, sx = height / grid_h, width / grid_w  # source pixels per grid pixel
        others = [
            footprints[j.id]
            for j in scene_jobs
            if j.image != job.image and j.tiles_in("train") and footprints.get(j.id) is not None
        ]
        for r in range(grid.rows):
            for c in range(grid.cols):
                if grid.grid[r, c] != split:
                    continue
                rows = (math.floor(r * block * sy), min(height, math.ceil(min((r + 1) * block, grid_h) * sy)))
                cols = (math.floor(c * block * sx), min(width, math.ceil(min((c + 1) * block, grid_w) * sx)))
                window = Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0])
                here = _window_footprint(window, transform, crs)
                if here is not None and any(here.intersection(o).area > _SLIVER * here.area for o in others):
                    continue  # the same ground was trained on from another file
                out.append(HeldOutBlock(f"{job.id}-{split}-r{r}c{c}", job.image, job.labels, window))
    return out


def _window_footprint(window: Window, transform, crs) -> object | None:
    try:
        x0, y0 = transform @ (window.col_off, window.row_off)
        x1, y1 = transform @ (window.col_off + window.width, window.row_off + window.height)
        return box(*transform_bounds(crs, _LONLAT, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    except Exception:  # as _footprint
        return None


def write_block(block: HeldOutBlock, folder: str | os.PathLike) -> Path:
    """Write ``block``'s pixels as a GeoTIFF named for it in ``folder``; return its path."""
    path = Path(folder) / f"{block.name}.tif"
    with rasterio.open(block.image) as src:
        data = src.read(window=block.window)
        profile = src.profile.copy()
        profile.update(
            driver="GTiff",
            height=data.shape[1],
            width=data.shape[2],
            transform=src.window_transform(block.window),
            tiled=False,
        )
        for key in ("blockxsize", "blockysize", "compress", "photometric"):
            profile.pop(key, None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            valid = src.read_masks(1, window=block.window)
            if src.nodata is None and not valid.all():  # an internal mask: the block keeps what is no data
                dst.write_mask(valid)
    return path


def held_out_scenes(
    manifest: str | os.PathLike, folder: str | os.PathLike, split: str = "val"
) -> tuple[list[str], list[str]]:
    """Write the held-out blocks of the tile manifest ``manifest`` into ``folder``, as scenes;
    return their paths and their labels, in order (as ``tune`` takes scenes)."""
    blocks = held_out_blocks(read_manifest(manifest), split, manifest)
    if not blocks:
        raise RoofsegError(
            manifest,
            f"has no {split} block to score on: none of its {split} blocks is labelled by footprints and off every "
            "scene that gave training tiles (tile with --split-by block and a --val share)",
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [str(write_block(b, folder)) for b in blocks], [b.labels for b in blocks]
