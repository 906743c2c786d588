"""Polygons indexed by bounding box and burned onto pixel windows: what vector labels, review
labels and the synthetic sample share."""

from __future__ import annotations

import numpy as np
from rasterio.features import rasterize

from roofseg.raster.windows import grid_bounds, tile_transform

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


class FootprintLabels:
    """Footprints burned onto a scene's pixel grid (``transform``): the roof of a window and its
    buildings one id each. What vector labels and a review's labels answer alike."""

    def __init__(self, geoms: list[dict], transform):
        self.index = ShapeIndex(geoms)
        self.transform = transform

    @property
    def geoms(self) -> list[dict]:
        """The footprints in the scene's CRS."""
        return self.index.geoms

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return self.index.burn(tile_transform(self.transform, row, col), height, width)

    def instances(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Each footprint burned with its own id (1, 2, …): touching buildings stay apart."""
        ids = np.arange(1, len(self.geoms) + 1)
        return self.index.burn(tile_transform(self.transform, row, col), height, width, values=ids, dtype="int32")

    def close(self) -> None:
        pass


def bbox(geom: dict) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a GeoJSON-like polygon or multipolygon."""
    rings = geom["coordinates"] if geom["type"] == "Polygon" else [r for p in geom["coordinates"] for r in p]
    xy = np.concatenate([np.asarray(r, dtype=np.float64)[:, :2] for r in rings])
    return xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()
