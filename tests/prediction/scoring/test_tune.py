"""roofseg tune: the post-processing chosen on labelled scenes, written into a copy of the model's
card, and taken by predict as its defaults."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from conftest import write_geojson, write_tif
from helpers import red, tiny_keras

T = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)


def scene_with_doubtful_blobs(folder, seed: int):
    """Roofs where red is 191 (probability 0.75 to ``red``), ground 51 (0.2), and false alarms of
    roof size at 148 (0.58): the only cut that keeps every roof and no false alarm lies in (0.58, 0.75]."""
    rng = np.random.default_rng(seed)
    data = np.full((3, 160, 160), 51, np.uint8)
    data[1:] = rng.integers(0, 255, (2, 160, 160))
    roofs = []
    for k, (r, c) in enumerate([(10, 10), (10, 60), (10, 110), (60, 10), (110, 60), (110, 110)]):
        value = 148 if k in (1, 4) else 191
        data[0, r : r + 24, c : c + 24] = value
        if value == 191:
            left, top = T @ (c, r)
            roofs.append(box(left, top - 12, left + 12, top))
    image = write_tif(folder / f"s{seed}.tif", data, transform=T)
    write_geojson(folder / f"s{seed}.geojson", roofs)
    return image


def test_tune_chooses_the_cut_between_false_alarms_and_roofs_and_predict_takes_it(tmp_path, run_cli):
    from roofseg.contracts.card import read_card
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.scoring.tune import tune

    from helpers import read_card_dict as read_model_card

    scenes = [str(scene_with_doubtful_blobs(tmp_path, seed)) for seed in (0, 1)]
    model = tmp_path / "base.keras"
    tiny_keras().save(model)
    before = model.read_bytes()
    table = tune(
        model, scenes, tmp_path / "tuned.keras", options=PredictOptions(tile=64, overlap=16), progress=False, infer=red
    )
    assert table["chosen"]["threshold"] == 0.6  # the cut nearest the default that drops every false alarm
    assert table["pooled"]["chosen"]["object_f1"] == 1.0
    assert table["pooled"]["default"]["object_f1"] == pytest.approx(2 * 1 * (8 / 12) / (1 + 8 / 12))  # 8 of 12 right
    assert model.read_bytes() == before  # the input model is never changed
    chosen = read_card(tmp_path / "tuned.keras").postprocess.choice
    assert chosen.threshold == 0.6 and read_model_card(tmp_path / "tuned.keras")["postprocess"]["scenes"] == [
        "s0",
        "s1",
    ]
    assert read_model_card(model) is None or "postprocess" not in read_model_card(model)


def test_predict_takes_the_tuned_values_unless_told_otherwise(tmp_path, run_cli, monkeypatch):
    import json
    import zipfile

    import fiona

    from roofseg.contracts.card import CARD_FILE as MODEL_CARD

    scene = scene_with_doubtful_blobs(tmp_path, 0)
    model = tmp_path / "tuned.keras"
    tiny_keras().save(model)
    with zipfile.ZipFile(model, "a") as zf:
        zf.writestr(
            MODEL_CARD,
            json.dumps({"postprocess": {"threshold": 0.9, "contact_cut": None, "min_area": 0.0, "regularize": False}}),
        )
    args = ("--tile-size", 64, "--overlap", 16, "--quiet")
    assert run_cli("predict", model, scene, tmp_path / "a.tif", "--vector", tmp_path / "a.gpkg", *args).code == 0
    assert (
        run_cli(
            "predict", model, scene, tmp_path / "b.tif", "--vector", tmp_path / "b.gpkg", "--threshold", 0.05, *args
        ).code
        == 0
    )
    with fiona.open(tmp_path / "a.gpkg") as a, fiona.open(tmp_path / "b.gpkg") as b:
        assert len(a) < len(b)  # the card's 0.9 keeps little of the tiny model's output; --threshold 0.05 wins
