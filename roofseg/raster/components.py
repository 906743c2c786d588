"""Connected components of roof masks: the buildings a mask raster holds, as instance ids."""

from __future__ import annotations

import cv2
import numpy as np


def components(roof: np.ndarray) -> np.ndarray:
    """Instance ids of a 0/1 roof mask: its 8-connected regions (a mask raster's only instances)."""
    _, ids = cv2.connectedComponents(roof.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return ids


IN_MEMORY_BYTES = 256 * 2**20  # ids of a larger mask go to a file on disk


def scene_components(read, height: int, width: int, path: str | None = None, strip: int = 1024) -> np.ndarray:
    """Instance ids of a whole roof mask (its 8-connected regions), labelled strip by strip.

    ``read(row, col, height, width)`` gives the mask's 0/1 pixels. Each strip is labelled on its
    own; regions that meet across a strip's edge are joined (union-find), so a building is one id
    however far it reaches. Ids of a mask over 256 MB of int32 go to a memory-mapped file at
    ``path`` (4 bytes a pixel on disk), so memory follows a strip, not the scene. Returns the int32
    (height, width) array.
    """
    if path is None or height * width * 4 <= IN_MEMORY_BYTES:
        ids = np.empty((height, width), np.int32)
    else:
        ids = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=(height, width))
    parent = np.zeros(1, np.int64)  # union-find over the strips' labels; 0 is background

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    offset, above = 0, None
    for top in range(0, height, strip):
        rows = min(strip, height - top)
        n, labels = cv2.connectedComponents(
            read(top, 0, rows, width).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        labels[labels > 0] += offset
        parent = np.concatenate([parent, np.arange(offset + 1, offset + n, dtype=np.int64)])
        if above is not None:  # 8-connected across the edge: straight down and both diagonals
            below = labels[0]
            for shift in (-1, 0, 1):
                a = above[max(0, -shift) : width - max(0, shift)]
                b = below[max(0, shift) : width - max(0, -shift)]
                touching = (a > 0) & (b > 0)
                for x, y in set(zip(a[touching].tolist(), b[touching].tolist())):
                    rx, ry = find(x), find(y)
                    if rx != ry:
                        parent[max(rx, ry)] = min(rx, ry)
        ids[top : top + rows] = labels
        above = labels[-1].copy()
        offset += n - 1
    roots = np.array([find(x) for x in range(len(parent))], np.int32)
    for top in range(0, height, strip):
        ids[top : top + strip] = roots[ids[top : top + strip]]
    return ids
