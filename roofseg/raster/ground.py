"""Measures on the ground, whatever the CRS: geodesic areas in square metres, pixel sizes in metres.

Areas taken in CRS units are wrong in the CRSs imagery comes in: web-mercator metres are
1/cos²(latitude) too large (4× at 60°), US-feet CRSs count square feet, and geographic CRSs
square degrees. Polygons are measured on the CRS's own ellipsoid instead (pyproj's Geod).
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer


class GroundArea:
    """Callable: a GeoJSON-like polygon (or a shapely geometry) in ``crs`` → its area in m².

    Without a CRS (a raster that is not georeferenced) the area is the planar one, in the grid's units.
    """

    def __init__(self, crs) -> None:
        self.geod: Geod | None = None
        self.to_lonlat: Transformer | None = None
        if crs is None:
            return
        crs = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
        self.geod = crs.get_geod() or Geod(ellps="WGS84")
        if not crs.is_geographic:
            self.to_lonlat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)

    def __call__(self, geom) -> float:
        geom = geom if isinstance(geom, shapely.Geometry) else shapely.geometry.shape(geom)
        if self.geod is None:
            return float(geom.area)
        if self.to_lonlat is not None:
            geom = shapely.transform(geom, lambda xy: np.column_stack(self.to_lonlat.transform(xy[:, 0], xy[:, 1])))
        return abs(float(self.geod.geometry_area_perimeter(geom)[0]))


def ground_pixel_sides(crs, transform, height: int, width: int) -> tuple[float, float] | None:
    """Metres on the ground of one pixel's two sides at the grid's centre, (across, down), measured
    on the CRS's ellipsoid: they differ where the CRS's units do (degrees away from the equator).
    None without a CRS."""
    if crs is None:
        return None
    crs = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    geod = crs.get_geod() or Geod(ellps="WGS84")
    col, row = width / 2, height / 2
    xs, ys = zip(*(transform @ (c, r) for c, r in ((col, row), (col + 1, row), (col, row + 1))))
    if not crs.is_geographic:
        xs, ys = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(xs, ys)
    _, _, across = geod.inv(xs[0], ys[0], xs[1], ys[1])
    _, _, down = geod.inv(xs[0], ys[0], xs[2], ys[2])
    return float(across), float(down)


def ground_pixel_size(crs, transform, height: int, width: int) -> float | None:
    """Metres on the ground of one pixel at the grid's centre: the geometric mean of its two sides
    (:func:`ground_pixel_sides`). Right where CRS units are not ground metres: web-mercator
    (1/cos(latitude) too large), US feet, and degrees. None without a CRS."""
    sides = ground_pixel_sides(crs, transform, height, width)
    return None if sides is None else float(np.sqrt(sides[0] * sides[1]))
