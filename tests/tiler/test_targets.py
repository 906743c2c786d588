"""Border targets: outline keeps one core per building, even where walls are shared."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from roofseg.tiler.targets import contact_border, contact_target, outline_border


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
