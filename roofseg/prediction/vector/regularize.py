"""Regular building outlines: traced pixel staircases simplified, and squared where a building is rectilinear.

Pure geometry on shapely polygons in map units. A building's main direction is the long side of
its minimum rotated rectangle; in that frame, an outline whose edges all run within
``angle_tolerance`` of the two axes becomes alternating horizontal and vertical sides, each at
the length-weighted mean position of the edges it replaces. Anything else — round, diagonal,
or a squared result that would be invalid or change the area by more than ``max_area_change``
— keeps its simplified outline, or, where even that changes the area too much (a building of a
few pixels), one simplified by half a pixel, or the traced one. A courtyard is never lost: a
hole that cannot be squared keeps its simplified ring, and an outline with fewer holes than the
traced one is not taken.
"""

from __future__ import annotations

import math

import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon


def regularize(
    geom: Polygon | MultiPolygon, pixel: float, angle_tolerance: float = 20.0, max_area_change: float = 0.08
) -> Polygon | MultiPolygon:
    """The regular outline of ``geom`` (a Polygon or MultiPolygon); ``pixel`` is the raster's pixel size."""
    if isinstance(geom, MultiPolygon):
        parts = [regularize(p, pixel, angle_tolerance, max_area_change) for p in geom.geoms]
        return MultiPolygon([p for p in parts if not p.is_empty])
    # a traced staircase strays up to a pixel's diagonal from the true side
    simplified = geom.simplify(1.5 * pixel, preserve_topology=True)
    squared = _squared(simplified, pixel, angle_tolerance) if simplified.is_valid and not simplified.is_empty else None
    # the most regular outline that keeps the building: on a small one, simplifying can cost too much
    for outline in (squared, simplified, geom.simplify(0.5 * pixel, preserve_topology=True)):
        if (
            outline is not None
            and not outline.is_empty
            and outline.is_valid
            and outline.geom_type == "Polygon"
            and len(outline.interiors) == len(geom.interiors)
            and abs(outline.area - geom.area) <= max_area_change * geom.area
        ):
            return outline
    return geom


def main_angle(poly: Polygon) -> float:
    """Degrees from the x axis of the long side of the polygon's minimum rotated rectangle."""
    box = shapely.oriented_envelope(poly)
    if box.geom_type != "Polygon":
        return 0.0
    (x0, y0), (x1, y1), (x2, y2) = list(box.exterior.coords)[:3]
    first, second = (x1 - x0, y1 - y0), (x2 - x1, y2 - y1)
    dx, dy = first if math.hypot(*first) >= math.hypot(*second) else second
    return math.degrees(math.atan2(dy, dx))


def _squared(poly: Polygon, pixel: float, tolerance: float) -> Polygon | None:
    angle = main_angle(poly)
    origin = poly.centroid
    upright = affinity.rotate(poly, -angle, origin=origin)
    shell = square_ring(list(upright.exterior.coords), pixel, tolerance)
    if shell is None:
        return None
    # a courtyard that cannot be squared keeps its simplified ring
    holes = [square_ring(list(r.coords), pixel, tolerance) or list(r.coords) for r in upright.interiors]
    squared = Polygon(shell, holes)
    return affinity.rotate(squared, angle, origin=origin)


def square_ring(coords: list[tuple[float, float]], pixel: float, tolerance: float) -> list[tuple[float, float]] | None:
    """A closed ring of axis-parallel sides replacing ``coords`` (closed, in an upright frame), or
    None when a side longer than five pixels runs off both axes by more than ``tolerance`` degrees."""
    runs: list[list[float]] = []  # [axis (0: horizontal, 1: vertical), weighted position sum, length]
    for (x0, y0), (x1, y1) in zip(coords[:-1], coords[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        direction = abs(math.degrees(math.atan2(y1 - y0, x1 - x0))) % 180
        off_horizontal = min(direction, 180 - direction)
        if off_horizontal <= tolerance:
            axis, position = 0, (y0 + y1) / 2
        elif abs(direction - 90) <= tolerance:
            axis, position = 1, (x0 + x1) / 2
        elif length <= 5 * pixel:
            continue  # a cut corner: the sides around it meet instead
        else:
            return None
        if runs and runs[-1][0] == axis:
            runs[-1][1] += position * length
            runs[-1][2] += length
        else:
            runs.append([axis, position * length, length])
    if len(runs) > 1 and runs[0][0] == runs[-1][0]:  # the ring's last side continues its first
        first = runs.pop(0)
        runs[-1][1] += first[1]
        runs[-1][2] += first[2]
    if len(runs) < 4 or len(runs) % 2:
        return None
    lines = [(axis, total / length) for axis, total, length in runs]
    ring = []
    for (axis, at), (_, next_at) in zip(lines, lines[1:] + lines[:1]):
        ring.append((next_at, at) if axis == 0 else (at, next_at))
    return ring + ring[:1]
