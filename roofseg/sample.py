"""The built-in sample: a synthetic georeferenced scene with rooftops, its mask and footprints.

Everything is a function of the seed. The buildings, roads and trees are vector shapes laid
out once for the whole scene; pixels are rendered band of rows by band of rows, so a scene of
any size is written in bounded memory and every band agrees with its neighbours.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from tqdm import tqdm

from roofseg.atomic import atomic_output
from roofseg.errors import RoofsegError
from roofseg.raster.shapes import ShapeIndex
from roofseg.raster.windows import tile_transform

ORIGIN = (400_000.0, 5_300_000.0)  # UTM 33N, metres: upper-left corner of the scene
BLOCK = 256  # rows rendered at a time, and the GeoTIFF block size
LOT = 30.0  # metres: one building at most per lot
ROOF_COLOURS = np.array(
    [  # terracotta, dark grey, light grey, blue metal, brown, off-white, green metal
        (172, 84, 62),
        (74, 74, 80),
        (178, 176, 170),
        (88, 108, 138),
        (122, 92, 72),
        (214, 208, 196),
        (84, 118, 96),
    ],
    np.float32,
)
GRASS, SOIL, ASPHALT, TREE = (86, 112, 62), (142, 124, 94), (96, 96, 102), (42, 74, 40)


@dataclass(frozen=True)
class Layout:
    """The vector content of a scene: map-coordinate polygons and per-roof drawing parameters."""

    roofs: ShapeIndex  # GeoJSON polygons, indexed by bounding box
    shadows: ShapeIndex
    trees: ShapeIndex
    roads: ShapeIndex
    roof_colour: np.ndarray  # (n, 3)
    roof_centre: np.ndarray  # (n, 2) map x, y
    roof_angle: np.ndarray  # (n,) radians of the ridge
    waves: np.ndarray  # (k, 4): ground texture sinusoids (kx, ky, phase, amplitude)
    border: np.ndarray  # (4,) nodata border profile parameters


def _polygon(points: np.ndarray) -> dict:
    ring = [tuple(map(float, p)) for p in points] + [tuple(map(float, points[0]))]
    return {"type": "Polygon", "coordinates": [ring]}


def _footprint(rng: np.random.Generator, w: float, h: float) -> np.ndarray:
    """Corners of a rectangle or an L-shape of w × h metres centred on 0, counter-clockwise."""
    x0, x1, y0, y1 = -w / 2, w / 2, -h / 2, h / 2
    if rng.random() < 0.4:
        cx, cy = x1 - w * rng.uniform(0.35, 0.6), y1 - h * rng.uniform(0.35, 0.6)
        return np.array([(x0, y0), (x1, y0), (x1, cy), (cx, cy), (cx, y1), (x0, y1)])
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def layout(height: int, width: int, pixel: float, seed: int) -> Layout:
    """Lay out roads, lots, buildings with shadows, and trees for a scene of the given size."""
    rng = np.random.default_rng(seed)
    ox, oy = ORIGIN
    span_x, span_y = width * pixel, height * pixel
    border = np.array(
        [rng.uniform(0.02, 0.06), rng.uniform(0.0, 2 * math.pi), rng.uniform(2, 5), rng.uniform(0.01, 0.03)]
    )
    border_max_m = (border[0] + border[3]) * span_x

    roads, road_x, road_y = [], [], []
    for axis, span in (("x", span_x), ("y", span_y)):
        for t in np.arange(rng.uniform(60, 160), span, rng.uniform(180, 260)):
            half = rng.uniform(4, 7)
            (road_x if axis == "x" else road_y).append((t - half, t + half))
            if axis == "x":
                pts = np.array(
                    [
                        (ox + t - half, oy),
                        (ox + t + half, oy),
                        (ox + t + half, oy - span_y),
                        (ox + t - half, oy - span_y),
                    ]
                )
            else:
                pts = np.array(
                    [
                        (ox, oy - t + half),
                        (ox + span_x, oy - t + half),
                        (ox + span_x, oy - t - half),
                        (ox, oy - t - half),
                    ]
                )
            roads.append(_polygon(pts))

    def on_road(a0: float, a1: float, spans: list[tuple[float, float]]) -> bool:
        return any(a0 < s1 + 2 and a1 > s0 - 2 for s0, s1 in spans)

    roofs, shadows, trees, colours, centres, angles = [], [], [], [], [], []
    sun = np.array([1.0, -1.0]) / math.sqrt(2)  # shadows fall to the south-east
    for j in range(int(span_y // LOT)):
        for i in range(int(span_x // LOT)):
            lx, ly = i * LOT, j * LOT  # lot corner, metres from the origin (y downwards)
            if lx < border_max_m + 4 or on_road(lx, lx + LOT, road_x) or on_road(ly, ly + LOT, road_y):
                continue
            if rng.random() < 0.75:
                w, h = rng.uniform(8, 20), rng.uniform(7, 15)
                angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.35)
                local = _footprint(rng, w, h)
                radius = np.hypot(*np.abs(local).max(axis=0))
                room = LOT / 2 - radius - 2.5
                if room < 0:
                    continue
                c, s = math.cos(angle), math.sin(angle)
                centre = np.array([ox + lx + LOT / 2, oy - ly - LOT / 2]) + rng.uniform(-room, room, 2)
                pts = local @ np.array([[c, s], [-s, c]]) + centre
                roofs.append(_polygon(pts))
                shadows.append(_polygon(pts + sun * rng.uniform(1.5, 3.0)))
                colours.append(ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))] * rng.uniform(0.85, 1.12))
                centres.append(centre)
                angles.append(angle if w >= h else angle + math.pi / 2)
            for _ in range(rng.poisson(0.8)):
                r = rng.uniform(1.5, 4.0)
                edge = rng.choice([0.0, LOT])  # trees stand at the lot's edge, clear of the house
                tx, ty = (
                    (lx + edge, ly + rng.uniform(0, LOT))
                    if rng.random() < 0.5
                    else (lx + rng.uniform(0, LOT), ly + edge)
                )
                a = np.linspace(0, 2 * math.pi, 14, endpoint=False)
                trees.append(_polygon(np.c_[ox + tx + r * np.cos(a), oy - ty + r * np.sin(a)]))
    k = 6
    waves = np.c_[rng.normal(0, 1 / 60, (k, 2)), rng.uniform(0, 2 * math.pi, k), rng.uniform(0.2, 0.5, k)]
    return Layout(
        ShapeIndex(roofs),
        ShapeIndex(shadows),
        ShapeIndex(trees),
        ShapeIndex(roads),
        np.array(colours, np.float32).reshape(-1, 3),
        np.array(centres).reshape(-1, 2),
        np.array(angles),
        waves,
        border,
    )


def render(lay: Layout, transform: Affine, row: int, height: int, width: int, scene_width: int, seed: int):
    """Pixels of rows [row, row+height) of the scene: (image (3, h, w) uint8, mask (h, w) uint8)."""
    t = tile_transform(transform, row, 0)
    rows, cols = np.mgrid[row : row + height, 0:width].astype(np.float32)
    x = transform.c + (cols + 0.5) * transform.a  # pixel-centre map coordinates
    y = transform.f + (rows + 0.5) * transform.e
    field = sum(a * np.sin(kx * x + ky * y + p) for kx, ky, p, a in lay.waves)
    mix = np.clip(0.5 + field, 0, 1)[None]
    image = np.array(GRASS, np.float32)[:, None, None] * mix + np.array(SOIL, np.float32)[:, None, None] * (1 - mix)
    noise_rng = np.random.default_rng([seed, row])  # per band of rows: same pixels whatever the caller
    image *= 1 + noise_rng.normal(0, 0.07, (1, height, width)).astype(np.float32)

    road = lay.roads.burn(t, height, width).astype(bool)
    image[:, road] = np.array(ASPHALT, np.float32)[:, None] * (1 + noise_rng.normal(0, 0.04, road.sum()))
    tree = lay.trees.burn(t, height, width).astype(bool)
    image[:, tree] = np.array(TREE, np.float32)[:, None] * (1 + noise_rng.normal(0, 0.12, tree.sum()))
    shadow = lay.shadows.burn(t, height, width).astype(bool)
    image[:, shadow] *= 0.5

    ids = lay.roofs.burn(t, height, width, values=np.arange(1, len(lay.roofs.geoms) + 1), dtype="int32")
    roof = ids > 0
    if roof.any():
        k = ids[roof] - 1
        dx, dy = x[roof] - lay.roof_centre[k, 0], y[roof] - lay.roof_centre[k, 1]
        across = -dx * np.sin(lay.roof_angle[k]) + dy * np.cos(lay.roof_angle[k])
        shade = np.where(across > 0, 1.0, 0.78)  # two slopes of a gabled roof, lit differently
        image[:, roof] = lay.roof_colour[k].T * shade * (1 + noise_rng.normal(0, 0.03, roof.sum()))

    image = np.clip(np.rint(image), 1, 255).astype(np.uint8)  # 0 is reserved for nodata
    amp, phase, freq, amp2 = lay.border
    border = scene_width * (amp + amp2 * np.sin(phase + freq * 2 * math.pi * (rows[:, 0] / max(scene_width, 1))))
    nodata = cols < border[:, None]
    image[:, nodata] = 0
    mask = roof.astype(np.uint8)
    mask[nodata] = 0
    return image, mask


def write_sample(
    out_dir: str | os.PathLike,
    size: int = 2048,
    pixel: float = 0.3,
    crs: str = "EPSG:32633",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``sample_image.tif``, ``sample_mask.tif`` and ``sample_labels.geojson`` to ``out_dir``."""
    if size < 64:
        raise RoofsegError(None, f"--size must be at least 64 px, got {size}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RoofsegError(out, f"cannot create the output folder ({exc.strerror})") from None
    crs_obj = CRS.from_user_input(crs)
    if not crs_obj.is_projected:
        raise RoofsegError(None, f"--crs must be a projected CRS in metres, got {crs}")
    transform = Affine(pixel, 0, ORIGIN[0], 0, -pixel, ORIGIN[1])
    lay = layout(size, size, pixel, seed)
    paths = {
        "image": out / "sample_image.tif",
        "mask": out / "sample_mask.tif",
        "labels": out / "sample_labels.geojson",
    }
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        crs=crs_obj,
        transform=transform,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        compress="deflate",
    )
    with atomic_output(paths["image"]) as img_tmp, atomic_output(paths["mask"]) as mask_tmp:
        with (
            rasterio.open(img_tmp, "w", count=3, dtype="uint8", nodata=0, photometric="RGB", **profile) as img,
            rasterio.open(mask_tmp, "w", count=1, dtype="uint8", **profile) as msk,
        ):
            for row in tqdm(range(0, size, BLOCK), desc="sample", unit="band", disable=not progress):
                h = min(BLOCK, size - row)
                image, mask = render(lay, transform, row, h, size, size, seed)
                window = rasterio.windows.Window(0, row, size, h)
                img.write(image, window=window)
                msk.write(mask, 1, window=window)
    epsg = crs_obj.to_epsg()
    geojson = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs_obj.to_wkt()}},
        "features": [
            {"type": "Feature", "properties": {"id": i}, "geometry": g} for i, g in enumerate(lay.roofs.geoms)
        ],
    }
    with atomic_output(paths["labels"]) as tmp:
        tmp.write_text(json.dumps(geojson))
    return paths
