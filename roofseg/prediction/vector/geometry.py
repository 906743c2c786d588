"""Valid polygonal geometry: what every footprint roofseg writes, reads or scores is made into."""

from __future__ import annotations

import shapely


def valid_polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` made valid, keeping only its polygonal parts (a Polygon or a MultiPolygon)."""
    if geom.is_valid:
        return geom
    fixed = shapely.make_valid(geom)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


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
