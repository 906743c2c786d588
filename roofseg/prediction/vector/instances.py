"""One region per building: a roof region split where the model sees contact borders.

A roof region of touching buildings is one blob in a thresholded roof mask. The model's
contact channel marks where buildings meet; the region minus those borders falls apart into
building cores, from which a watershed over the contact probability grows each building back
to the region's full extent (the approach of the SpaceNet and DSB winners, and of solaris).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from scipy import ndimage
from skimage.segmentation import watershed

from roofseg.contracts.tags import read_tags
from roofseg.contracts.targets import CONTACT


@dataclass(frozen=True)
class ContactBand:
    """Where a prediction keeps its contact probability: a band of a raster, and the pixel value
    from which a pixel is a border (the threshold times the raster's probability scale)."""

    path: str
    band: int
    cut: float


def contact_band(prediction: str, threshold: float = 0.5) -> ContactBand | None:
    """The contact band of a prediction raster written by ``roofseg predict``, or None (a model
    without a contact output, or a raster from elsewhere)."""

    with rasterio.open(prediction) as ds:
        tags = read_tags(ds)
    if tags is None or CONTACT not in tags.bands:
        return None
    return ContactBand(str(prediction), tags.bands.index(CONTACT) + 1, threshold * tags.scale)


def split_region(region: np.ndarray, contact: np.ndarray, cut: float, min_core: int) -> np.ndarray:
    """int32 labels of one roof ``region`` (boolean (h, w)): 1, 2, … per building, 0 outside.

    Cores are the region's pixels below ``cut`` in ``contact``, 4-connected (cores touching at a
    corner stay two), those under ``min_core`` pixels dropped as noise. Each core floods the
    region over the contact probability, so the split lines fall on the contact ridges. The flood
    is 8-connected, as the region is traced, so no pixel of the region is lost (one reached from
    no core, if any, joins the nearest core's building). With fewer than two cores the region
    stays whole.
    """

    cores, n = ndimage.label(region & (contact < cut))
    if n > 1:
        sizes = np.bincount(cores.ravel())
        small = sizes < min_core
        small[0] = False
        if small.any():
            keep = np.flatnonzero(~small[1:]) + 1
            relabel = np.zeros(n + 1, np.int32)
            relabel[keep] = np.arange(1, len(keep) + 1)
            cores, n = relabel[cores], len(keep)
    if n < 2:
        return region.astype(np.int32)
    labels = watershed(contact.astype(np.float32), cores, mask=region, connectivity=2).astype(np.int32)
    orphans = region & (labels == 0)
    if orphans.any():
        nearest = ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
        labels[orphans] = labels[tuple(nearest)][orphans]
    return labels
