"""The front door: every default of a prediction decided once, from the card and what was stated."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import rasterio

from roofseg.contracts.card import ModelCard, PostProcess, Tuning, read_card, write_card
from roofseg.contracts.provenance import Adaptation, ColourReference
from roofseg.errors import RoofsegError
from roofseg.prediction.request import PredictRequest, colour_default, resolve


def _reference() -> ColourReference:
    from roofseg.raster import colours

    ramp = np.full((64, 64, 3), 20, np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None]
    return colours.reference([ramp])


REFERENCE = _reference()
PLAIN = ModelCard(gsd_m=0.3, tile_size=64, gsd_range_m=(0.2, 0.4), colour_reference=REFERENCE)
TUNED = ModelCard(
    **{**PLAIN.__dict__, "postprocess": Tuning(PostProcess(0.3, 0.4, 10.0, True), "object-f1", match_colours=True)}
)
ADAPTED = replace(PLAIN, adaptation=Adaptation("bn", settings={"match_colours": True}))
TUNED_UNMATCHED = ModelCard(**{**PLAIN.__dict__, "postprocess": Tuning(PostProcess(0.6, None, 2.0, False))})


@pytest.mark.parametrize(
    "card, stated, want",
    [
        (None, {}, {"tile": 256, "threshold": None, "keep_binary": False, "matched": False, "gsd_range": None}),
        (PLAIN, {}, {"tile": 64, "overlap": 16, "threshold": None, "matched": False, "gsd_range": (0.2, 0.4)}),
        (PLAIN, {"vector": "gpkg"}, {"threshold": 0.5, "keep_binary": False, "min_area": 5.0, "regularize": False}),
        (PLAIN, {"threshold": 0.7}, {"threshold": 0.7, "keep_binary": True}),
        (PLAIN, {"native": True}, {"gsd_range": None, "gsd": None}),
        (
            TUNED,
            {"vector": "osm"},
            {"threshold": 0.3, "contact_cut": 0.4, "min_area": 10.0, "regularize": True, "matched": True},
        ),  # fmt: skip
        (TUNED, {"vector": "osm", "min_area": 2.0, "threshold": 0.5}, {"threshold": 0.5, "min_area": 2.0}),
        (TUNED, {"match_colours": False}, {"matched": False}),
        (ADAPTED, {}, {"matched": True}),
        (ADAPTED, {"match_colours": False}, {"matched": False}),
        (TUNED_UNMATCHED, {"vector": "gpkg"}, {"matched": False, "threshold": 0.6, "contact_cut": None}),
        (PLAIN, {"devices": "CPU:0"}, {"engine": "tf"}),
        (PLAIN, {}, {"engine": "auto"}),
    ],
)
def test_resolve_decides_every_default_from_the_card_and_what_was_stated(card, stated, want):
    resolved = resolve(card, PredictRequest(**stated))
    o, v = resolved.options, resolved.vectors
    got = {
        "tile": o.tile,
        "overlap": o.overlap,
        "threshold": o.threshold,
        "keep_binary": o.keep_binary,
        "matched": o.colour_reference is not None,
        "gsd_range": o.gsd_range,
        "gsd": o.gsd,
        "engine": o.engine,
        **({"min_area": v.min_area, "regularize": v.regularize, "contact_cut": v.contact_cut} if v else {}),
    }
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize(
    "stated, option",
    [
        ({"gsd": 0.3, "native": True}, "--native"),
        ({"existing": "x.osm"}, "--existing"),
        ({"regularize": True}, "--regularize"),
        ({"vector": "dwg"}, "--vector"),
        ({"preview": "quick.jpg"}, "--preview"),
        ({"devices": "CPU:0", "engine": "onnx"}, "--engine"),
    ],
)
def test_what_contradicts_itself_names_the_option(stated, option):
    with pytest.raises(RoofsegError) as err:
        resolve(PLAIN, PredictRequest(**stated))
    assert str(err.value.path) == option


def test_the_colour_default_follows_the_models_latest_step():
    assert not colour_default(None) and not colour_default(PLAIN)
    assert colour_default(TUNED) and colour_default(ADAPTED) and not colour_default(TUNED_UNMATCHED)


@pytest.fixture
def matched_model(tmp_path):
    from helpers import tiny_keras

    path = tmp_path / "m.keras"
    tiny_keras().save(path)  # no batch norm: adapt's bn leaves it as it is
    write_card(path, PLAIN)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("order", ["tune-then-adapt", "adapt-then-tune"])
def test_a_model_tuned_and_adapted_in_either_order_predicts_with_the_colours_it_was_adapted_with(
    matched_model, tmp_path, run_cli, order
):
    from roofseg.sample import write_sample

    small = write_sample(tmp_path / "s", size=256, seed=0, progress=False)  # 16 windows: adapt's minimum and more
    tuned, adapted = tmp_path / "tuned.keras", tmp_path / "adapted.keras"
    scene, labels = small["image"], small["labels"]
    if order == "tune-then-adapt":
        result = run_cli("tune", matched_model, scene, "--labels", labels, "-o", tuned, "--quiet")
        assert result.code == 0, result.err
        result = run_cli("adapt", tuned, scene, "-o", adapted, "--match-colours", "--tiles", 16, "--quiet")
        assert result.code == 0, result.err
        final = adapted
        assert read_card(final).postprocess is None  # tune's choice was for the model before adaptation
    else:
        result = run_cli("adapt", matched_model, scene, "-o", adapted, "--match-colours", "--tiles", 16, "--quiet")
        assert result.code == 0, result.err
        result = run_cli("tune", adapted, scene, "--labels", labels, "-o", tuned, "--quiet")
        assert result.code == 0, result.err
        final = tuned
        assert read_card(final).postprocess.match_colours  # tune read the scenes as predict would
    assert resolve(read_card(final), PredictRequest(), final).options.colour_reference is not None


@pytest.mark.slow
def test_predict_scenes_from_python_gives_the_raster_the_command_line_gives(
    matched_model, sample_scene, tmp_path, run_cli
):
    from roofseg.prediction.many import predict_scenes

    write_card(matched_model, TUNED)  # predicted with tune's colour matching
    scene = sample_scene["image"]
    result = run_cli("predict", matched_model, scene, tmp_path / "cli", "--vector", "gpkg", "--quiet", "--engine", "tf")
    assert result.code == 0, result.err
    predict_scenes(matched_model, [str(scene)], tmp_path / "py", request=PredictRequest(vector="gpkg", engine="tf"),
                   progress=False)  # fmt: skip
    name = f"{scene.stem.replace('_image', '')}.tif"
    with rasterio.open(tmp_path / "cli" / name) as a, rasterio.open(tmp_path / "py" / name) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    from roofseg.contracts.run import read_run_record

    assert read_run_record(tmp_path / "py" / "predict.json").options.get("match_colours")
