"""The blocks of a tile manifest's scenes that no training tile came from, as scenes to score on.

``tile --split-by block`` draws each ``split_block``-pixel square of a scene into train, val or
test (``--split-by scene``: each whole scene). A model's post-processing chosen on the blocks it
trained on favours what only a trained place shows (sharp borders: cores, where a place it never
saw needs peaks); chosen on its validation blocks, it is chosen on pixels it never learnt from.

A block counts as held out only where no other scene of the manifest that gave training tiles
covers it: the same place is often tiled twice, as files of two zoom levels, and each file's
blocks are drawn on their own. ``tile`` says so when it happens (:func:`shared_ground`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box

from roofseg.contracts.manifest import Job, Manifest, read_manifest
from roofseg.errors import RoofsegError
from roofseg.raster.labels import VECTOR_SUFFIXES
from roofseg.raster.scene import open_raster
from roofseg.scenes import suffix_of
from roofseg.tiler.split import BlockSplit
from roofseg.tiler.tile import split_grid

#: the footprints' common frame when scenes' extents are compared
_LONLAT = "EPSG:4326"
#: a block overlapped by less than this share of its area is not trained on (neighbouring scenes
#: that share an edge overlap by a sliver once reprojected)
_SLIVER = 0.01


@dataclass(frozen=True)
class HeldOutBlock:
    """A block of a scene's held-out split (a square of ``split_block`` px, or the whole scene):
    its source pixel window, and the scene's footprints (clipped to the window when scored)."""

    name: str  # the scene's id, the split, and the block's row and column in its grid
    image: str
    labels: str
    window: Window


def _vector_labels(job: Job) -> bool:
    """The job's labels are footprints (a mask joins touching buildings: no object score)."""
    return bool(job.labels) and suffix_of(job.labels) in VECTOR_SUFFIXES  # as open_labels tells them


def _grid_shape(job: Job, ds, params: dict) -> tuple[int, int]:
    """(height, width) of the grid the job's blocks were drawn on (``tiler.tile.split_grid``)."""
    # tiled at several GSDs (tile --gsd 0.15,0.3), the blocks lie on the finest one's grid
    split_gsd = params.get("split_gsd") or min(params.get("gsds") or [0]) or None
    return split_grid(ds, int(job.height or ds.height), int(job.width or ds.width), split_gsd, job.image)


def _footprint(ds) -> object | None:
    """The scene's extent in longitude and latitude, or None where its CRS cannot say."""
    try:
        return box(*transform_bounds(ds.crs, _LONLAT, *ds.bounds))
    except Exception:  # no CRS, or a declared one with no datum: it cannot overlap a real place
        return None


@dataclass(frozen=True)
class SplitBlock:
    """A block of a held-out split (a whole scene, where scenes were split whole), and the first
    scene that gave training tiles and covers it, if any."""

    split: str
    block: HeldOutBlock
    labelled: bool  # by footprints (a mask joins touching buildings: no object score)
    under: str | None = None


def split_blocks(manifest: Manifest, splits: tuple[str, ...] = ("val",)) -> list[SplitBlock]:
    """Every block of the ``splits`` of the manifest's scenes, as a window of its scene, with the
    scene that gave training tiles over it (another file of the same ground), if any. Each
    scene's header is read once."""
    params = manifest.params or {}
    scene_jobs = [j for j in manifest.jobs if j.image]
    footprints: dict[str, object | None] = {}
    held = []
    for job in scene_jobs:
        with open_raster(job.image, "a scene of the manifest") as ds:
            footprints[job.id] = _footprint(ds)
            for split in (s for s in splits if job.tiles_in(s)):
                windows = _windows(job, ds, params, split)
                held.extend((split, job, w, name, ds.transform, ds.crs) for w, name in windows)
    out = []
    for split, job, window, name, transform, crs in held:
        here = _window_footprint(window, transform, crs)
        under = None
        if here is not None:
            trained = (j for j in scene_jobs if j.image != job.image and j.tiles_in("train"))
            under = next((j.id for j in trained if _covers(footprints.get(j.id), here)), None)
        block = HeldOutBlock(f"{job.id}-{name}", job.image, job.labels, window)
        out.append(SplitBlock(split, block, _vector_labels(job), under))
    return out


def _covers(footprint, here) -> bool:
    return footprint is not None and here.intersection(footprint).area > _SLIVER * here.area


def _windows(job: Job, ds, params: dict, split: str) -> list[tuple[Window, str]]:
    """The source pixel windows of ``job``'s ``split`` blocks (its whole scene where it went to
    ``split`` whole), each with its name (the split, and the block's row and column)."""
    if job.split != "block":
        return [(Window(0, 0, ds.width, ds.height), split)] if job.split == split else []
    block = int(params["split_block"])
    grid_h, grid_w = _grid_shape(job, ds, params)
    grid = BlockSplit(grid_h, grid_w, block, float(params["val"]), float(params["test"]), int(params["seed"]))
    sy, sx = ds.height / grid_h, ds.width / grid_w  # source pixels per grid pixel
    out = []
    for r, c in zip(*np.nonzero(grid.grid == split)):
        rows = (math.floor(r * block * sy), min(ds.height, math.ceil(min((r + 1) * block, grid_h) * sy)))
        cols = (math.floor(c * block * sx), min(ds.width, math.ceil(min((c + 1) * block, grid_w) * sx)))
        out.append((Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0]), f"{split}-r{r}c{c}"))
    return out


def held_out_blocks(manifest: Manifest, split: str = "val") -> list[HeldOutBlock]:
    """The ``split`` blocks (or whole scenes) labelled by footprints that no scene with training
    tiles covers."""
    kept = {}
    for b in split_blocks(manifest, (split,)):
        if b.labelled and b.under is None:  # a scene tiled at several GSDs has one set of blocks: kept once
            kept.setdefault((b.block.image, tuple(b.block.window.flatten())), b.block)
    return list(kept.values())


def shared_ground(manifest: Manifest) -> list[str]:
    """What to say of held-out splits whose ground another file trained on, one line per split."""
    try:
        every = split_blocks(manifest, ("val", "test"))
    except RoofsegError:  # a scene no longer readable: the tiles are written; nothing to judge by
        return []
    lines = []
    for split in ("val", "test"):
        blocks = [b for b in every if b.split == split]
        shared = [b for b in blocks if b.under]
        if shared:
            first = shared[0]
            lines.append(
                f"{len(shared)} of the {len(blocks)} {split} blocks lie on ground another scene gave training tiles "
                f"of ({first.block.name} under {first.under}: the same place in another file), so {split} scores "
                "flatter the model there; tile each place from one file (tile --gsd 0.15,0.3 for several GSDs)"
            )
    return lines


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
    with open_raster(block.image, "a scene of the manifest") as src:
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
    blocks = held_out_blocks(read_manifest(manifest), split)
    if not blocks:
        raise RoofsegError(
            manifest,
            f"has no {split} block to score on: none of its {split} blocks is labelled by footprints and off every "
            "scene that gave training tiles (tile with a --val share)",
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [str(write_block(b, folder)) for b in blocks], [b.labels for b in blocks]
