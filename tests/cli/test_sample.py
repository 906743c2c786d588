"""``roofseg sample``."""

from __future__ import annotations

import numpy as np
import rasterio


def test_the_same_seed_writes_the_same_scene_and_another_seed_another(tmp_path, run_cli):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        done = run_cli("sample", tmp_path / name, "--size", 96, "--seed", seed, "--quiet")
        assert done.code == 0, done.err
        assert f"image: {tmp_path / name / 'sample_image.tif'}" in done.out
    pixels = {}
    for name in "abc":
        with rasterio.open(tmp_path / name / "sample_image.tif") as ds:
            pixels[name] = ds.read()
            assert ds.crs.to_epsg() == 32633 and ds.res == (0.3, 0.3)
    assert np.array_equal(pixels["a"], pixels["b"]) and not np.array_equal(pixels["a"], pixels["c"])


def test_a_size_too_small_is_one_usage_line(tmp_path, run_cli):
    from conftest import one_error_line

    line = one_error_line(run_cli("sample", tmp_path / "s", "--size", 10))
    assert "--size" in line and not (tmp_path / "s").exists()
