"""predict --match-colours: each scene's colours matched to the model's training tiles before it sees them."""

from __future__ import annotations

import numpy as np
import rasterio

from roofseg.contracts.card import ModelCard, write_card
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.raster import colours

from conftest import one_error_line, write_tif
from helpers import tiny_keras


def brightness(batch):
    return batch.mean(axis=-1, keepdims=True)


def test_a_dark_scene_matched_to_a_bright_reference_is_predicted_as_bright(tmp_path):
    rng = np.random.default_rng(1)
    dark = rng.normal(50, 10, (3, 300, 300)).clip(0, 255).astype(np.uint8)
    scene = write_tif(tmp_path / "dark.tif", dark)
    bright = rng.normal(180, 10, (100, 100, 3)).clip(0, 255).astype(np.uint8)
    reference = colours.reference([bright]).quantiles
    opts = PredictOptions(tile=64, overlap=16, dtype="float32")
    predict_scene(brightness, scene, tmp_path / "as_is.tif", opts, progress=False)
    predict_scene(
        brightness,
        scene,
        tmp_path / "matched.tif",
        PredictOptions(**{**opts.__dict__, "colour_reference": reference}),
        progress=False,
    )
    with rasterio.open(tmp_path / "as_is.tif") as a, rasterio.open(tmp_path / "matched.tif") as b:
        assert abs(a.read(1).mean() - 50 / 255) < 0.02
        assert abs(b.read(1).mean() - 180 / 255) < 0.03


def test_a_card_without_a_reference_is_refused_in_one_line(tmp_path, run_cli, sample_scene):
    model = tmp_path / "old.keras"
    tiny_keras().save(model)
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64))
    result = run_cli("predict", model, sample_scene["image"], tmp_path / "o.tif", "--match-colours", "--quiet")
    line = one_error_line(result)
    assert "old.keras" in line and "no colour reference" in line and "ship-base" in line
    assert not (tmp_path / "o.tif").exists()


def test_with_a_reference_the_command_predicts_matched(tmp_path, run_cli, sample_scene):
    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    rng = np.random.default_rng(2)
    reference = colours.reference([rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)])
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64, colour_reference=reference))
    for flag, out in (("--match-colours", "a.tif"), ("--no-match-colours", "b.tif")):
        result = run_cli("predict", model, sample_scene["image"], tmp_path / out, flag, "--dtype", "float32", "--quiet")
        assert result.code == 0, result.err
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.abs(a.read(1) - b.read(1)).mean() > 1e-3
