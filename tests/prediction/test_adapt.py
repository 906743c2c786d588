"""roofseg adapt: batch-norm statistics and self-training on a new city's scenes, without labels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from roofseg.contracts.card import ModelCard, read_card, write_card
from roofseg.prediction.adapt import AdaptConfig, adapt_batch_norm, pseudo_labels, self_train, target_tiles
from roofseg.prediction.request import resolve
from roofseg.training.model import load_model

from conftest import one_error_line, write_tif


def bn_model(seed: int = 0):
    """A small model with a batch norm, saved as roofseg saves models."""
    from roofseg._tf import keras
    from roofseg.training.model import SegmentationModel

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")(keras.layers.ReLU()(x))
    return SegmentationModel(inputs=inp, outputs=out)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "in.keras"
    bn_model().save(path)
    write_card(path, ModelCard(gsd_m=0.5, tile_size=64, gsd_range_m=(0.5, 0.5)))
    return path


def city(tmp_path, name="city.tif", size=256, level=200):
    rng = np.random.default_rng(3)
    data = rng.normal(level, 20, (3, size, size)).clip(0, 255).astype(np.uint8)
    data[:, 40:90, 40:120] = 30  # dark roofs
    return write_tif(tmp_path / name, data)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_batch_norm_statistics_become_those_of_the_target_windows(model_file, tmp_path):
    model = load_model(model_file, compile=False)
    tiles = target_tiles([str(city(tmp_path))], resolve(read_card(model_file)).options, AdaptConfig(tiles_per_scene=16))
    assert len(tiles.images) == 16 and tiles.per_scene == {"city.tif": 16}
    before = model.get_layer("bn").moving_mean.numpy().copy()
    adapt_batch_norm(model, tiles.images, batch=4, progress=False)
    from roofseg._tf import keras

    conv = keras.Model(model.input, model.get_layer("bn").input)
    features = conv.predict(tiles.images.astype(np.float32) / 255, verbose=0)
    expected = features.reshape(-1, 4).mean(axis=0)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), expected, rtol=1e-3, atol=1e-4)
    assert not np.allclose(before, expected)
    assert model.get_layer("bn").momentum == 0.99  # put back


def test_pseudo_labels_leave_out_the_band_around_the_threshold():
    class Fixed:
        def predict(self, x, batch_size, verbose):
            return np.array([0.05, 0.3, 0.5, 0.7, 0.95], np.float32).reshape(1, 1, 5, 1)

    from roofseg.prediction.adapt import TargetTiles

    tiles = TargetTiles(np.zeros((1, 1, 5, 3), np.uint8), np.array([[[True, True, True, True, False]]]), {})
    labels = pseudo_labels(Fixed(), tiles, 0.1, 0.9, 1)
    assert labels[0, 0, :, 0].tolist() == [0, 0, 0, 0, 1]
    assert labels[0, 0, :, 1].tolist() == [1, 0, 0, 0, 0]  # the sure ground; 0.95 is on a nodata pixel


def test_self_training_resumes_from_its_checkpoint(model_file, tmp_path):
    model = load_model(model_file, compile=False)
    cfg = AdaptConfig(methods=("self-train",), tiles_per_scene=8, steps=4, batch=4, low=0.4, high=0.6)
    tiles = target_tiles([str(city(tmp_path))], resolve(read_card(model_file)).options, cfg)
    work = tmp_path / "work"
    self_train(model, tiles, AdaptConfig(**{**cfg.__dict__, "steps": 2}), work, progress=False)  # killed after 2
    after_two = [w.copy() for w in model.get_weights()]
    fresh = load_model(model_file, compile=False)
    self_train(fresh, tiles, cfg, work, progress=False)  # picks up at step 2
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(work / "checkpoints"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4
    assert any(not np.allclose(a, b) for a, b in zip(after_two, fresh.get_weights()))


def test_adapt_writes_a_new_model_with_its_card_and_never_changes_the_input(model_file, tmp_path, run_cli):
    before = digest(model_file)
    scene = city(tmp_path)
    small = write_tif(tmp_path / "small.tif", np.full((3, 100, 100), 90, np.uint8))  # one whole window
    tiny = write_tif(tmp_path / "tiny.tif", np.full((3, 40, 40), 90, np.uint8))  # none
    out = tmp_path / "adapted.keras"
    args = ["--method", "bn,self-train", "--steps", "2", "--tiles", "8", "--batch", "4", "--quiet"]
    result = run_cli("adapt", model_file, scene, small, tiny, "-o", out, *args)
    assert result.code == 0, result.err
    warned = [ln for ln in result.err.splitlines() if "tiny.tif" in ln]
    assert len(warned) == 1 and "no usable window" in warned[0]
    assert digest(model_file) == before
    card = read_card(out)
    done = card.adaptation
    assert done.method == "bn,self-train" and done.input_sha256 == before
    assert done.scenes == ({"name": "city.tif", "tiles": 8}, {"name": "small.tif", "tiles": 1})
    assert done.settings["steps"] == 2 and set(done.pseudo_labels) == {"roof", "ground", "left_out"}
    assert card.base.sha256 == before and card.gsd_m == 0.5
    assert load_model(out).predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 64, 64, 1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no checkpoint left
    result = run_cli("adapt", model_file, small, "-o", tmp_path / "none.keras", "--quiet")
    assert "fewer than 8" in one_error_line(result) and not (tmp_path / "none.keras").exists()


def test_a_city_of_small_chips_adapts_on_the_windows_of_the_run(model_file, tmp_path, run_cli):
    """Nine 64 px chips give one window each: together enough, though no chip alone is (the README's
    first no-labels command, with a quoted glob)."""
    chips = tmp_path / "chips"
    chips.mkdir()
    rng = np.random.default_rng(0)
    for k in range(9):
        write_tif(chips / f"chip{k}.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    out = tmp_path / "city.keras"
    result = run_cli("adapt", model_file, str(chips / "*.tif"), "-o", out, "--quiet")
    assert result.code == 0, result.err
    assert read_card(out).adaptation.windows == 9


def test_adapt_reads_the_bands_predict_is_told(model_file, tmp_path, run_cli):
    data = np.zeros((3, 256, 256), np.uint8)
    data[2] = 250  # the third band bright, the others dark
    scene = write_tif(tmp_path / "bgr.tif", data)
    means = {}
    for bands in ("1,2,3", "3,2,1"):
        out = tmp_path / f"{bands.replace(',', '')}.keras"
        result = run_cli("adapt", model_file, scene, "-o", out, "--bands", bands, "--quiet")
        assert result.code == 0, result.err
        assert read_card(out).adaptation.settings["bands"] == [int(b) for b in bands.split(",")]
        means[bands] = load_model(out, compile=False).get_layer("bn").moving_mean.numpy()
    assert not np.allclose(means["1,2,3"], means["3,2,1"])  # the statistics of other inputs


def test_a_resume_of_another_run_starts_again_and_says_so(model_file, tmp_path, monkeypatch, capsys):
    """A killed run of one model and scene left its work beside the output; a run of another model,
    scene and thresholds into the same output must not train on that work."""
    import shutil

    from roofseg.prediction import adapt as adapting

    other = tmp_path / "other.keras"
    bn_model(seed=1).save(other)
    write_card(other, ModelCard(gsd_m=0.5, tile_size=64, gsd_range_m=(0.5, 0.5)))
    first, second = city(tmp_path, "a.tif", level=200), city(tmp_path, "b.tif", level=60)
    out = tmp_path / "out.keras"
    cfg = AdaptConfig(methods=("self-train",), tiles_per_scene=8, steps=2, batch=4)
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # the first run is "killed": its work stays
    adapting.adapt(model_file, [str(first)], out, cfg, progress=False)
    monkeypatch.undo()
    assert (tmp_path / ".out.keras.adapt" / "pseudo-labels.npy").exists()
    cfg2 = AdaptConfig(methods=("self-train",), tiles_per_scene=8, steps=2, batch=4, low=0.2, high=0.8)
    done = adapting.adapt(other, [str(second)], out, cfg2, progress=False)
    assert "another adapt run" in capsys.readouterr().out
    fresh = adapting.adapt(other, [str(second)], tmp_path / "fresh.keras", cfg2, progress=False)
    assert done.pseudo_labels == fresh.pseudo_labels  # the labels of this run, not the killed one's


def test_adapt_reads_windows_as_predict_would_for_the_model_colour_matching_included(model_file, tmp_path, run_cli):
    """A model tuned with --match-colours is predicted with its scenes matched: adapt reads its
    windows through the same front door, so its statistics are those of matched windows, and it
    records the choice (say --no-match-colours for the other)."""
    from dataclasses import replace

    from roofseg.contracts.card import PostProcess, Tuning
    from roofseg.raster import colours

    rng = np.random.default_rng(0)
    bright = rng.integers(150, 255, (64, 64, 3), dtype=np.uint8)
    tuned = tmp_path / "tuned.keras"
    tuned.write_bytes(model_file.read_bytes())
    card = replace(read_card(model_file), colour_reference=colours.reference([bright]))
    write_card(tuned, card.with_tuning(Tuning(PostProcess(), "object-f1", match_colours=True)))
    scene = city(tmp_path, level=60)  # darker than the training tiles
    means = {}
    for flag in ((), ("--no-match-colours",)):
        out = tmp_path / f"adapted{len(flag)}.keras"
        result = run_cli("adapt", tuned, scene, "-o", out, "--quiet", *flag)
        assert result.code == 0, result.err
        assert read_card(out).adaptation.match_colours is (not flag)
        means[flag] = load_model(out, compile=False).get_layer("bn").moving_mean.numpy()
    assert not np.allclose(means[()], means[("--no-match-colours",)])  # matched windows, other statistics
    assert resolve(read_card(tmp_path / "adapted0.keras")).options.colour_reference is not None
