"""Colour matching: a scene's band histograms matched to the training tiles' before the model sees it.

A model's card keeps its training tiles' band quantiles (the reference, :func:`reference`). At
prediction, each scene's quantiles are taken from a sample of its windows (no second full read of
a large scene), and every window is passed through one lookup table per band that maps the
scene's quantiles onto the reference's (:func:`matching_table`), piecewise linearly.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from roofseg.contracts.provenance import ColourReference

LEVELS = np.linspace(0.0, 1.0, 101)  # the quantiles kept: every percent
SAMPLE_WINDOWS = 32  # windows read to take a scene's quantiles
MIN_PIXELS = 4096  # fewer valid pixels than this and a scene's histogram says nothing


def band_quantiles(pixels: np.ndarray) -> np.ndarray:
    """(bands, len(LEVELS)) quantiles of ``pixels`` (N, bands) uint8."""
    return np.quantile(pixels.astype(np.float32), LEVELS, axis=0).T


def reference(images: Iterable[np.ndarray], valid: Iterable[np.ndarray] | None = None) -> ColourReference:
    """The reference a card stores: the band quantiles of ``images`` (h, w, bands) uint8, over
    their ``valid`` pixels where given, and how many images and pixels they were taken from."""
    chosen, count = [], 0
    masks = iter(valid) if valid is not None else None
    for image in images:
        keep = next(masks) if masks is not None else image.any(axis=-1)
        chosen.append(image[keep])
        count += 1
    pixels = np.concatenate(chosen) if chosen else np.zeros((0, 3), np.uint8)
    if len(pixels) < MIN_PIXELS:
        raise ValueError(f"{len(pixels)} valid pixels are too few for a colour reference")
    quantiles = np.round(band_quantiles(pixels), 2).tolist()
    return ColourReference(tuple(tuple(band) for band in quantiles), len(LEVELS), count, int(len(pixels)))


def sample_windows(height: int, width: int, size: int, count: int = SAMPLE_WINDOWS) -> list[tuple[int, int]]:
    """Up to ``count`` windows' (row, col) spread evenly over a scene: a grid of the scene's shape."""
    rows = max(1, min(int(round(np.sqrt(count * height / max(width, 1)))), max(1, height // size)))
    cols = max(1, min(count // rows, max(1, width // size)))
    r = np.linspace(0, max(0, height - size), rows).astype(int)
    c = np.linspace(0, max(0, width - size), cols).astype(int)
    return [(int(a), int(b)) for a in r for b in c]


def scene_quantiles(read, height: int, width: int, size: int = 256) -> np.ndarray | None:
    """A scene's band quantiles from a sample of its windows; ``read(row, col, h, w)`` gives a
    window's uint8 (h, w, bands) image and its valid (h, w) mask. None where too few pixels are valid."""
    pixels = []
    for row, col in sample_windows(height, width, size):
        image, valid = read(row, col, min(size, height - row), min(size, width - col))
        pixels.append(image[valid])
    pixels = np.concatenate(pixels)
    if len(pixels) < MIN_PIXELS:
        return None
    return band_quantiles(pixels)


def scene_table(read, height: int, width: int, size: int, reference: np.ndarray) -> np.ndarray | None:
    """The tables that match a scene's colours (from a sample of its windows, see
    :func:`scene_quantiles`) to ``reference``; None where too few of its pixels are valid."""
    quantiles = scene_quantiles(read, height, width, size)
    return None if quantiles is None else matching_table(quantiles, reference)


def matching_table(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(bands, 256) uint8 lookup tables that carry ``source``'s band quantiles onto ``target``'s
    (both (bands, levels)): histogram matching, piecewise linear between quantiles."""
    levels = np.arange(256, dtype=np.float32)
    tables = []
    for src, dst in zip(np.asarray(source, np.float32), np.asarray(target, np.float32)):
        # equal quantiles (a flat histogram stretch) would make np.interp's x non-increasing
        src = np.maximum.accumulate(src + np.arange(len(src)) * 1e-4)
        tables.append(np.clip(np.round(np.interp(levels, src, dst)), 0, 255).astype(np.uint8))
    return np.stack(tables)


def apply_table(image: np.ndarray, table: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``image`` (h, w, bands) uint8 with each band passed through its row of ``table``; nodata stays 0."""
    out = cv2.merge([cv2.LUT(image[..., b], table[b]) for b in range(image.shape[-1])])
    if out.ndim == 2:
        out = out[..., None]
    if valid is not None and not valid.all():
        out[~valid] = 0
    return out
