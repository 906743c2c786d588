"""Footprint geometry: polygonal, valid, and one polygon per building."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import shape

from roofseg.prediction.vector.geometry import simplify_outlines, valid_polygonal, without_slivers
from roofseg.prediction.vector.vectorize import polygons

from conftest import write_tif


def test_a_valid_collection_of_a_roof_and_a_line_keeps_the_roof():
    roof = shapely.box(0, 0, 10, 8)
    # what a squared outline less its neighbour can be: valid, but not a footprint
    collection = shapely.GeometryCollection([roof, shapely.LineString([(10, 0), (12, 0)])])
    assert collection.is_valid
    assert valid_polygonal(collection).equals(roof)
    neighbour = shapely.box(10, 0, 20, 8)
    simple = simplify_outlines([valid_polygonal(collection), neighbour], 0.5)  # GEOS refused the line
    assert [g.geom_type for g in simple] == ["Polygon", "Polygon"]


def test_a_footprint_keeps_its_parts_that_are_buildings_and_drops_its_crumbs():
    house, wing, crumb = shapely.box(0, 0, 10, 8), shapely.box(20, 0, 26, 5), shapely.box(10, 8, 10.5, 8.4)
    big = lambda part: part.area >= 5  # noqa: E731
    assert without_slivers(shapely.MultiPolygon([crumb, house]), big).equals(house)
    kept = without_slivers(shapely.MultiPolygon([house, crumb, wing]), big)
    assert kept.geom_type == "MultiPolygon" and kept.equals(shapely.MultiPolygon([house, wing]))
    assert without_slivers(shapely.MultiPolygon([crumb, shapely.box(30, 0, 31, 1)]), big).area == 1  # the largest
    assert without_slivers(house, big) is house


def test_a_pixel_joined_at_a_roofs_corner_is_not_a_part_of_its_footprint(tmp_path):
    roof = np.zeros((40, 40), np.uint8)
    roof[10:30, 10:30] = 1
    roof[30, 30] = 1  # 8-connected to the roof through its corner alone: traced with it as one region
    write_tif(tmp_path / "binary.tif", roof)
    found = [shape(b.geometry) for b in polygons(tmp_path / "binary.tif", 0.0)]
    assert len(found) == 1 and found[0].geom_type == "Polygon"
    assert found[0].area == 20 * 20 * 0.25  # the roof's pixels of 0.5 m, and no more
