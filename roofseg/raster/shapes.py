"""Polygons indexed by bounding box and burned onto pixel windows: what vector labels, review
labels and the synthetic sample share."""

from __future__ import annotations

import numpy as np
from rasterio.features import rasterize

from roofseg.raster.windows import grid_bounds

POLYGONAL = ("Polygon", "MultiPolygon")


class ShapeIndex:
    """Polygons in map coordinates with their bounding boxes, burned window by window.

    A window burns only the shapes whose bounding box meets it, so its cost does not grow with
    the number of shapes.
    """

    def __init__(self, geoms: list[dict]):
        self.geoms = geoms
        self.bboxes = np.array([bbox(g) for g in geoms]).reshape(-1, 4)  # minx, miny, maxx, maxy

    def hits(self, left: float, bottom: float, right: float, top: float) -> np.ndarray:
        """Which shapes' bounding boxes meet the given box."""
        b = self.bboxes
        return (b[:, 0] < right) & (b[:, 2] > left) & (b[:, 1] < top) & (b[:, 3] > bottom)

    def burn(self, transform, height: int, width: int, values=None, dtype: str = "uint8") -> np.ndarray:
        """Rasterize onto a ``height`` × ``width`` window with ``transform``: 1 (or ``values[i]``) inside shape i."""
        left, bottom, right, top = grid_bounds(transform, height, width)
        hit = np.flatnonzero(self.hits(left, bottom, right, top))
        if not len(hit):
            return np.zeros((height, width), dtype)
        shapes = [(self.geoms[i], 1 if values is None else int(values[i])) for i in hit]
        return rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype=dtype)


def bbox(geom: dict) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a GeoJSON-like polygon or multipolygon."""
    rings = geom["coordinates"] if geom["type"] == "Polygon" else [r for p in geom["coordinates"] for r in p]
    xy = np.concatenate([np.asarray(r, dtype=np.float64)[:, :2] for r in rings])
    return xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()
