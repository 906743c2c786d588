"""Buildings already mapped (an OSM extract, a city's footprints): predicted buildings that overlap
one are left out, or kept and marked, so a mapper sees only what is new."""

from __future__ import annotations

import os

import shapely
from shapely import STRtree
from shapely.geometry import shape

from roofseg.prediction.vector.geometry import valid_polygonal
from roofseg.raster.labels import read_footprints

EXISTING_OVERLAP = 0.3


class ExistingBuildings:
    """The buildings of a vector file (any roofseg reads, OSM extracts included, any CRS) in ``crs``,
    in an STRtree: a predicted building is mapped where it overlaps one by at least
    ``min_overlap`` of the smaller of the two's area."""

    def __init__(
        self, path: str | os.PathLike, crs, min_overlap: float = EXISTING_OVERLAP, labels_crs: str | None = None
    ):
        self.path = os.fspath(path)
        self.min_overlap = min_overlap
        polys = [
            valid_polygonal(shape(g)) for g in read_footprints(self.path, crs, labels_crs, ignore_non_polygons=True)
        ]
        self.polys = [p for p in polys if not p.is_empty]
        self.tree = STRtree(self.polys)

    def __len__(self) -> int:
        return len(self.polys)

    def mapped(self, geom: shapely.Geometry) -> bool:
        """Whether ``geom`` (in the same CRS) is a building already mapped."""
        for j in self.tree.query(geom):
            other = self.polys[int(j)]
            smaller = min(geom.area, other.area)
            if smaller > 0 and geom.intersection(other).area >= self.min_overlap * smaller:
                return True
        return False
