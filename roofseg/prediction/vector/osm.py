"""Footprints as OSM XML 0.6 for JOSM: a new data layer a mapper reviews before anything is uploaded.

The file says ``upload="never"`` (JOSM then refuses to upload it as it is: the mapper copies what
they checked into their own layer), every object has a negative id (new, never in OSM), a way
closes on its first node (shared, not repeated), each building is a closed way tagged
``building=yes``, and a building with a courtyard (or in several pieces) is a multipolygon
relation whose member ways carry no tags. No other tag is invented. One node stands at each
position, across the whole file: touching buildings share the nodes of their common wall, and a
courtyard touching its building's outline at a corner shares that node, as JOSM's validator
asks (no "duplicated nodes", no "intersection between multipolygon ways").
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable

import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

GENERATOR = "roofseg"
DECIMALS = 7  # OSM stores 1e-7 degrees


class OsmWriter:
    """Collects buildings (shapely polygons in ``crs``) and writes them as one OSM XML file."""

    def __init__(self, crs) -> None:
        self.to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True) if crs is not None else None
        self.root = ET.Element("osm", version="0.6", generator=GENERATOR, upload="never")
        self.nodes: list[ET.Element] = []
        self.ways: list[ET.Element] = []
        self.relations: list[ET.Element] = []
        self.next_id = -1
        self.count = 0
        self.at: dict[tuple[str, str], str] = {}  # one node per position (as written, to 1e-7°)

    def _id(self) -> int:
        self.next_id -= 1
        return self.next_id + 1

    def _way(self, ring, tags: dict[str, str]) -> int:
        xs, ys = zip(*ring.coords)
        if self.to_lonlat is not None:
            xs, ys = self.to_lonlat.transform(xs, ys)
        refs: list[str] = []
        for lon, lat in list(zip(xs, ys))[:-1]:  # the ring's last point is its first: one node
            position = (f"{lat:.{DECIMALS}f}", f"{lon:.{DECIMALS}f}")
            if position not in self.at:
                self.at[position] = str(self._id())
                self.nodes.append(ET.Element("node", id=self.at[position], lat=position[0], lon=position[1]))
            if not refs or refs[-1] != self.at[position]:  # two points rounded onto one: one node
                refs.append(self.at[position])
        if len(refs) > 1 and refs[-1] == refs[0]:
            refs.pop()
        way_id = self._id()
        way = ET.Element("way", id=str(way_id))
        for ref in refs + refs[:1]:
            ET.SubElement(way, "nd", ref=ref)
        for k, v in tags.items():
            ET.SubElement(way, "tag", k=k, v=v)
        self.ways.append(way)
        return way_id

    def add(self, geom: Polygon | MultiPolygon, tags: dict[str, str] | None = None) -> None:
        """One building: a closed way, or a multipolygon relation where it has holes or parts."""
        tags = {"building": "yes", **(tags or {})}
        geom = (
            shapely.geometry.polygon.orient(geom, 1.0)
            if geom.geom_type == "Polygon"
            else MultiPolygon([shapely.geometry.polygon.orient(p, 1.0) for p in geom.geoms])
        )
        parts = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
        if len(parts) == 1 and not parts[0].interiors:
            self._way(parts[0].exterior, tags)
        else:
            members = [(self._way(p.exterior, {}), "outer") for p in parts]
            members += [(self._way(r, {}), "inner") for p in parts for r in p.interiors]
            relation = ET.Element("relation", id=str(self._id()))
            for ref, role in members:
                ET.SubElement(relation, "member", type="way", ref=str(ref), role=role)
            for k, v in {"type": "multipolygon", **tags}.items():
                ET.SubElement(relation, "tag", k=k, v=v)
            self.relations.append(relation)
        self.count += 1

    def write(self, path: str | os.PathLike) -> None:
        """Write the file (nodes, then ways, then relations, as OSM files order them)."""
        self.root.extend(self.nodes + self.ways + self.relations)
        ET.indent(self.root)
        ET.ElementTree(self.root).write(path, encoding="UTF-8", xml_declaration=True)


def write_osm(buildings: Iterable, crs, path: str | os.PathLike) -> int:
    """Write shapely ``buildings`` (in ``crs``) to ``path`` as OSM XML; return how many."""
    writer = OsmWriter(crs)
    for geom in buildings:
        writer.add(geom)
    writer.write(path)
    return writer.count
