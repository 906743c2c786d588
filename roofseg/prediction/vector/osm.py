"""Footprints as OSM XML 0.6 for JOSM: a new data layer a mapper reviews before anything is uploaded.

The file says ``upload="never"`` (JOSM then refuses to upload it as it is: the mapper copies what
they checked into their own layer), every object has a negative id (new, never in OSM), a way
closes on its first node (shared, not repeated), each building is a closed way tagged
``building=yes``, and a building with a courtyard (or in several pieces) is a multipolygon
relation whose member ways carry no tags. No other tag is invented, but for ``roofseg:status``
(new, mapped or extends) where ``predict --keep-existing`` asks for it: a key in roofseg's own
namespace, shown by JOSM, that no OSM editor or preset writes, so it is never taken for a real
tag. An outline of more than :data:`MAX_WAY_NODES` nodes (the OSM API's limit for a way) is cut
into several untagged ways joined end to end, members of a multipolygon. One node stands at each
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
MAX_WAY_NODES = 2000  # the OSM API refuses longer ways, and so does JOSM's upload check
STATUS_TAG = "roofseg:status"  # --keep-existing: new, mapped or extends


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
        self.split = 0  # buildings whose outline was cut into several ways (over MAX_WAY_NODES)
        self.at: dict[tuple[str, str], str] = {}  # one node per position (as written, to 1e-7°)

    def _id(self) -> int:
        self.next_id -= 1
        return self.next_id + 1

    def _refs(self, ring) -> list[str]:
        """The node ids of a ring, once each (the closing point is the first node), new nodes made."""
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
        return refs

    def _way_of(self, refs: list[str], tags: dict[str, str]) -> int:
        way_id = self._id()
        way = ET.Element("way", id=str(way_id))
        for ref in refs:
            ET.SubElement(way, "nd", ref=ref)
        for k, v in tags.items():
            ET.SubElement(way, "tag", k=k, v=v)
        self.ways.append(way)
        return way_id

    def _ring_ways(self, ring, tags: dict[str, str]) -> list[int]:
        """A ring as one closed way, or, over :data:`MAX_WAY_NODES` nodes, as open ways of at most
        that many nodes, each starting on the node the one before it ends on."""
        refs = self._refs(ring)
        closed = refs + refs[:1]
        if len(closed) <= MAX_WAY_NODES:
            return [self._way_of(closed, tags)]
        step = MAX_WAY_NODES - 1
        return [self._way_of(closed[k : k + step + 1], {}) for k in range(0, len(closed) - 1, step)]

    def add(self, geom: Polygon | MultiPolygon, tags: dict[str, str] | None = None) -> None:
        """One building: a closed way, or a multipolygon relation where it has holes or parts, or
        an outline too long for one way."""
        tags = {"building": "yes", **(tags or {})}
        geom = (
            shapely.geometry.polygon.orient(geom, 1.0)
            if geom.geom_type == "Polygon"
            else MultiPolygon([shapely.geometry.polygon.orient(p, 1.0) for p in geom.geoms])
        )
        parts = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
        long = any(len(r.coords) > MAX_WAY_NODES for p in parts for r in (p.exterior, *p.interiors))
        if len(parts) == 1 and not parts[0].interiors and not long:
            self._ring_ways(parts[0].exterior, tags)
        else:
            members = [(w, "outer") for p in parts for w in self._ring_ways(p.exterior, {})]
            members += [(w, "inner") for p in parts for r in p.interiors for w in self._ring_ways(r, {})]
            relation = ET.Element("relation", id=str(self._id()))
            for ref, role in members:
                ET.SubElement(relation, "member", type="way", ref=str(ref), role=role)
            for k, v in {"type": "multipolygon", **tags}.items():
                ET.SubElement(relation, "tag", k=k, v=v)
            self.relations.append(relation)
            self.split += int(long)
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
