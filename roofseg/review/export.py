"""The accepted buildings of a review, written by the vector writer of ``predict`` (one format
seam): .osm for JOSM, GeoJSON or GeoPackage, in longitude and latitude, mapped ones left out where
``existing`` names the map, as ``predict --existing`` does."""

from __future__ import annotations

import os

import shapely.geometry
from rasterio.crs import CRS

from roofseg.prediction.vector.existing import ExistingBuildings
from roofseg.prediction.vector.vectorize import Building as Footprint
from roofseg.prediction.vector.vectorize import write_buildings
from roofseg.review.queue import Building

FORMATS = (".osm", ".geojson", ".gpkg")
LONLAT = CRS.from_epsg(4326)


def write_accepted(
    buildings: list[Building], decisions: dict[str, str], out: str | os.PathLike, existing: str | None = None
) -> int:
    """Write the accepted ``buildings`` to ``out`` (its suffix one of :data:`FORMATS`); how many."""
    found = [
        Footprint(b.lonlat, b.area_m2, b.confidence)
        for b in buildings
        if decisions.get(b.key) == "accept" and shapely.geometry.shape(b.lonlat).is_valid
    ]
    known = ExistingBuildings(existing, LONLAT) if existing else None
    return write_buildings(found, out, LONLAT, "accepted", True, 0.0, known, False, 0.0, 0.0)
