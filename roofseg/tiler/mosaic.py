"""Dense settlements pasted from real roofs: training scenes of small houses touching on all sides.

Copy-paste augmentation (Ghiasi et al., CVPR 2021) made for the base's gap: its labelled places
hold few blocks where small houses share every wall, as in Dhaka (a place it must never train on).
Real roofs are cut from labelled scenes (each nearly rectangular footprint, warped axis-aligned,
its inner two thirds kept, since OSM outlines sit a little off the roofs), and street blocks are
split again and again into house lots (a guillotine cut, lots of a drawn median area), each lot
filled with a roof of similar colour to its block's, so that neighbours part by faint walls as in
an old town. Some lots get a darker wall line along an edge. The scene is resampled to half its
resolution and back, the look of 0.3 m imagery read at 0.15 m. Each lot is one footprint.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import shape
from tqdm import tqdm

from roofseg.atomic import atomic_output
from roofseg.errors import RoofsegError
from roofseg.raster.ground import ground_pixel_size
from roofseg.raster.labels import read_footprints
from roofseg.raster.scene import Scene

CRS_EPSG = 32636  # a projected CRS in metres; the scenes are of no real place
ORIGIN = (500_000.0, 100_000.0)
PLACE = "densemosaic"  # the place the tiler's balanced draw gives these scenes (contracts.manifest.place_of)


@dataclass(frozen=True)
class Roofs:
    """Roofs cut from labelled scenes: axis-aligned RGB patches, each patch's mean colour, and
    ground pixels drawn from the same scenes (for the alleys)."""

    patches: list[np.ndarray]
    colours: np.ndarray  # (n, 3)
    ground: np.ndarray  # (k, 3)


def cut_roofs(image: Path, labels: Path, rng: np.random.Generator, limit: int = 400) -> Roofs:
    """Up to ``limit`` nearly rectangular roofs of ``image`` (footprints ``labels``, any CRS), at least
    1.5 m across and at most 200 m² (house-sized), each warped axis-aligned in ``image``'s pixels."""

    with Scene(image) as scene:  # the tiler's reader: uint8 RGB (stretched, one band replicated), nodata 0
        metres = ground_pixel_size(scene.crs, scene.transform, scene.height, scene.width) or abs(scene.transform.a)
        pixels, _ = scene.read(0, 0, scene.height, scene.width)
        to_pixel = ~scene.transform
        features = read_footprints(str(labels), scene.crs)  # the tiler's labels path: in the scene's CRS
    patches = []
    for k in rng.permutation(len(features)):
        footprint = shape(features[k])
        if footprint.geom_type != "Polygon" or footprint.is_empty:
            continue
        rect = footprint.minimum_rotated_rectangle
        if rect.geom_type != "Polygon" or footprint.area < 0.85 * rect.area:
            continue  # L-shapes, courtyards: not one roof face
        corners = np.array([to_pixel @ c for c in list(rect.exterior.coords)[:3]], np.float32)
        w, h = np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[2] - corners[1])
        if min(w, h) * metres < 1.5 or w * h * metres**2 > 200 or min(w, h) < 6:
            continue
        to_axis = cv2.getAffineTransform(corners, np.float32([[0, 0], [w, 0], [w, h]]))
        patch = cv2.warpAffine(pixels, to_axis, (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mh, mw = patch.shape[0] // 6, patch.shape[1] // 6
        patch = patch[mh : patch.shape[0] - mh, mw : patch.shape[1] - mw]
        r, g, b = patch.reshape(-1, 3).astype(np.float32).mean(0)
        if (g > r + 5 and g > b + 5) or patch.mean() < 5:
            continue  # a tree over the roof, or nodata
        patches.append(patch)
        if len(patches) >= limit:
            break
    rows = rng.integers(0, pixels.shape[0], 4000)
    cols = rng.integers(0, pixels.shape[1], 4000)
    ground = pixels[rows, cols].astype(np.float32)
    ground = ground[ground.sum(1) > 15]  # not nodata
    colours = np.array([p.reshape(-1, 3).mean(0) for p in patches], np.float32).reshape(-1, 3)
    return Roofs(patches, colours, ground)


def joined(roofs: list[Roofs]) -> Roofs:
    """All roofs of several scenes as one set."""
    return Roofs(
        [p for r in roofs for p in r.patches],
        np.concatenate([r.colours for r in roofs]),
        np.concatenate([r.ground for r in roofs]),
    )


def house_lots(
    x0: float, y0: float, x1: float, y1: float, rng: np.random.Generator, median_m2: float
) -> list[tuple[float, float, float, float]]:
    """A street block (metres) cut into house lots: each piece is cut across its longer side at 30–70 %
    until it is under an area drawn around ``median_m2`` or under 4 m on both sides."""
    w, h = x1 - x0, y1 - y0
    if w * h <= median_m2 * math.exp(rng.normal(0, 0.6)) or max(w, h) < 4.0:
        return [(x0, y0, x1, y1)]
    f = rng.uniform(0.3, 0.7)
    if w >= h:
        xm = x0 + f * w
        return house_lots(x0, y0, xm, y1, rng, median_m2) + house_lots(xm, y0, x1, y1, rng, median_m2)
    ym = y0 + f * h
    return house_lots(x0, y0, x1, ym, rng, median_m2) + house_lots(x0, ym, x1, y1, rng, median_m2)


def settlement(
    roofs: Roofs, size: int, pixel: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """One scene: an RGB uint8 (size, size, 3) image and its houses as pixel boxes (c0, r0, c1, r1)."""

    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = roofs.ground[rng.integers(len(roofs.ground))] if len(roofs.ground) else 128.0
    canvas += rng.normal(0, 6, (size, size, 1))
    span = size * pixel
    lots: list[tuple[tuple[float, float, float, float], np.ndarray]] = []
    y = -rng.uniform(0, 5)
    while y < span:
        depth, x = rng.uniform(15, 50), -rng.uniform(0, 5)
        while x < span:
            width = rng.uniform(15, 60)
            # the block's palette: the roofs nearest in colour to one drawn at random
            ref = roofs.colours[rng.integers(len(roofs.colours))]
            palette = np.argsort(np.linalg.norm(roofs.colours - ref, axis=1))[: rng.integers(20, 200)]
            median = float(rng.choice([12.0, 20.0, 35.0]))
            lots += [(lot, palette) for lot in house_lots(x, y, x + width, y + depth, rng, median)]
            x += width + (rng.uniform(0.6, 2.5) if rng.random() < 0.5 else 0.0)  # an alley, or a shared wall
        y += depth + rng.uniform(0.6, 2.5)
    houses = []
    for (x0, y0, x1, y1), palette in lots:
        c0, r0 = max(round(x0 / pixel), 0), max(round(y0 / pixel), 0)
        c1, r1 = min(round(x1 / pixel), size), min(round(y1 / pixel), size)
        if c1 - c0 < 4 or r1 - r0 < 4:
            continue
        cw, ch = c1 - c0, r1 - r0
        best, best_err = None, math.inf
        for k in rng.choice(palette, 12):  # of 12 roofs of the palette, the one whose shape fits best
            patch = roofs.patches[k]
            if (patch.shape[1] > patch.shape[0]) != (cw > ch):
                patch = np.rot90(patch)
            err = abs(math.log(patch.shape[1] / patch.shape[0] * ch / cw))
            if err < best_err:
                best, best_err = patch, err
        patch = cv2.resize(np.ascontiguousarray(best), (cw, ch), interpolation=cv2.INTER_AREA).astype(np.float32)
        if rng.random() < 0.5:
            patch = patch[::-1]
        if rng.random() < 0.4:  # a wall, or its shadow, along one or two edges
            shade = rng.uniform(0.5, 0.8)
            patch[:, :1] *= shade
            if rng.random() < 0.5:
                patch[:1] *= shade
        canvas[r0:r1, c0:c1] = patch
        houses.append((c0, r0, c1, r1))
    half = cv2.resize(canvas, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    canvas = cv2.resize(half, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(canvas, 0, 255).astype(np.uint8), houses


def write_mosaics(
    scenes: list[tuple[Path, Path]],
    out_dir: str | Path,
    count: int = 8,
    size: int = 1024,
    pixel: float = 0.15,
    seed: int = 0,
    progress: bool = False,
) -> list[Path]:
    """Write ``count`` dense settlements of ``size``² pixels of ``pixel`` m, pasted from the roofs of
    ``scenes`` ((image, footprints) pairs), as ``densemosaic_blockK_image.tif`` and
    ``densemosaic_blockK_labels.geojson`` in ``out_dir``; return the image paths. Every file is
    written under a temporary name first."""

    rng = np.random.default_rng(seed)
    roofs = joined([cut_roofs(Path(image), Path(labels), rng) for image, labels in scenes])
    if not roofs.patches:
        where = scenes[0][1] if len(scenes) == 1 else f"{len(scenes)} label files"
        raise RoofsegError(where, "no roof to paste: no nearly rectangular footprint of 1.5 m to 200 m²")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for k in tqdm(range(count), desc="mosaics", unit="scene", disable=not progress):
        image, houses = settlement(roofs, size, pixel, rng)
        ox, oy = ORIGIN[0] + 1000.0 * k, ORIGIN[1]  # scenes side by side, never overlapping
        features = [
            {
                "type": "Feature",
                "properties": {"building": "yes"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [ox + c * pixel, oy - r * pixel]
                            for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))
                        ]
                    ],
                },
            }
            for c0, r0, c1, r1 in houses
        ]
        stem = out / f"{PLACE}_block{k}"
        collection = {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{CRS_EPSG}"}},
            "features": features,
        }
        with atomic_output(f"{stem}_labels.geojson") as tmp:
            tmp.write_text(json.dumps(collection))
        grid = dict(width=size, height=size, crs=CRS.from_epsg(CRS_EPSG), transform=Affine(pixel, 0, ox, 0, -pixel, oy))
        profile = dict(driver="GTiff", count=3, dtype="uint8", tiled=True, compress="deflate", **grid)
        with atomic_output(f"{stem}_image.tif") as tmp, rasterio.open(tmp, "w", **profile) as ds:
            ds.write(np.moveaxis(image, -1, 0))
        images.append(Path(f"{stem}_image.tif"))
    return images
