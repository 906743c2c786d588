"""Training targets derived from building instances: the roof itself and the borders where a
cut between buildings belongs.

Four kinds of border target (the manifest's and the card's ``contact_kind``):

- ``between``: only where two buildings touch or nearly touch (solaris' and ramp's contact masks).
  A few pixels in a thousand: the base trained on it never rose above 0.063 and split nothing.
- ``outline`` (the default): every building's own edge band inside its footprint, plus the
  ``between`` pixels. Dense enough to learn (an edge band around every roof), and what is left of
  the roof inside it are the buildings' cores, one per building even where walls are shared: the
  "footprint minus border" seeds of the SpaceNet and Open Cities winners.
- ``distance``: the outline band graded by the distance to the building's own edge: 1 at the
  edge (a shared wall too), falling linearly to 0 at twice the band's width inside, and 1 on the
  ground of narrow gaps between buildings. Roof × (1 − border) then rises to each building's
  middle, as a distance head's output does (the distance transforms of the DSB 2018 and
  SpaceNet 6 winners), in the border channel itself. Stored as 0–255 (the other kinds as 0/1).
- ``relative``: ``distance``, but a building narrower than the grading falls to 0 at its own
  middle: the grading's length is the smaller of twice the band and the building's half-width
  (the distance from its edge to its middle). Every building, however small, then has a middle
  free of border: under ``distance`` a hut 2.8 m wide (the median of ``dhaka_z19_block1``'s 594
  footprints) has its middle at 0.23 of border with a band of 0.9 m, and one 2 m wide at 0.44,
  so small houses are learnt as nearly all border.

A model that learns any of them can split the roof it finds into one region per building (see
:mod:`roofseg.prediction.vector.instances`), the same way: cores are the roof below the cut.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from roofseg.contracts.targets import CONTACT_KINDS, GRADED_KINDS


def band_px(contact_m: float, gsd_m: float) -> int:
    """The border band's width in px on a grid of ``gsd_m`` metres per pixel: ``contact_m`` metres
    of ground, at least 1 px (tile --contact-m). A band of fixed metres is the same band on every
    scene of a tiling and under the training's zoom augmentation; a fixed px width is not."""
    return max(1, round(contact_m / gsd_m))


def disk(radius: int) -> np.ndarray:
    """The structuring element of a disk of ``radius`` px (OpenCV's ellipse of 2r + 1 px)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def contact_border(instances: np.ndarray, radius: int) -> np.ndarray:
    """Boolean (h, w): pixels within ``radius`` px of two different instances.

    ``instances`` is an integer array, 0 for background and one id per building. That covers the
    roof on both sides of a shared wall and the ground in a gap narrower than 2 × ``radius``:
    where a roof mask alone would run two buildings into one.
    """
    if radius <= 0 or instances.max(initial=0) == 0:
        return np.zeros(instances.shape, bool)
    ids = instances.astype(np.float32)  # OpenCV's min/max filters take float32: ids exact below 2**24
    kernel = disk(radius)
    highest = cv2.dilate(ids, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ids[instances == 0] = np.float32(2**24)
    lowest = cv2.erode(ids, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=2**24)
    return (highest > 0) & (lowest < highest)


def outline_border(instances: np.ndarray, radius: int) -> np.ndarray:
    """Boolean (h, w): every building's pixels within ``radius`` px of its own edge (ground or
    another building), plus :func:`contact_border`'s. Each building is eroded on its own, so two
    buildings sharing a wall keep two cores ``2 × radius`` px apart, however thin the wall."""
    if radius <= 0 or instances.max(initial=0) == 0:
        return np.zeros(instances.shape, bool)
    ids = instances.astype(np.float32)
    kernel = disk(radius)
    highest = cv2.dilate(ids, kernel, borderType=cv2.BORDER_REPLICATE)
    lowest = cv2.erode(ids, kernel, borderType=cv2.BORDER_REPLICATE)  # ground (0) counts as another id
    edge = (instances > 0) & ((lowest != ids) | (highest != ids))
    return edge | contact_border(instances, radius)


def distance_border(instances: np.ndarray, radius: int) -> np.ndarray:
    """Float32 (h, w) in [0, 1]: inside each building, 1 − d / (2 × ``radius``), d the distance in
    px to its own edge (0 beyond 2 × ``radius``); 1 on the ground of :func:`contact_border` (gaps
    narrower than 2 × ``radius`` between buildings); 0 on other ground. A building's edge pixels
    are those with a 4-neighbour of another id or ground; every way out of a building crosses its
    own edge, so the distance to the nearest edge pixel of any building is the distance to its
    own. A shared wall is a ridge one edge wide, not a band: a house narrower than the band
    between two neighbours keeps its middle (on Dhaka's true footprints a flat band of 0.9 m left
    post-processing 0.40 object F1, one of 0.44 m 0.93)."""
    if radius <= 0 or instances.max(initial=0) == 0:
        return np.zeros(instances.shape, np.float32)
    graded = np.clip(1.0 - _edge_distance(instances) / (2.0 * radius), 0.0, 1.0).astype(np.float32)
    return _with_gaps(graded, instances, radius)


def _edge_distance(instances: np.ndarray) -> np.ndarray:
    """Float32 (h, w): each building pixel's distance in px to the nearest edge pixel (one with a
    4-neighbour of another id or ground), 0 on edges and ground."""
    ids = np.pad(instances, 1, mode="edge")
    core = instances > 0
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        core &= ids[dy : dy + instances.shape[0], dx : dx + instances.shape[1]] == instances
    return cv2.distanceTransform(core.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _with_gaps(graded: np.ndarray, instances: np.ndarray, radius: int) -> np.ndarray:
    """``graded`` with the ground set to 0, but to 1 in :func:`contact_border`'s gaps."""
    ground = instances == 0
    graded[ground] = 0.0
    graded[ground & contact_border(instances, radius)] = 1.0
    return graded


def relative_border(instances: np.ndarray, radius: int) -> np.ndarray:
    """Float32 (h, w) in [0, 1]: :func:`distance_border`, but inside each building graded over
    the smaller of 2 × ``radius`` and its half-width (its largest distance to its own edge), so
    that each building's middle is 0 (see the module)."""
    if radius <= 0 or instances.max(initial=0) == 0:
        return np.zeros(instances.shape, np.float32)
    distance = _edge_distance(instances)
    ids, index = np.unique(instances, return_inverse=True)
    half_width = ndimage.maximum(distance, labels=instances, index=ids)  # per id, ground's unused
    length = np.clip(half_width, 1.0, 2.0 * radius)[index.reshape(instances.shape)]
    graded = np.clip(1.0 - distance / length, 0.0, 1.0).astype(np.float32)
    return _with_gaps(graded, instances, radius)


#: each kind's border (CONTACT_KINDS, in the same order)
BORDERS = {
    "outline": outline_border,
    "between": contact_border,
    "distance": distance_border,
    "relative": relative_border,
}


def contact_target(instances: np.ndarray, radius: int, margin: int, kind: str = "between") -> np.ndarray:
    """The uint8 border target (``kind``: outline or between, 0/1; distance or relative, 0–255) of a window read
    with ``margin`` px of context on each side, cropped to the window: a border at the window's
    edge depends on buildings just outside it."""
    if kind not in CONTACT_KINDS:
        raise ValueError(f"contact kind must be one of {CONTACT_KINDS}, got {kind!r}")
    h, w = instances.shape
    border = BORDERS[kind](instances, radius)[margin : h - margin, margin : w - margin]
    return np.round(border * 255).astype(np.uint8) if kind in GRADED_KINDS else border.astype(np.uint8)
