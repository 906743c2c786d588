"""Turning any band dtype into uint8: the per-scene 2–98 percentile stretch (pure functions)."""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 2.0
HIGH_PERCENTILE = 98.0
#: the longest side of the decimated read the percentiles are computed from
OVERVIEW_SIZE = 1024

SCALING_RULE = (
    "uint8 bands are used as they are; any other dtype (uint16, int16, float) is stretched "
    f"to 0-255 band by band between its {LOW_PERCENTILE:g}th and {HIGH_PERCENTILE:g}th "
    "percentiles, computed once per scene over the valid pixels of a decimated read "
    f"(longest side {OVERVIEW_SIZE} px, from overviews where the file has them)"
)


def stretch_limits(samples: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (low, high) percentiles of ``samples`` (bands, h, w) over ``valid`` (h, w) pixels."""
    if not valid.any():
        raise ValueError("no valid pixels to compute the percentile stretch from")
    values = samples[:, valid].astype(np.float64)
    lo, hi = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE], axis=1)
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant band maps to 0 instead of dividing by 0
    return lo.astype(np.float32), hi.astype(np.float32)


def stretch_to_uint8(data: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Map ``data`` (bands, h, w) linearly from [lo, hi] per band onto 0–255, clipped."""
    lo = lo.reshape(-1, 1, 1)
    scale = (255.0 / (hi - lo.ravel())).reshape(-1, 1, 1).astype(np.float32)
    out = (data.astype(np.float32) - lo) * scale
    np.nan_to_num(out, copy=False, nan=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def decimation(height: int, width: int, longest: int = OVERVIEW_SIZE) -> tuple[int, int]:
    """The (height, width) of a decimated read whose longest side is at most ``longest``."""
    factor = max(1.0, max(height, width) / longest)
    return max(1, round(height / factor)), max(1, round(width / factor))
