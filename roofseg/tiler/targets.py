"""Training targets derived from building instances: the roof itself and the contact borders
between buildings that touch or nearly touch (as solaris' and ramp's building/contact masks).

A model that learns where two buildings meet can split the roof it finds into one region per
building (see :mod:`roofseg.prediction.vector.instances`).
"""

from __future__ import annotations

import cv2
import numpy as np

#: a pixel is contact where two footprints come within this many pixels of it (tile --contact-px)
CONTACT_PX = 3


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


def contact_target(instances: np.ndarray, radius: int, margin: int) -> np.ndarray:
    """The 0/1 uint8 contact target of a window read with ``margin`` px of context on each side,
    cropped to the window: contact at the window's edge depends on buildings just outside it."""
    border = contact_border(instances, radius)
    h, w = instances.shape
    return border[margin : h - margin, margin : w - margin].astype(np.uint8)
