"""Blending overlapping window predictions into one seamless band of rows (numpy, OpenCV's accumulators)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np


def taper(size: int, overlap: int) -> np.ndarray:
    """1-D weights: a raised-cosine ramp over ``overlap`` px at each end, 1 in between.

    Neighbouring windows overlap by ``overlap`` px, where one ramps down as the other ramps
    up, so a window's less reliable border pixels count for little. Weights stay > 0, so a
    pixel seen by one window alone (a scene edge) keeps that window's value.
    """
    w = np.ones(size, np.float32)
    if overlap > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / overlap) ** 2
        w[:overlap] = ramp
        w[size - overlap :] = np.minimum(w[size - overlap :], ramp[::-1])
    return w


def weight_window(size: int, overlap: int) -> np.ndarray:
    """2-D blending weights of a ``size`` × ``size`` window (outer product of tapers)."""
    t = taper(size, overlap)
    return np.outer(t, t)


class BandAccumulator:
    """Weighted sums of window predictions over a band of rows as wide as the scene.

    Predictions are (size, size, channels): every channel is blended with the same weights.
    Windows arrive grid row by grid row (all with the same top row). When the next grid row
    starts at ``row``, every scene row above it is final: :meth:`advance` returns those rows
    (the weighted mean) and drops them, so memory holds one window height of rows at most.
    """

    def __init__(self, height: int, width: int, size: int, overlap: int, channels: int = 1):
        self.height, self.width, self.size = height, width, size
        self.weights = weight_window(size, overlap)[..., None]
        self._channel_weights = np.repeat(self.weights, channels, axis=2)  # OpenCV multiplies channel by channel
        self.top = 0  # scene row of the buffer's first row
        self.sum = np.zeros((size, width, channels), np.float32)
        self.wsum = np.zeros((size, width, 1), np.float32)
        self.valid = np.zeros((size, width), bool)
        self._spent = 0  # rows handed out by advance(), dropped at the next call

    def add(self, row: int, col: int, prediction: np.ndarray, valid: np.ndarray) -> None:
        """Add a ``size`` × ``size`` × channels prediction whose pixel (0, 0) is scene pixel (row, col).

        ``valid`` is the window's (h, w) validity inside the scene (False on nodata).
        """
        self._drop_spent()
        h, w = valid.shape
        r = row - self.top
        # OpenCV multiplies and adds in one pass, into the buffers' views in place (numpy: three passes)
        cv2.accumulateProduct(
            np.asarray(prediction[:h, :w], np.float32),
            self._channel_weights[:h, :w],
            self.sum[r : r + h, col : col + w],
        )
        cv2.accumulate(self.weights[:h, :w], self.wsum[r : r + h, col : col + w])
        self.valid[r : r + h, col : col + w] |= valid

    def advance(self, next_row: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (first scene row, blended rows (n, width, channels), their validity) for the rows above ``next_row``.

        Those rows are then forgotten: at the next call, the rows below move up in place, so
        the buffers are allocated once and what was yielded stays as it is until then.
        """
        self._drop_spent()
        n = min(next_row, self.height) - self.top
        if n <= 0:
            return
        done = self.sum[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(done, self.wsum[:n], out=done)
        self._spent = n
        yield self.top, done, self.valid[:n]

    def _drop_spent(self) -> None:
        n, self._spent = self._spent, 0
        if n:
            for buffer in (self.sum, self.wsum, self.valid):
                buffer[: self.size - n] = buffer[n:]  # numpy copies overlapping ranges correctly
                buffer[self.size - n :] = 0
            self.top += n


class BlockAligner:
    """Regroups bands of finished rows into bands that start and end on the output's block rows.

    A tiled GeoTIFF compresses a block when it is complete; rows written in bands that cut
    through blocks make GDAL compress partial blocks and write them again (a float32
    prediction grew by half). Rows go out in whole blocks, the scene's last band excepted,
    through one preallocated block of rows.
    """

    def __init__(self, height: int, width: int, block: int, channels: int = 1):
        self.height, self.block = height, block
        self.band = np.zeros((min(block, height), width, channels), np.float32)
        self.valid = np.zeros((min(block, height), width), bool)
        self.top = 0  # scene row of the block being filled
        self.rows = 0  # rows filled

    def push(self, top: int, band: np.ndarray, valid: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Take rows [top, top + len(band)) (following the rows taken before); yield whole blocks of rows.

        A block yielded is reused for the next one: write it before taking more rows.
        """
        if top != self.top + self.rows:
            raise ValueError(f"rows must arrive in order: expected row {self.top + self.rows}, got {top}")
        k = 0
        while k < len(band):
            size = min(self.block, self.height - self.top)
            n = min(size - self.rows, len(band) - k)
            self.band[self.rows : self.rows + n] = band[k : k + n]
            self.valid[self.rows : self.rows + n] = valid[k : k + n]
            self.rows += n
            k += n
            if self.rows == size:
                yield self.top, self.band[:size], self.valid[:size]
                self.top += size
                self.rows = 0
