"""Pure geometry of tile grids: where windows start, how they overlap, their transforms."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

from affine import Affine
from rasterio.windows import Window


class Tile(NamedTuple):
    """A tile-sized window whose top-left pixel is (row, col) of the scene.

    ``height``/``width`` are the part inside the scene; the rest of the tile is padding.
    """

    row: int
    col: int
    size: int
    height: int
    width: int

    @property
    def padded(self) -> bool:
        return self.height < self.size or self.width < self.size


def offsets(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``size`` every ``stride`` pixels covering ``length`` pixels.

    The fewest windows that cover the whole length: the last may run past the end (it is
    padded), and no window starts past the end. A length shorter than ``size`` gets one window.
    """
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    if not 0 < stride <= size:
        raise ValueError(f"stride must be in 1..size ({size}), got {stride}")
    count = 1 + max(0, math.ceil((length - size) / stride))
    return [i * stride for i in range(count)]


def stride_for(size: int, overlap: int) -> int:
    """The stride of windows of ``size`` that overlap their neighbours by ``overlap`` pixels."""
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in 0..{size - 1} for tile size {size}, got {overlap}")
    return size - overlap


def tile_grid(height: int, width: int, size: int, stride: int) -> list[Tile]:
    """All tiles of a ``height`` × ``width`` scene, row-major."""
    rows = offsets(height, size, stride)
    cols = offsets(width, size, stride)
    return [Tile(r, c, size, min(size, height - r), min(size, width - c)) for r in rows for c in cols]


def grid_rows(height: int, width: int, size: int, stride: int) -> Iterator[list[Tile]]:
    """The tiles of a scene grouped by grid row (a band of windows), top to bottom."""
    cols = offsets(width, size, stride)
    for r in offsets(height, size, stride):
        yield [Tile(r, c, size, min(size, height - r), min(size, width - c)) for c in cols]


def tile_transform(transform: Affine, row: int, col: int) -> Affine:
    """The affine transform of a window whose pixel (0, 0) is scene pixel (row, col)."""
    return transform @ Affine.translation(col, row)


def corners(transform: Affine, height: int, width: int) -> list[tuple[float, float]]:
    """Map coordinates of the four corners of a ``height`` × ``width`` grid, clockwise from (0, 0)."""
    return [transform @ (c, r) for c, r in ((0, 0), (width, 0), (width, height), (0, height))]


def grid_bounds(transform: Affine, height: int, width: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) around the whole grid, whatever its rotation or orientation.

    The box of all four corners: two opposite corners are not enough for a rotated, south-up or
    mirrored grid.
    """
    xs, ys = zip(*corners(transform, height, width))
    return min(xs), min(ys), max(xs), max(ys)


def covering_window(
    bounds: tuple[float, float, float, float], transform: Affine, height: int, width: int
) -> Window | None:
    """The smallest window of whole pixels of a ``height`` × ``width`` grid that covers the map box
    ``bounds`` (minx, miny, maxx, maxy), whatever the grid's rotation; None where they do not meet."""
    x0, y0, x1, y1 = bounds
    cols, rows = zip(*(~transform @ xy for xy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))))
    c0, r0 = max(0, math.floor(min(cols) + 1e-9)), max(0, math.floor(min(rows) + 1e-9))
    c1, r1 = min(width, math.ceil(max(cols) - 1e-9)), min(height, math.ceil(max(rows) - 1e-9))
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)
