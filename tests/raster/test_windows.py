"""Tile-grid geometry: windows cover the scene, overlap is obeyed, transforms are right."""

import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from roofseg.raster.windows import grid_rows, offsets, stride_for, tile_grid, tile_transform


@given(length=st.integers(1, 3000), size=st.integers(1, 512), data=st.data())
def test_offsets_cover_the_length_with_the_fewest_windows(length, size, data):
    stride = data.draw(st.integers(1, size))
    starts = offsets(length, size, stride)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + size] = True
    assert covered.all()
    assert starts[0] == 0 and all(s < length for s in starts)
    assert all(b - a == stride for a, b in zip(starts, starts[1:]))  # overlap is size - stride
    if len(starts) > 1:
        assert starts[-2] + size < length  # one window fewer would leave pixels uncovered


@given(h=st.integers(1, 700), w=st.integers(1, 700), size=st.sampled_from([32, 64, 256]), overlap=st.integers(0, 31))
def test_grid_tiles_inside_parts_and_padding(h, w, size, overlap):
    stride = stride_for(size, overlap)
    tiles = tile_grid(h, w, size, stride)
    hits = np.zeros((h, w), np.int32)
    for t in tiles:
        assert t.height == min(size, h - t.row) and t.width == min(size, w - t.col)
        assert t.padded == (t.height < size or t.width < size)
        hits[t.row : t.row + t.height, t.col : t.col + t.width] += 1
    assert hits.min() >= 1
    if overlap == 0:
        assert hits.max() == 1
    assert [t for row in grid_rows(h, w, size, stride) for t in row] == tiles


@given(row=st.integers(0, 10_000), col=st.integers(0, 10_000), res=st.floats(0.05, 30))
def test_tile_transform_maps_its_origin_to_the_scene_pixel(row, col, res):
    scene = Affine(res, 0, 356_000.0, 0, -res, 3_742_000.0)
    t = tile_transform(scene, row, col)
    assert t @ (0, 0) == pytest.approx(scene @ (col, row))
    assert t @ (3, 5) == pytest.approx(scene @ (col + 3, row + 5))


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError):
        offsets(10, 8, 9)
    with pytest.raises(ValueError):
        stride_for(256, 256)
