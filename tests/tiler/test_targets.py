"""Border targets: outline keeps one core per building, even where walls are shared."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from roofseg.contracts.targets import CONTACT_KINDS
from roofseg.tiler.targets import (
    BORDERS,
    contact_border,
    contact_target,
    distance_border,
    outline_border,
    relative_border,
)


def _block() -> np.ndarray:
    """A dense block: three buildings sharing walls in a row, and one alone."""
    ids = np.zeros((60, 90), np.int32)
    ids[10:40, 5:25], ids[10:40, 25:45], ids[10:40, 45:70] = 1, 2, 3
    ids[45:55, 75:85] = 4
    return ids


def test_outline_leaves_one_core_per_building_where_walls_are_shared():
    ids = _block()
    roof = ids > 0
    assert ndimage.label(roof)[1] == 2  # the roof alone: the row of three is one region
    cores, n = ndimage.label(roof & ~outline_border(ids, 2))
    assert n == 4
    for building in range(1, 5):  # each core lies inside its own building
        assert len(set(np.unique(ids[cores == building]))) == 1


def test_outline_marks_every_buildings_edge_between_marks_only_where_buildings_meet():
    ids = _block()
    outline, between = outline_border(ids, 2), contact_border(ids, 2)
    assert outline[45:55, 75:85].any() and not between[45:55, 75:85].any()  # the lone building
    assert not outline[48:52, 78:82].any()  # its inside is core
    assert between[20, 23:27].all() and outline[20, 23:27].all()  # the shared wall, both sides
    assert (between & (ids > 0) <= outline).all()  # outline holds every roof pixel between marks
    assert outline.mean() > 2 * between.mean()  # denser: every building has an edge, few have neighbours


def test_contact_target_takes_its_kind_and_crops_its_margin():
    ids = np.pad(_block(), 2)
    assert contact_target(ids, 2, 2, "outline").shape == (60, 90)
    np.testing.assert_array_equal(contact_target(ids, 2, 2, "between"), contact_border(ids, 2)[2:-2, 2:-2])
    with pytest.raises(ValueError, match="contact kind"):
        contact_target(ids, 2, 2, "edges")
    assert tuple(BORDERS) == CONTACT_KINDS  # every kind the CLI offers has its border, and no other


def test_distance_grades_the_outline_band_so_each_building_peaks_at_its_middle():
    ids = _block()
    graded = distance_border(ids, 2)
    assert (graded[(ids == 0) & ~contact_border(ids, 2)] == 0).all()  # ground stays 0 but in gaps
    lone = graded[45:55, 75:85]  # 10 x 10: edge 1, then 0.75, 0.5, 0.25 and 0 from 4 px in
    np.testing.assert_allclose(lone[5, :5], [1.0, 0.75, 0.5, 0.25, 0.0])
    # a shared wall is a ridge one edge wide, not a band: 1 on its two edge pixels, graded beside
    np.testing.assert_allclose(graded[20, 21:29], [0.25, 0.5, 0.75, 1.0, 1.0, 0.75, 0.5, 0.25])
    ground_between = (ids == 0) & contact_border(ids, 2)
    assert ((graded == 1) == (outline_border(ids, 1) | ground_between)).all()  # 1: an edge, or a narrow gap
    # roof x (1 - border): one highest region inside each building, nowhere across a wall
    inner = (ids > 0) & (graded == graded[ids > 0].min())
    peaks, n = ndimage.label(inner)
    assert n == 4 and all(len(set(np.unique(ids[peaks == k]))) == 1 for k in range(1, n + 1))
    stored = contact_target(np.pad(ids, 2), 2, 2, "distance")
    assert stored.dtype == np.uint8 and stored.max() == 255 and set(np.unique(stored)) >= {0, 64, 128, 191, 255}


def test_distance_keeps_the_middle_of_a_house_narrower_than_the_band_between_two_neighbours():
    ids = np.zeros((30, 40), np.int32)
    ids[5:25, 5:15], ids[5:25, 15:21], ids[5:25, 21:31] = 1, 2, 3  # the middle house: 6 px wide
    graded = distance_border(ids, 4)  # a band of 4 px from each wall would cover it whole
    assert contact_border(ids, 4)[15, 15:21].all()
    middle = graded[15, 15:21]
    assert middle.min() < 1 and middle.argmin() in (2, 3)  # still a peak of roof x (1 - border) of its own
    peaks, n = ndimage.label((ids > 0) & (1 - graded > 0.2))
    assert n == 3


def test_relative_grades_each_house_narrower_than_the_grading_down_to_nothing_at_its_middle():
    ids = np.zeros((40, 60), np.int32)
    ids[5:35, 5:11], ids[5:35, 11:15], ids[5:35, 15:45] = 1, 2, 3  # 6 and 4 px wide beside one 30 px wide
    ids[36:39, 50:53] = 4  # 3 x 3 alone
    distance, relative = distance_border(ids, 4), relative_border(ids, 4)
    assert distance[20, 5:11].min() == pytest.approx(0.75) and distance[20, 11:15].min() == pytest.approx(0.875)
    for house, cols in ((1, slice(5, 11)), (2, slice(11, 15))):  # the small ones: 0 at their middles
        assert relative[20, cols].min() == 0, house
    assert relative[37, 51] == 0 and distance[37, 51] > 0.8
    wide = ids == 3  # wider than the grading: graded as distance grades it
    np.testing.assert_allclose(relative[wide], distance[wide])
    assert ((relative == 1) == (distance == 1)).all()  # edges and narrow gaps alike
    assert (relative <= distance + 1e-6).all()
    peaks, n = ndimage.label((ids > 0) & (relative < 0.5))  # one middle per house
    assert n == 4 and all(len(set(np.unique(ids[peaks == k]))) == 1 for k in range(1, n + 1))
    stored = contact_target(np.pad(ids, 2), 4, 2, "relative")
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, np.round(relative * 255))
