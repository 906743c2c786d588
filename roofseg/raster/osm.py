"""The buildings of an OSM XML file (``.osm``), read here rather than by GDAL's OSM driver, which
skips the negative ids of data not yet uploaded (JOSM's files, roofseg's own ``.osm`` outputs).

OSM's meaning of the ``building`` tag is followed: any value but ``no`` is a building
(``building=no`` marks canopies, demolished sites and the like). Closed ways are polygons;
multipolygon relations join their outer and inner member ways into rings, however the rings are
cut into ways. Elements JOSM marks ``action="delete"`` are gone. Ways whose nodes lie outside the
file (an extract's edge) are left out.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import polygonize

from roofseg.errors import RoofsegError


def is_building(tags: dict[str, str]) -> bool:
    """OSM's meaning: a ``building`` tag of any value but ``no``."""
    value = tags.get("building")
    return value is not None and value.strip().lower() != "no"


def read_osm_buildings(path: str | os.PathLike) -> list[shapely.Geometry]:
    """Every building of the OSM XML file at ``path`` as a shapely polygon in WGS84 (lon, lat)."""
    nodes: dict[int, tuple[float, float]] = {}
    ways: dict[int, tuple[list[int], dict[str, str]]] = {}
    relations: list[tuple[list[tuple[str, int, str]], dict[str, str]]] = []
    try:
        for _, el in ET.iterparse(os.fspath(path)):
            if el.tag not in ("node", "way", "relation"):
                continue
            if el.get("action") == "delete":
                el.clear()
                continue
            tags = {t.get("k"): t.get("v") for t in el.findall("tag")}
            if el.tag == "node":
                nodes[int(el.get("id"))] = (float(el.get("lon")), float(el.get("lat")))
            elif el.tag == "way":
                ways[int(el.get("id"))] = ([int(n.get("ref")) for n in el.findall("nd")], tags)
            else:
                members = [(m.get("type"), int(m.get("ref")), m.get("role") or "") for m in el.findall("member")]
                relations.append((members, tags))
            el.clear()
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise RoofsegError(path, f"is not OSM XML that roofseg can read ({exc})") from None

    def line(way_id: int) -> LineString | None:
        refs = ways.get(way_id, ([], {}))[0]
        if len(refs) < 2 or any(r not in nodes for r in refs):
            return None
        return LineString([nodes[r] for r in refs])

    found = []
    for way_id, (refs, tags) in ways.items():
        if is_building(tags) and len(refs) >= 4 and refs[0] == refs[-1] and all(r in nodes for r in refs):
            polygon = shapely.make_valid(Polygon([nodes[r] for r in refs]))
            if not polygon.is_empty:
                found.append(polygon)
    for members, tags in relations:
        if tags.get("type") != "multipolygon" or not is_building(tags):
            continue
        rings = {"outer": [], "inner": []}
        for kind, ref, role in members:
            piece = line(ref) if kind == "way" else None
            if piece is not None:
                rings["inner" if role == "inner" else "outer"].append(piece)
        outer = shapely.union_all(list(polygonize(rings["outer"])))
        if outer.is_empty:
            continue
        inner = shapely.union_all(list(polygonize(rings["inner"])))
        found.append(shapely.make_valid(outer.difference(inner)))
    return found
