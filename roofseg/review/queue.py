"""The buildings of a review: each footprint of the given files, with the scene it lies on, in
longitude and latitude for the map, ordered doubtful first (lowest confidence) or largest first."""

from __future__ import annotations

import os
from dataclasses import dataclass

import fiona
import numpy as np
import shapely
import shapely.geometry
from pyproj import CRS, Transformer

from roofseg.contracts.review import building_key
from roofseg.errors import RoofsegError, first_line
from roofseg.raster.ground import GroundArea
from roofseg.raster.scene import open_raster

ORDERS = ("confidence", "area")


@dataclass(frozen=True)
class Pair:
    """A scene and the footprints predicted on it (or any footprints of it)."""

    scene: str
    footprints: str


@dataclass(frozen=True)
class Building:
    """One footprint to review: ``key`` (pair index and feature index), its outline in the file's
    CRS and in lon/lat, ground area and confidence (None where the file has none)."""

    key: str
    pair: int
    geometry: shapely.Geometry
    lonlat: dict
    area_m2: float
    confidence: float | None
    crs: str


def read_pairs(pairs: list[Pair]) -> list[Building]:
    """Every footprint of ``pairs``; a scene or file that cannot be read is a RoofsegError naming it."""
    out = []
    for k, pair in enumerate(pairs):
        open_raster(pair.scene, "a scene").close()  # said now, at start, not at the first map tile
        try:
            with fiona.open(pair.footprints) as src:
                crs = CRS.from_user_input(src.crs_wkt or "EPSG:4326")
                features = list(src)
        except (fiona.errors.FionaError, OSError, ValueError) as exc:
            raise RoofsegError(pair.footprints, f"cannot be read as footprints ({first_line(exc)})") from None
        to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        area_of = GroundArea(crs)
        for i, feature in enumerate(features):
            if feature.geometry is None:
                continue
            geom = shapely.geometry.shape(feature.geometry)
            if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
                continue
            props = dict(feature.properties or {})
            lonlat = shapely.transform(geom, lambda xy: _lonlat(to_lonlat, xy))
            out.append(
                Building(
                    building_key(k, i),
                    k,
                    geom,
                    shapely.geometry.mapping(lonlat),
                    float(props.get("area_m2") or area_of(geom)),
                    float(props["confidence"]) if props.get("confidence") is not None else None,
                    crs.to_wkt(),
                )
            )
    if not out:
        raise RoofsegError(pairs[0].footprints if len(pairs) == 1 else None, "holds no building to review")
    return out


def _lonlat(transformer: Transformer, xy):
    lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def ordered(buildings: list[Building], order: str = "confidence") -> list[Building]:
    """Doubtful first (lowest confidence; buildings without one last), or largest first."""
    if order not in ORDERS:
        raise RoofsegError("--order", f"is one of {', '.join(ORDERS)}, not {order!r}")
    if order == "area":
        return sorted(buildings, key=lambda b: -b.area_m2)
    return sorted(buildings, key=lambda b: (b.confidence is None, b.confidence or 0.0, b.key))


def feature(b: Building, decision: str | None) -> dict:
    """A building as a GeoJSON feature for the page."""
    return {
        "type": "Feature",
        "id": b.key,
        "geometry": b.lonlat,
        "properties": {
            "key": b.key,
            "pair": b.pair,
            "area_m2": round(b.area_m2, 1),
            "confidence": None if b.confidence is None else round(b.confidence, 3),
            "decision": decision,
        },
    }


def paths_of(pairs: list[Pair]) -> list[str]:
    return [os.path.abspath(p.footprints) for p in pairs]
