"""Valid polygonal geometry: what every footprint roofseg writes, reads or scores is made into."""

from __future__ import annotations

from collections.abc import Callable

import shapely

POLYGONAL = ("Polygon", "MultiPolygon")


def valid_polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` made valid, keeping only its polygonal parts (a Polygon or a MultiPolygon). A valid
    collection is filtered too: a squared outline less its neighbours (or snapped to their corners)
    can keep a line where they touch, and a line is no footprint (GEOS' coverage simplifier refuses it)."""
    fixed = geom if geom.is_valid else shapely.make_valid(geom)
    if fixed.geom_type in POLYGONAL:
        return fixed
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in POLYGONAL]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def without_slivers(geom: shapely.Geometry, is_building: Callable[[shapely.Geometry], bool]) -> shapely.Geometry:
    """``geom`` without the parts that ``is_building`` says are too small to be one: the crumbs a
    squared outline leaves when its neighbour's area is taken out of it, or a pixel joined at a
    corner. The largest part stays if none passes. One footprint is then one polygon, as a mapper
    expects (a MultiPolygon is written to OSM as a relation of several ways)."""
    if geom.geom_type != "MultiPolygon":
        return geom
    parts = sorted(geom.geoms, key=lambda p: p.area, reverse=True)
    kept = [p for p in parts if is_building(p)] or parts[:1]
    return kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)


def simplify_outlines(geoms: list[shapely.Geometry], tolerance: float) -> list[shapely.Geometry]:
    """``geoms`` without the vertices that add nothing: the steps of a staircase traced from pixels
    and points on a straight line, within ``tolerance`` (about a pixel). Simplified as one coverage
    (GEOS' coverage simplifier), so a wall two buildings share is simplified once, the same on
    both sides, and stays shared; a building's real corners stay."""
    if not geoms or tolerance <= 0:
        return list(geoms)
    simple = shapely.coverage_simplify(shapely.GeometryCollection(list(geoms)).geoms, tolerance)
    return [valid_polygonal(s) if not s.is_empty else g for s, g in zip(simple, geoms)]


def share_walls(geoms: list[shapely.Geometry], tolerance: float) -> list[shapely.Geometry]:
    """``geoms`` with each one's outline given a vertex wherever another's vertex lies on it (within
    ``tolerance``): a wall two buildings share then has the same vertices on both sides, so it
    stays shared when the coordinates are rounded (to the centimetre, or to 1e-7° in an OSM or
    GeoJSON file) instead of opening a sliver or an overlap where one side had a corner."""
    if len(geoms) < 2:
        return list(geoms)
    outlines = shapely.boundary(geoms)
    coords, owner = shapely.get_coordinates(outlines, return_index=True)
    corners = shapely.STRtree(shapely.points(coords))  # every corner of every outline, queried near each outline
    out = []
    for i, geom in enumerate(geoms):
        near = corners.query(outlines[i], predicate="dwithin", distance=tolerance)
        near = near[owner[near] != i]
        if len(near):
            own = {tuple(c) for c in coords[owner == i].tolist()}
            new = [c for c in coords[near].tolist() if tuple(c) not in own]
            if new:
                geom = valid_polygonal(shapely.snap(geom, shapely.multipoints(new), tolerance))
        out.append(geom)
    return out
