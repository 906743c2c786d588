"""Buildings already mapped (an OSM extract, a city's footprints): predicted buildings the map
already has are left out, or kept and marked, so a mapper sees only what is new.

The rule, measured on the predicted building: it is mapped when mapped buildings cover at least
``min_overlap`` (``--existing-overlap``) of its own area, and nothing of it is new. Whatever the
cover, the part of a prediction that mapped buildings reaching its outline leave uncovered is what
is new, written alone (slivers of the map's misregistration, narrower than two pixels, trimmed
off): a mapped house traced with its new annex leaves the annex (status extends), and a new hall
traced with the mapped house beside it (the house a quarter of it) leaves the hall (status new),
never the house again. A mapped building wholly inside a prediction, away from its outline (a shed
on a new hall's roof), takes nothing out of it and never hides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import shapely
from rasterio.crs import CRS
from shapely import STRtree
from shapely.geometry import shape

from roofseg.prediction.vector.geometry import valid_polygonal
from roofseg.raster.ground import GroundArea
from roofseg.raster.labels import read_footprints

EXISTING_OVERLAP = 0.3
CRS_OPTION = "--existing-crs"  # predict's option that states the file's CRS


def check_existing(path: str | os.PathLike, crs: str | None = None) -> int:
    """Read the file of mapped buildings once before any scene is predicted, so a file that is
    missing, of the wrong kind or in a CRS it does not state is said at once; returns how many
    buildings it holds."""
    return len(read_footprints(os.fspath(path), None, crs, ignore_non_polygons=True, crs_option=CRS_OPTION))


NEW, MAPPED, EXTENDS = "new", "mapped", "extends"  # a prediction's status against the map


@dataclass(frozen=True)
class Verdict:
    """What the map says of one predicted building: its status, and what of it to write as new
    (the whole building, its part the map lacks, or None)."""

    status: str
    new: shapely.Geometry | None


class ExistingBuildings:
    """The buildings of a vector file (any roofseg reads, OSM extracts included, any CRS) in ``crs``,
    in an STRtree, judged by the rule of this module."""

    def __init__(
        self, path: str | os.PathLike, crs, min_overlap: float = EXISTING_OVERLAP, labels_crs: str | None = None
    ):
        self.path = os.fspath(path)
        self.min_overlap = min_overlap
        self.area_of = GroundArea(CRS.from_user_input(crs) if crs else None)
        self.polys = _footprints(
            self.path, _stat(self.path), CRS.from_user_input(crs).to_wkt() if crs else None, labels_crs
        )
        self.tree = STRtree(self.polys)

    def __len__(self) -> int:
        return len(self.polys)

    def covered(self, geom: shapely.Geometry, inside_margin: float = 0.0) -> tuple[float, shapely.Geometry]:
        """The share of ``geom``'s area that mapped buildings cover, and the part left by those that
        reach within ``inside_margin`` of its outline (those wholly inside it, further in, leave it whole)."""
        near = [self.polys[int(j)] for j in self.tree.query(geom)]
        if not near or geom.area <= 0:
            return 0.0, geom
        cover = shapely.union_all([geom.intersection(p) for p in near])
        core = geom.buffer(-inside_margin) if inside_margin > 0 else None
        reaching = [p for p in near if core is None or not core.contains(p)]
        taken = shapely.union_all([geom.intersection(p) for p in reaching]) if reaching else None
        rest = valid_polygonal(geom.difference(taken)) if taken is not None else geom
        return cover.area / geom.area, rest

    def mapped(self, geom: shapely.Geometry) -> bool:
        """Whether ``geom`` (in the same CRS) is a building already mapped."""
        return self.covered(geom)[0] >= self.min_overlap

    def judge(self, geom: shapely.Geometry, min_area: float, pixel: float) -> Verdict:
        """``geom``'s status and what of it is new: mapped (nothing new), extends (mapped, with a new
        part of at least ``min_area`` m² wider than two pixels of ``pixel`` CRS units), or new (the
        part that mapped buildings reaching its outline leave; the whole where none do)."""
        share, rest = self.covered(geom, 2 * pixel)
        if rest is geom:
            return Verdict(NEW, geom) if share < self.min_overlap else Verdict(MAPPED, None)
        rest = valid_polygonal(rest.buffer(-pixel).buffer(pixel).intersection(rest))
        parts = [p for p in getattr(rest, "geoms", [rest]) if not p.is_empty and self.area_of(p) >= max(min_area, 1e-9)]
        if not parts:
            return Verdict(MAPPED, None)
        new = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        return Verdict(NEW if share < self.min_overlap else EXTENDS, new)


def _stat(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (None, None)
    return (st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _footprints(path: str, stat: tuple, crs: str | None, labels_crs: str | None) -> list:
    """The file's footprints in ``crs``, valid: read once per file and CRS however many scenes use
    them (``stat`` keys the cache, so a changed file is read again)."""
    to_crs = CRS.from_wkt(crs) if crs else None
    geoms = read_footprints(path, to_crs, labels_crs, ignore_non_polygons=True, crs_option=CRS_OPTION)
    polys = [valid_polygonal(shape(g)) for g in geoms]
    return [p for p in polys if not p.is_empty]
