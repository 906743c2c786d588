"""Colour matching: a scene's band quantiles carried onto a reference's, from a sample of windows."""

from __future__ import annotations

import numpy as np

from roofseg.raster import colours


def test_matching_carries_a_scenes_quantiles_onto_the_reference():
    rng = np.random.default_rng(0)
    dark = rng.normal(60, 15, (200, 200, 3)).clip(0, 255).astype(np.uint8)
    bright = (
        np.stack([rng.normal(m, s, (200, 200)) for m, s in ((170, 30), (150, 20), (120, 40))], -1)
        .clip(0, 255)
        .astype(np.uint8)
    )
    reference = colours.reference([bright])
    table = colours.matching_table(colours.band_quantiles(dark.reshape(-1, 3)), np.asarray(reference.quantiles))
    matched = colours.apply_table(dark, table)
    for band in range(3):
        q = np.linspace(0.05, 0.95, 7)
        np.testing.assert_allclose(np.quantile(matched[..., band], q), np.quantile(bright[..., band], q), atol=4)
    assert (np.diff(table.astype(int), axis=1) >= 0).all()  # a brighter level never maps darker


def test_nodata_stays_zero_and_too_few_pixels_give_no_reference():
    image = np.full((10, 10, 3), 100, np.uint8)
    valid = np.zeros((10, 10), bool)
    valid[:5] = True
    out = colours.apply_table(image, np.tile(np.arange(256, dtype=np.uint8)[::-1], (3, 1)), valid)
    assert (out[5:] == 0).all() and (out[:5] == 155).all()
    import pytest

    with pytest.raises(ValueError, match="too few"):
        colours.reference([image], [valid])


def test_a_scenes_quantiles_come_from_a_sample_of_its_windows():
    reads = []

    def read(row, col, h, w):
        reads.append((row, col, h, w))
        return np.full((h, w, 3), 90, np.uint8), np.ones((h, w), bool)

    q = colours.scene_quantiles(read, 20_000, 20_000, 256)
    assert q.shape == (3, len(colours.LEVELS)) and np.allclose(q, 90)
    assert len(reads) <= colours.SAMPLE_WINDOWS and sum(h * w for *_, h, w in reads) < 0.01 * 20_000**2
    rows = sorted({r for r, *_ in reads})
    assert rows[0] == 0 and rows[-1] == 20_000 - 256  # spread over the whole scene
