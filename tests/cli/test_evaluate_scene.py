"""``roofseg evaluate-scene``."""

from __future__ import annotations

import numpy as np


def test_a_raster_that_is_no_prediction_is_refused_in_one_line(sample_scene, tmp_path, run_cli):
    from conftest import one_error_line

    line = one_error_line(run_cli("evaluate-scene", sample_scene["image"], sample_scene["labels"], "--quiet"))
    assert "sample_image.tif" in line and "is not a prediction raster" in line


def test_a_perfect_mask_scores_one(sample_scene, tmp_path, run_cli):
    import json

    import rasterio

    with rasterio.open(sample_scene["mask"]) as ds:
        assert np.unique(ds.read(1)).tolist() == [0, 1]
    done = run_cli(
        "evaluate-scene", sample_scene["mask"], sample_scene["labels"], "--json", tmp_path / "s.json", "--quiet"
    )
    assert done.code == 0, done.err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["pixel"]["iou"] > 0.99, scores
