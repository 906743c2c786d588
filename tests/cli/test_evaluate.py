"""``roofseg evaluate``."""

from __future__ import annotations


def test_a_model_file_that_is_no_model_is_one_line(manifest, tmp_path, run_cli):
    from conftest import one_error_line

    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    line = one_error_line(run_cli("evaluate", junk, manifest, "--quiet"))
    assert str(junk) in line and "not a Keras model file" in line


def test_match_colours_scores_each_scenes_tiles_matched_and_refuses_a_card_without_a_reference(
    manifest, tmp_path, run_cli
):
    import json

    import numpy as np

    from roofseg.contracts.card import ModelCard, write_card
    from roofseg.raster import colours
    from roofseg.training.model import compile_model

    from conftest import one_error_line
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    net = tiny_keras()
    compile_model(net)
    net.save(model)
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64))
    line = one_error_line(run_cli("evaluate", model, manifest, "--match-colours", "--quiet"))
    assert "m.keras" in line and "no colour reference" in line
    dark = np.full((64, 64, 3), 20, np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None]
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64, colour_reference=colours.reference([dark])))
    for flag, out in (("--match-colours", "a.json"), (None, "b.json")):
        result = run_cli("evaluate", model, manifest, *([flag] if flag else []), "--json", tmp_path / out, "--quiet")
        assert result.code == 0, result.err
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["tiles"] == b["tiles"] and a["loss"] != b["loss"]  # the same tiles, seen in other colours


def test_matched_passes_each_tile_through_its_scenes_tables():
    import numpy as np

    from roofseg.training.evaluate import matched

    batch = np.full((2, 4, 4, 3), 100 / 255, np.float32)
    invert = np.tile(np.arange(256, dtype=np.uint8)[::-1], (3, 1))
    out = matched(batch, np.array([b"a", b"b"]), {b"a": invert})
    assert np.allclose(out[0], 155 / 255) and np.allclose(out[1], 100 / 255)


def test_evaluate_matches_a_scene_with_the_table_predict_makes_of_it(manifest, sample_scene, tmp_path):
    import numpy as np

    from roofseg.contracts.card import ModelCard, write_card
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import colour_table
    from roofseg.raster import colours
    from roofseg.raster.scene import Scene
    from roofseg.training.evaluate import scene_tables

    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    dark = np.full((64, 64, 3), 20, np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None]
    reference = colours.reference([dark])
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64, colour_reference=reference))
    tables = scene_tables(model, manifest, "test", 8, None)
    assert tables
    options = PredictOptions(tile=64, colour_reference=reference.quantiles)
    with Scene(sample_scene["image"]) as scene:
        predicted = colour_table(scene, options)
    for table in tables.values():  # the sample is one scene: every split's table is predict's
        np.testing.assert_array_equal(table, predicted)
