"""roofseg tune: the post-processing chosen on labelled scenes, written into a copy of the model's
card, and taken by predict as its defaults."""

from __future__ import annotations

from dataclasses import asdict, replace

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


def houses_and_specks(folder, small_houses: bool):
    """Four roofs of 10 x 10 m (red 191: probability 0.75 to ``red``) and four unlabelled specks of
    3 x 3 m as bright; with ``small_houses``, four labelled houses of 2 x 2 m as dark as the ground,
    which the model misses."""
    data = np.full((3, 160, 160), 51, np.uint8)
    roofs = []
    for r, c in [(10, 10), (10, 90), (90, 10), (90, 90)]:
        data[0, r : r + 20, c : c + 20] = 191
        data[0, r + 40 : r + 46, c + 40 : c + 46] = 191  # a speck
        left, top = T @ (c, r)
        roofs.append(box(left, top - 10, left + 10, top))
        if small_houses:
            left, top = T @ (c + 30, r)
            roofs.append(box(left, top - 2, left + 2, top))
    name = "small" if small_houses else "large"
    image = write_tif(folder / f"{name}.tif", data, transform=T)
    write_geojson(folder / f"{name}.geojson", roofs)
    return image


@pytest.mark.parametrize("small_houses", [False, True])
def test_tune_raises_the_smallest_area_only_where_few_labelled_buildings_are_smaller(tmp_path, small_houses):
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.scoring.tune import tune

    scene = str(houses_and_specks(tmp_path, small_houses))
    model = tmp_path / "base.keras"
    tiny_keras().save(model)
    table = tune(model, [scene], tmp_path / "tuned.keras", options=PredictOptions(tile=64, overlap=16),
                 progress=False, infer=red)  # fmt: skip
    if small_houses:
        # 10 m² would drop the specks and score better here, and drop every house of 4 m² on the next block
        assert table["chosen"]["min_area"] <= 5.0
        assert table["min_area_limit"] == pytest.approx(4.0, rel=0.05)  # the houses' 2 x 2 m, said to the user
        assert table["pooled"]["chosen"]["predicted"] == 8
    else:
        assert table["chosen"]["min_area"] in (10.0, 20.0)  # no labelled building is under 10 m²: the specks go
        assert table["pooled"]["chosen"]["object_f1"] == 1.0


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


def roof_and_contact_keras():
    """A Keras model that costs nothing: roof where red is bright (a steep sigmoid), contact
    growing with green (a gentle one: green 180 is a contact probability of 0.89, 255 of 0.99)."""
    from roofseg._tf import keras

    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 1, activation="sigmoid")
    model = keras.Model(inp, conv(inp))
    kernel = np.array([[100.0, 0.0], [0.0, 10.0], [0.0, 0.0]]).reshape(1, 1, 3, 2)
    conv.set_weights([kernel, np.array([-50.0, -5.0])])
    return model


def terraces(folder, wall: int = 255, core: int = 2):
    """Houses of 16 x 16 px (8 x 8 m) with a shed against each whose outer two pixels are contact
    (green ``wall``) around a core of ``core`` x ``core`` px. With a core of 2 x 2 px the shed (6 x 6
    px, 9 m²) has a core smaller than the one a 5 m² smallest area asks for at 0.5 m pixels (5 px)."""
    data = np.zeros((3, 200, 200), np.uint8)
    roofs = []
    side = core + 4
    for r in range(8, 180, 32):
        for c in range(8, 170, 40):
            data[0, r : r + 16, c : c + 16] = 255
            data[0, r + 5 : r + 5 + side, c + 16 : c + 16 + side] = 255
            data[1, r + 5 : r + 5 + side, c + 16 : c + 16 + side] = wall
            data[1, r + 7 : r + 7 + core, c + 18 : c + 18 + core] = 0  # the shed's core
            for top, left, h, w in ((r, c, 16, 16), (r + 5, c + 16, side, side)):
                x, y = T @ (left, top)
                roofs.append(box(x, y - h / 2, x + w / 2, y))
    image = write_tif(folder / "terraces.tif", data, transform=T)
    write_geojson(folder / "terraces.geojson", roofs)
    return image


def test_tunes_pooled_score_is_what_evaluate_scene_gives_for_predicts_footprints(tmp_path, run_cli):
    import json

    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.scoring.tune import tune

    scene = terraces(tmp_path)
    model = tmp_path / "m.keras"
    roof_and_contact_keras().save(model)
    table = tune(
        model, [str(scene)], tmp_path / "tuned.keras", options=PredictOptions(tile=64, overlap=16), progress=False
    )
    args = ("--tile-size", 64, "--overlap", 16, "--engine", "tf", "--quiet")
    done = run_cli(
        "predict", tmp_path / "tuned.keras", scene, tmp_path / "p.tif", "--vector", tmp_path / "p.gpkg", *args
    )
    assert done.code == 0, done.err
    done = run_cli(
        "evaluate-scene", tmp_path / "p.tif", tmp_path / "terraces.geojson", "--json", tmp_path / "s.json", "--quiet"
    )
    assert done.code == 0, done.err
    scores = json.loads((tmp_path / "s.json").read_text())
    chosen = table["pooled"]["chosen"]
    assert scores["objects"]["f1"] == pytest.approx(chosen["object_f1"]), (table["chosen"], scores["objects"])
    assert scores["objects"]["predicted"] == chosen["predicted"] and scores["objects"]["matched"] == chosen["matched"]
    assert scores["pixel"]["iou"] == pytest.approx(chosen["pixel_iou"])


def test_evaluate_scene_splits_with_the_post_processing_the_raster_was_made_with(tmp_path, run_cli):
    import json
    import zipfile

    import fiona

    from roofseg.contracts.card import CARD_FILE

    scene = terraces(tmp_path, wall=180, core=3)  # contact 0.89: a wall at the cut 0.5, none at 0.9
    model = tmp_path / "tuned.keras"
    roof_and_contact_keras().save(model)
    post = {"threshold": 0.5, "contact_cut": 0.9, "min_area": 1.0, "regularize": False}
    with zipfile.ZipFile(model, "a") as zf:
        zf.writestr(CARD_FILE, json.dumps({"postprocess": post}))
    args = ("--tile-size", 64, "--overlap", 16, "--engine", "tf", "--quiet")
    assert run_cli("predict", model, scene, tmp_path / "p.tif", "--vector", tmp_path / "p.gpkg", *args).code == 0
    done = run_cli(
        "evaluate-scene", tmp_path / "p.tif", tmp_path / "terraces.geojson", "--json", tmp_path / "s.json", "--quiet"
    )
    assert done.code == 0, done.err
    with fiona.open(tmp_path / "p.gpkg") as written:
        assert json.loads((tmp_path / "s.json").read_text())["objects"]["predicted"] == len(written)


def wide_roofs_only(batch: np.ndarray) -> np.ndarray:
    """A predictor that sees roofs (red) at least 6 px wide only: a morphological opening drops
    narrower ones, as a model trained on large-looking roofs misses small-looking ones."""
    from scipy import ndimage

    roof = batch[..., 0] > 0.5
    opened = np.stack([ndimage.binary_opening(r, np.ones((6, 6), bool)) for r in roof])
    return opened[..., None].astype(np.float32)


COARSE = Affine(1.0, 0, 500_000, 0, -1.0, 5_000_000)


def coarse_roofs(folder, side: int):
    """A 1 m scene of square roofs ``side`` px wide, 20 px apart, with their footprints."""
    data = np.zeros((3, 96, 96), np.uint8)
    roofs = []
    for r in range(8, 96 - side, 20):
        for c in range(8, 96 - side, 20):
            data[0, r : r + side, c : c + side] = 255
            x, y = COARSE @ (c, r)
            roofs.append(box(x, y - side, x + side, y))
    write_geojson(folder / "coarse.geojson", roofs)
    return write_tif(folder / "coarse.tif", data, transform=COARSE)


def half_metre_model(folder, tuning=None):
    """A model file whose card says 0.5 m, trained over 0.5-2 m, 64 px windows (and ``tuning``)."""
    from roofseg.contracts.card import ModelCard, write_card

    model = folder / "m.keras"
    tiny_keras().save(model)
    write_card(model, ModelCard(gsd_m=0.5, gsd_range_m=(0.5, 2.0), tile_size=64, postprocess=tuning))
    return model


@pytest.mark.parametrize("side, chosen", [(4, 0.5), (10, None)])
def test_tune_reads_coarse_scenes_at_the_models_own_gsd_where_that_finds_more_buildings(
    tmp_path, side, chosen, run_cli
):
    """A model of 0.5 m trained over 0.5-2 m: a 1 m scene of 4 px roofs is read at 0.5 m (8 px: found),
    where its own 1 m loses every roof; with roofs of 10 px both find them, and tune keeps the range."""
    from roofseg.contracts.card import read_card
    from roofseg.prediction.rasters.predict import scene_gsd
    from roofseg.prediction.request import PredictRequest, resolve
    from roofseg.prediction.scoring.tune import tune

    scene, model = coarse_roofs(tmp_path, side), half_metre_model(tmp_path)
    table = tune(model, [str(scene)], tmp_path / "tuned.keras", progress=False, infer=wide_roofs_only)
    assert table["max_gsd"] == chosen
    assert table["readings"]["None"]["object_f1"] == (0.0 if side == 4 else 1.0)
    assert table["pooled"]["chosen"]["object_f1"] == 1.0
    card = read_card(tmp_path / "tuned.keras")
    assert card.postprocess.max_gsd == chosen and card.gsd_range == (0.5, 2.0)
    read = resolve(card, PredictRequest()).options
    assert scene_gsd(scene, read) == chosen  # predict reads the scene as tune chose
    assert scene_gsd(scene, resolve(card, PredictRequest(native=True)).options) is None  # --native wins
    assert scene_gsd(scene, resolve(card, PredictRequest(gsd=2.0)).options) == 2.0  # and --gsd


def test_a_scene_read_alike_in_both_readings_is_predicted_and_traced_once(tmp_path, monkeypatch):
    """A 0.5 m scene beside a 1 m one: only the 1 m scene is read anew at the model's 0.5 m, and no
    prediction's footprints are traced twice for one setting."""
    from collections import Counter

    import roofseg.prediction.scoring.tune as tuning
    from roofseg.contracts.card import ModelCard, write_card

    coarse = Affine(1.0, 0, 500_000, 0, -1.0, 5_000_000)
    scenes = []
    for name, transform in (("coarse", coarse), ("fine", T)):
        data = np.zeros((3, 64, 64), np.uint8)
        data[0, 8:20, 8:20] = 255
        scenes.append(str(write_tif(tmp_path / f"{name}.tif", data, transform=transform)))
        x, y = transform @ (8, 8)
        write_geojson(tmp_path / f"{name}.geojson", [box(x, y - 12 * transform.a, x + 12 * transform.a, y)])
    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    write_card(model, ModelCard(gsd_m=0.5, gsd_range_m=(0.5, 2.0), tile_size=64))
    traced, predicted = Counter(), Counter()
    real_buildings, real_predict = tuning.buildings, tuning.predict_scene

    def counting_buildings(prediction, binary, post, **kw):
        traced[(prediction.name, post)] += 1
        return real_buildings(prediction, binary, post, **kw)

    def counting_predict(infer, image, out, options, **kw):
        predicted[image] += 1
        return real_predict(infer, image, out, options, **kw)

    monkeypatch.setattr(tuning, "buildings", counting_buildings)
    monkeypatch.setattr(tuning, "predict_scene", counting_predict)
    table = tuning.tune(model, scenes, tmp_path / "tuned.keras", progress=False, infer=wide_roofs_only)
    assert set(table["readings"]) == {"None", "0.5"}  # the coarse scene made two readings
    assert predicted == {scenes[0]: 2, scenes[1]: 1}
    assert traced and max(traced.values()) == 1


def test_tune_reading_only_keeps_the_cards_choice_and_chooses_the_reading_at_it(tmp_path, run_cli):
    from roofseg.contracts.card import PostProcess, Tuning, read_card
    from roofseg.contracts.provenance import TuneScores
    from roofseg.errors import RoofsegError
    from roofseg.prediction.scoring.tune import tune

    choice = PostProcess(0.6, None, 1.0, True)
    earlier = Tuning(choice, "object-f1", TuneScores(0.5, 0.4, 4, 10, 10), ("elsewhere",))
    scene, model = coarse_roofs(tmp_path, 4), half_metre_model(tmp_path, earlier)
    table = tune(model, [str(scene)], tmp_path / "t.keras", progress=False, infer=wide_roofs_only, reading_only=True)
    assert table["max_gsd"] == 0.5 and table["chosen"] == table["default"] == asdict(choice)
    tuned = read_card(tmp_path / "t.keras").postprocess
    assert tuned == replace(earlier, max_gsd=0.5, reading_scenes=("coarse",))  # the choice's record kept

    fine = write_tif(tmp_path / "fine.tif", np.zeros((3, 64, 64), np.uint8), transform=T)
    write_geojson(tmp_path / "fine.geojson", [box(500_004, 4_999_990, 500_008, 4_999_996)])
    with pytest.raises(RoofsegError, match="no reading to choose"):
        tune(model, [str(fine)], tmp_path / "u.keras", progress=False, infer=wide_roofs_only, reading_only=True)
    assert not (tmp_path / "u.keras").exists()


def test_tuning_on_scenes_no_coarser_than_the_model_keeps_the_reading_chosen_before(tmp_path, run_cli):
    """No scene here is read coarser than the model's 0.5 m, so none can choose how coarse scenes
    are read: the card's earlier choice (read at 0.5 m, chosen on "coarse") stands."""
    from roofseg.contracts.card import PostProcess, Tuning, read_card
    from roofseg.contracts.provenance import TuneScores
    from roofseg.prediction.scoring.tune import tune

    earlier = Tuning(PostProcess(0.6, None, 1.0, True), "object-f1", TuneScores(0.5, 0.4, 4, 10, 10), ("elsewhere",))
    model = half_metre_model(tmp_path, replace(earlier, max_gsd=0.5, reading_scenes=("coarse",)))
    data = np.zeros((3, 64, 64), np.uint8)
    data[0, 8:20, 8:20] = 255
    fine = write_tif(tmp_path / "fine.tif", data, transform=T)
    x, y = T @ (8, 8)
    write_geojson(tmp_path / "fine.geojson", [box(x, y - 6, x + 6, y)])
    table = tune(model, [str(fine)], tmp_path / "t.keras", progress=False, infer=wide_roofs_only)
    assert set(table["readings"]) == {"None"}
    tuned = read_card(tmp_path / "t.keras").postprocess
    assert tuned.scenes == ("fine",) and tuned.max_gsd == 0.5 and tuned.reading_scenes == ("coarse",)
    assert table["max_gsd"] == 0.5
    said = run_cli("tune", model, fine, "-o", tmp_path / "u.keras", "--quiet")
    assert said.code == 0 and "reading:  kept as chosen on coarse" in said.out
