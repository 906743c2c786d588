"""One region per building: a roof region split where the model sees contact borders.

A roof region of touching buildings is one blob in a thresholded roof mask. The model's
contact channel marks where buildings meet. Each building is seeded inside the region, and a
watershed grows the seeds back to the region's full extent (the approach of the SpaceNet and
DSB winners, and of solaris). Two seed rules (``roofseg tune`` chooses):

- cores (``depth`` None): the region's pixels whose contact probability is below a cut fall
  apart into one core per building. One cut for the whole scene: where the borders are faint
  (a place the model never saw, tiny roofs whose borders are most of their pixels) the cores
  run together.
- peaks (``depth``): each peak of roof × (1 − contact) that rises at least ``depth`` above the
  saddle to any higher peak seeds a building (the h-maxima of morphological reconstruction,
  skimage.morphology.h_maxima). The depth is relative, so a faint border between two tin roofs
  still parts them: on Dhaka, from one fine-tuned model's predictions, peaks 0.06 deep matched
  258 buildings and cores below 0.5 matched 87 (``bench/separation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from roofseg.contracts.tags import read_tags
from roofseg.contracts.targets import CONTACT, ROOF


@dataclass(frozen=True)
class ContactBand:
    """Where a prediction keeps its contact probability: a band of a raster, the pixel value
    from which a pixel is a border (the threshold times the raster's probability scale), and the
    seed rule (``depth``: peaks of that depth, see the module; None: cores below the cut)."""

    path: str
    band: int
    cut: float
    depth: float | None = None
    scale: float = 1.0  # the stored value of probability 1
    roof_band: int = 1


def contact_band(prediction: str, threshold: float = 0.5, depth: float | None = None) -> ContactBand | None:
    """The contact band of a prediction raster written by ``roofseg predict``, or None (a model
    without a contact output, or a raster from elsewhere)."""

    with rasterio.open(prediction) as ds:
        tags = read_tags(ds)
    if tags is None or CONTACT not in tags.bands:
        return None
    band = tags.bands.index(CONTACT) + 1
    return ContactBand(str(prediction), band, threshold * tags.scale, depth, tags.scale, tags.bands.index(ROOF) + 1)


def split_region(
    region: np.ndarray,
    contact: np.ndarray,
    cut: float,
    min_core: int,
    roof: np.ndarray | None = None,
    depth: float | None = None,
) -> np.ndarray:
    """int32 labels of one roof ``region`` (boolean (h, w)): 1, 2, … per building, 0 outside.

    Cores (``depth`` None) are the region's pixels below ``cut`` in ``contact``, 4-connected
    (cores touching at a corner stay two), those under ``min_core`` pixels dropped as noise.
    Peaks (``depth`` and ``roof`` given, both probabilities as 0–1) are the regional maxima of
    roof × (1 − contact) at least ``depth`` high (see the module). Each seed floods the
    region, over the contact probability or down the peaks' slopes, so the split lines fall on
    the contact ridges. The flood is 8-connected, as the region is traced, so no pixel of the
    region is lost (one reached from no seed, if any, joins the nearest seed's building). With
    fewer than two seeds the region stays whole.
    """

    labels = None
    if depth is not None:
        if roof is None:
            raise ValueError("peaks need the roof probability")
        height = np.where(region, roof * (1.0 - contact), 0.0)
        seeds, n = ndimage.label(h_maxima(height, depth).astype(bool) & region, structure=np.ones((3, 3)))
        flood = -height
        if n > 1:  # a peak whose basin is under min_core pixels is noise: its pixels go to its neighbours
            labels = watershed(flood, seeds, mask=region, connectivity=2)
            kept = np.bincount(labels.ravel(), minlength=n + 1) >= min_core
            if not kept[1:].all():  # flooded again without them; else the first flood stands
                seeds, n = _keep(seeds, n, kept)
                labels = None
    else:
        seeds, n = _cores(region, contact, cut, min_core)
        flood = contact.astype(np.float32)
    if n < 2:
        return region.astype(np.int32)
    if labels is None:
        labels = watershed(flood, seeds, mask=region, connectivity=2)
    labels = labels.astype(np.int32)
    orphans = region & (labels == 0)
    if orphans.any():
        nearest = ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
        labels[orphans] = labels[tuple(nearest)][orphans]
    return labels


def _cores(region: np.ndarray, contact: np.ndarray, cut: float, min_core: int) -> tuple[np.ndarray, int]:
    """The region's 4-connected cores below ``cut``, those under ``min_core`` pixels dropped, and their count."""
    cores, n = ndimage.label(region & (contact < cut))
    if n > 1:
        cores, n = _keep(cores, n, np.bincount(cores.ravel(), minlength=n + 1) >= min_core)
    return cores, n


def _keep(seeds: np.ndarray, n: int, kept: np.ndarray) -> tuple[np.ndarray, int]:
    """``seeds`` (labels 1..n) with those whose ``kept`` entry is False removed, renumbered, and their count."""
    kept = kept.copy()
    kept[0] = False
    if kept[1:].all():
        return seeds, n
    relabel = np.zeros(n + 1, np.int32)
    relabel[kept] = np.arange(1, int(kept.sum()) + 1)
    return relabel[seeds], int(kept.sum())
