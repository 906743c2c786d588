"""Train/val/test assignment by scene, or by spatial block inside a scene (pure functions).

Neighbouring tiles look alike, so a random split of tiles would leak test areas into
training. Splits are made of whole scenes, or of square blocks of one scene; a tile that
straddles blocks of two different splits is dropped rather than let pixels cross.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from roofseg.contracts.manifest import Manifest

SPLITS = ("train", "val", "test")


def split_counts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """How many of ``n`` units go to (train, val, test): at least one each where n ≥ 3."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test fractions must be in [0, 1) and sum below 1, got {val}, {test}")
    n_test = round(n * test)
    n_val = round(n * val)
    if n >= 3:
        n_test = max(n_test, 1 if test > 0 else 0)
        n_val = max(n_val, 1 if val > 0 else 0)
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return n - n_val - n_test, n_val, n_test


def assign(n: int, val: float, test: float, seed: int) -> list[str]:
    """A split name for each of ``n`` units, shuffled by ``seed``, in the proportions asked."""
    n_train, n_val, n_test = split_counts(n, val, test)
    names = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
    order = np.random.default_rng(seed).permutation(n)
    out = [""] * n
    for name, i in zip(names, order):
        out[i] = name
    return out


class BlockSplit:
    """Splits of the ``block``-pixel squares of a ``height`` × ``width`` scene.

    ``scale`` (rows, columns): how many pixels of that grid one pixel of the tiles' grid spans,
    when the tiles are cut at another GSD than the grid's. The blocks, and so the splits, are then
    the same for every GSD: one place falls in one split whatever its resolution.
    """

    def __init__(
        self,
        height: int,
        width: int,
        block: int,
        val: float,
        test: float,
        seed: int,
        scale: tuple[float, float] = (1.0, 1.0),
    ):
        self.block, self.scale = block, scale
        self.rows = max(1, math.ceil(height / block))
        self.cols = max(1, math.ceil(width / block))
        names = assign(self.rows * self.cols, val, test, seed)
        self.grid = np.array(names, dtype=object).reshape(self.rows, self.cols)

    def of_tile(self, row: int, col: int, height: int, width: int) -> str | None:
        """The split of the tiles' pixels [row:row+height, col:col+width], or None if mixed."""
        sy, sx = self.scale
        eps = 1e-6  # a tile ending on a block's edge does not reach into the next block
        r0 = min(int(row * sy // self.block), self.rows - 1)
        r1 = min(int(((row + height) * sy - eps) // self.block), self.rows - 1)
        c0 = min(int(col * sx // self.block), self.cols - 1)
        c1 = min(int(((col + width) * sx - eps) // self.block), self.cols - 1)
        names = set(self.grid[r0 : r1 + 1, c0 : c1 + 1].ravel())
        return names.pop() if len(names) == 1 else None


def scene_splits(scene_ids: Sequence[str], val: float, test: float, seed: int) -> dict[str, str]:
    """Whole scenes to splits, independent of the order the scenes were given in."""
    ordered = sorted(scene_ids)
    return dict(zip(ordered, assign(len(ordered), val, test, seed)))


#: fewer validation tiles than this and model selection follows noise
FEW_TILES = 16


def split_warnings(manifest: Manifest, asked: dict[str, float], split_block: int) -> list[str]:
    """What to say of splits that were asked for but came out empty or tiny, and how to mend it."""
    lines = []
    by_block = manifest.split_mode != "scene"
    for name, share in asked.items():
        tiles = manifest.splits[name].tiles if name in manifest.splits else 0
        if share > 0 and tiles < FEW_TILES:
            fix = (
                (
                    f"retile with a smaller --split-block (now {split_block} px) so more blocks of the scene go to it, "
                    "or tile more scenes"
                )
                if by_block
                else "tile more scenes, or --split-by block"
            )
            count = f"only {tiles} tiles" if tiles else "no tiles"
            lines.append(f"the {name} split has {count} ({share:.0%} asked); {fix}")
    return lines
