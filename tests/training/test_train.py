"""Training: the loss goes down, artefacts are written, checkpoints reload, encoder weights load
(test_training_runs.py: killed runs, several devices and workers)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio

from conftest import epochs_logged

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(manifest, tmp_path_factory):
    from roofseg.training.train import TrainConfig, train

    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(run),
        encoder_weights="none",
        epochs=5,
        batch_size=4,
        steps_per_epoch=6,
        learning_rate=1e-3,
        strategy="default",
        samples=3,
    )
    return run, train(cfg, verbose=0)


def test_training_lowers_the_loss_and_writes_every_artefact(trained):
    from roofseg.training.reports import read_history

    run, summary = trained
    log = read_history(run / "history.csv")
    assert log["epoch"] == [0, 1, 2, 3, 4]
    assert log["loss"][-1] < log["loss"][0] - 0.05, log["loss"]
    for name in ("config.json", "best.keras", "history.csv", "curves.png", "samples.png", "summary.json"):
        assert (run / name).stat().st_size > 0, name
    assert list((run / "logs").rglob("*.tfevents.*")), "TensorBoard logs"
    assert not (run / "backup").exists()  # a finished run leaves nothing to resume
    config = json.loads((run / "config.json").read_text())
    assert config["learning_rate"] == 1e-3 and config["global_batch"] == 4
    assert summary["best_val_loss"] == min(log["val_loss"])


def test_best_checkpoint_reloads_and_predicts_identically(trained, manifest, tmp_path):
    from roofseg.training.evaluate import evaluate
    from roofseg.training.model import load_model

    run, summary = trained
    model = load_model(run / "best.keras")
    x = np.random.default_rng(0).random((2, 96, 64, 3), dtype=np.float32)  # any size divisible by 32
    first = model.predict(x, verbose=0)
    assert first.shape == (2, 96, 64, 2) and first.dtype == np.float32  # roof and contact
    model.save(tmp_path / "again.keras")
    np.testing.assert_array_equal(load_model(tmp_path / "again.keras").predict(x, verbose=0), first)
    # the checkpoint is the best epoch's model: it scores the validation loss logged for that epoch
    scores = evaluate(run / "best.keras", manifest, "val", batch_size=4)
    assert scores["loss"] == pytest.approx(summary["best_val_loss"], rel=1e-3)  # the loss is ~6 (borders x4)
    assert 0.0 <= scores["iou"] <= 1.0 and sum(scores["pixels"].values()) == scores["tiles"] * 64 * 64


def test_evaluate_command_prints_and_writes_scores(trained, manifest, tmp_path, run_cli):
    run, _ = trained
    res = run_cli("evaluate", run / "best.keras", manifest, "--split", "test", "--json", tmp_path / "s.json")
    assert res.code == 0, res.err
    assert "Test Loss: " in res.out and " - Test IoU: " in res.out
    scores = json.loads((tmp_path / "s.json").read_text())
    assert {"loss", "iou", "f1", "precision", "recall", "pixels"} <= scores.keys()


def test_imagenet_weights_come_from_the_keras_cache_file(tmp_path, monkeypatch, run_cli, manifest):
    from roofseg._tf import sm
    from roofseg.training.model import IMAGENET_FILE, build_model, resolve_encoder_weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    res = run_cli("train", manifest, "-o", tmp_path / "run", "--encoder-weights", "imagenet")
    assert res.code == 1
    assert len(res.err.strip().splitlines()) == 1 and IMAGENET_FILE in res.err and "cannot download" in res.err

    from roofseg._tf import keras

    keras.backend.clear_session()  # same layer-name counters for both builds below
    backbone = sm.Backbones.get_backbone(
        "resnet34",
        input_shape=(None, None, 3),
        weights=None,
        include_top=False,
        backend=keras.backend,
        layers=keras.layers,
        models=keras.models,
        utils=keras.utils,
    )
    rng = np.random.default_rng(7)
    backbone.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in backbone.get_weights()])
    (tmp_path / "keras" / "models").mkdir(parents=True)
    backbone.save_weights(str(tmp_path / "keras" / "models" / IMAGENET_FILE))

    keras.backend.clear_session()
    model, encoder = build_model(resolve_encoder_weights("imagenet"))
    by_name = {layer.name: layer for layer in model.layers}
    compared = 0
    for layer in backbone.layers:
        for mine, theirs in zip(by_name[layer.name].get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
            compared += 1
    assert compared > 100 and encoder


def test_freeze_encoder_epochs_train_the_decoder_alone_first(manifest, tmp_path):
    from roofseg._tf import keras
    from roofseg.training.train import TrainConfig, train

    class Watch(keras.callbacks.Callback):
        """Encoder (frozen-at-start) and decoder weights at the start and end of each fit."""

        fits: list = []

        def on_train_begin(self, logs=None):
            frozen = [layer.name for layer in self.model.layers if not layer.trainable and layer.weights]
            self.names = frozen or self.fits[0]["frozen"]
            self.fits.append({"frozen": self.names, "begin": self._snapshot()})

        def on_epoch_end(self, epoch, logs=None):
            # at the epoch's end, before EarlyStopping may restore the best epoch's weights
            self.fits[-1]["end"] = self._snapshot()

        def _snapshot(self):
            layers = {layer.name: layer for layer in self.model.layers}
            enc = [w.numpy().copy() for n in self.names for w in layers[n].weights]
            dec = [w.numpy().copy() for w in layers["final_conv"].weights]
            return enc, dec

    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(tmp_path),
        encoder_weights="none",
        epochs=2,
        freeze_encoder_epochs=1,
        batch_size=4,
        steps_per_epoch=2,
        validation_steps=1,
        learning_rate=1e-2,
        strategy="default",
        samples=2,
    )
    train(cfg, verbose=0, callbacks=[Watch()])
    first, second = Watch.fits
    assert len(first["frozen"]) >= 36  # ResNet34's convolutions: stem, 32 in its units, shortcuts
    changed = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(a, b))  # noqa: E731
    assert not changed(first["begin"][0], first["end"][0])  # encoder untouched while frozen
    assert changed(first["begin"][1], first["end"][1])  # decoder learned
    assert changed(second["begin"][0], second["end"][0])  # then the encoder trains too
    assert epochs_logged(tmp_path) == [0, 1]


def test_the_model_file_remembers_how_it_was_trained_and_predict_warns_of_another_gsd(
    trained, manifest, tmp_path, run_cli
):
    from roofseg.sample import write_sample

    from helpers import read_card_dict as read_model_card

    run, _ = trained
    card = read_model_card(run / "best.keras")
    assert abs(card["gsd_m"] - 0.3) < 0.005  # the sample's 0.3 m pixels, measured on the ground
    assert card["tile_size"] == 64 and card["bands"] == [[1, 2, 3]] and "percentile" in card["scaling"]
    assert card["outputs"] == ["roof", "contact"]  # the tiles carried contact targets, 0.9 m wide (tile's default)
    assert card["contact_m"] == 0.9 and card["contact_px"] is None
    coarse = write_sample(tmp_path / "coarse", size=128, pixel=0.6, seed=5, progress=False)["image"]
    # by default the scene is read at the model's 0.3 m, and the prediction lands on its own 0.6 m grid
    result = run_cli(
        "predict", run / "best.keras", coarse, tmp_path / "p.tif", "--tile", 64, "--overlap", 16, "--quiet"
    )
    assert result.code == 0 and "predicted at 0.3" in result.out, result.err
    with rasterio.open(coarse) as scene, rasterio.open(tmp_path / "p.tif") as pred:
        assert (pred.shape, pred.transform) == (scene.shape, scene.transform)
        assert pred.count == 2 and pred.tags()["ROOFSEG_BANDS"] == "roof,contact"
    result = run_cli(
        "predict", run / "best.keras", coarse, tmp_path / "n.tif", "--tile", 64, "--overlap", 16, "--native", "--quiet"
    )
    assert result.code == 0, result.err
    (line,) = [ln for ln in result.err.splitlines() if "trained at" in ln]  # said once, in roofseg's words
    assert (
        line.startswith("roofseg: warning: ") and "ground pixel size 0.6 m, but the model was trained at 0.3 m" in line
    )
    same = write_sample(tmp_path / "same", size=128, pixel=0.3, seed=5, progress=False)["image"]
    result = run_cli(
        "predict", run / "best.keras", same, tmp_path / "q.tif", "--tile", 64, "--overlap", 16, "--native", "--quiet"
    )
    assert result.code == 0 and "trained at" not in result.err


def test_best_keras_holds_weights_and_card_but_no_optimizer_state(trained):
    import zipfile

    import h5py

    from roofseg.training.model import load_model

    from helpers import read_card_dict as read_model_card

    run, _ = trained
    with zipfile.ZipFile(run / "best.keras") as zf, zf.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
        assert "optimizer" not in h5 and "layers" in h5
    model = load_model(run / "best.keras")  # compiled, as evaluate loads it
    weights = sum(w.numpy().nbytes for w in model.weights)
    assert (run / "best.keras").stat().st_size < 1.3 * weights  # Adam's two moments would make it 3x
    assert read_model_card(run / "best.keras")["outputs"]


def test_a_finished_run_is_kept_unless_overwrite_and_its_model_survives_an_interrupted_rerun(
    trained, manifest, run_cli
):
    from roofseg.training.train import TrainConfig, train

    run, _ = trained
    before = (run / "best.keras").read_bytes()
    assert (run / "last.keras").exists()
    refused = run_cli("train", manifest, "-o", run, "--encoder-weights", "none", "--epochs", 1, "--quiet")
    assert refused.code == 1 and "holds a finished run" in refused.err and "--overwrite" in refused.err
    assert len(refused.err.strip().splitlines()) == 1

    from roofseg._tf import keras

    class CtrlC(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise KeyboardInterrupt

    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(run),
        encoder_weights="none",
        epochs=1,
        batch_size=4,
        steps_per_epoch=2,
        strategy="default",
        samples=1,
    )
    with pytest.raises(KeyboardInterrupt):
        train(cfg, verbose=0, callbacks=[CtrlC()], overwrite=True)
    assert (run / "best.keras").read_bytes() == before  # the last good model is still there
    assert not (run / "last.keras").exists()  # the old run's latest epoch is not this run's


def test_cosine_warms_up_then_decays_to_a_hundredth_over_the_planned_steps():
    from roofseg.training.train import TrainConfig, learning_rate

    cfg = TrainConfig("m.json", "run", learning_rate=1e-3, schedule="cosine", warmup_steps=10)
    rate = learning_rate(cfg, 110)
    at = [float(rate(s)) for s in (0, 5, 10, 60, 110)]
    assert at[0] == pytest.approx(1e-5) and at[0] < at[1] < at[2] == pytest.approx(1e-3)
    assert at[3] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5), rel=1e-3) and at[4] == pytest.approx(1e-5)
    assert learning_rate(TrainConfig("m.json", "run", learning_rate=2e-4), 110) == 2e-4  # plateau: a number


def test_the_ledger_adds_each_run_to_the_bases():
    from roofseg.contracts.card import Ledger, Lineage, ModelCard, ledger_of
    from roofseg.contracts.provenance import TrainedOn
    from roofseg.training.checkpoints import model_ledger

    older = ModelCard(trained_on=TrainedOn(steps=700))
    old = ModelCard(trained_on=TrainedOn(steps=250), base=Lineage("best.keras", "0" * 64, older.to_dict()))
    assert ledger_of(old).steps == 950 and ledger_of(None) == Ledger()  # before ledgers: its lineage's steps
    start = {"base": ledger_of(old).to_dict(), "global_batch": 8, "precision": "float32",
             "cpu": {"cores": 2, "flags": []}, "places": {"a@0.15m": 40}, "started": "2026-12-05"}  # fmt: skip
    ledger = model_ledger(start, 1500, 7200.0)
    assert ledger.steps == 2450 and ledger.tiles_seen == 1500 * 8 and ledger.cpu_hours == 2.0
    assert ledger.places == {"a@0.15m": 40} and [r["steps"] for r in ledger.runs] == [700, 250, 1500]
    again = model_ledger({**start, "base": ledger.to_dict()}, 100, 360.0)
    assert again.steps == 2550 and len(again.runs) == 4


@pytest.mark.slow
def test_two_runs_of_the_same_settings_train_the_same_model(manifest, tmp_path):
    """The suite runs with op determinism and seeds set: a training test's bound holds under any load."""
    from roofseg._tf import keras
    from roofseg.training.train import TrainConfig, train

    losses = []
    for k in range(2):
        keras.utils.set_random_seed(0)
        cfg = TrainConfig(str(manifest), str(tmp_path / f"r{k}"), encoder_weights="none", epochs=1, batch_size=4,
                          steps_per_epoch=4, strategy="default", samples=1, shuffle_buffer=64)  # fmt: skip
        losses.append(train(cfg, verbose=0)["best_val_loss"])
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_a_training_run_parses_its_manifest_once(manifest, tmp_path, monkeypatch):
    from roofseg.contracts import manifest as contract
    from roofseg.training.train import TrainConfig, train

    parsed = []
    real = contract._parse
    monkeypatch.setattr(contract, "_parse", lambda text, path: parsed.append(path) or real(text, path))
    contract._read_local.cache_clear()
    cfg = TrainConfig(str(manifest), str(tmp_path / "run"), encoder_weights="none", epochs=1, batch_size=2,
                      steps_per_epoch=1, validation_steps=1, strategy="default", samples=1)  # fmt: skip
    train(cfg, verbose=0)
    assert parsed == [str(manifest)]


@pytest.mark.slow
def test_the_full_phase_goes_on_from_the_frozen_phases_steps(manifest, tmp_path):
    """After --freeze-encoder-epochs a new optimizer takes over: it counts on from the frozen
    phase's steps, so a cosine schedule does not warm up again and the card counts every step."""
    from roofseg._tf import keras
    from roofseg.training.train import TrainConfig, train

    seen = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            opt = self.model.optimizer
            seen.append(int(opt.iterations.numpy()))

    cfg = TrainConfig(str(manifest), str(tmp_path / "run"), encoder_weights="none", epochs=2, batch_size=2,
                      steps_per_epoch=2, validation_steps=1, strategy="default", samples=1, freeze_encoder_epochs=1,
                      schedule="cosine", warmup_steps=2, learning_rate=1e-3)  # fmt: skip
    train(cfg, verbose=0, callbacks=[Steps()])
    # the full phase went on from step 2, not from 0: the schedule, a function of this count, is one
    # warm-up and one decay over the 4 planned steps, and the card's steps count all four
    assert seen == [2, 4]
    from roofseg.contracts.card import read_card

    card = read_card(tmp_path / "run" / "best.keras")
    assert card.trained_on.steps in (2, 4) and card.trained_on.ledger.steps == card.trained_on.steps


@pytest.mark.slow
def test_a_block_of_fewer_tiles_than_a_batch_trains_drawing_them_again(tmp_path, run_cli):
    """A mapper's first labelled block is often small: 6 training tiles for a batch of 8 train."""
    from helpers import houses_block

    scene, _ = houses_block(tmp_path, 256, 15)
    out = tmp_path / "tiles"
    result = run_cli("tile", scene, "--labels", tmp_path / "block.geojson", "-o", out, "--tile-size", "64",
                     "--split-block", "64", "--val", "0.25", "--test", "0", "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    tiles = json.loads((out / "manifest.json").read_text())["splits"]["train"]["tiles"]
    assert 0 < tiles < 8
    result = run_cli("train", out / "manifest.json", "-o", tmp_path / "run", "--encoder-weights", "none",
                     "--epochs", "2", "--batch", "8", "--strategy", "default", "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    assert f"the training split has {tiles} tiles, fewer than a global batch of 8" in result.out
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # a header and two epochs, of one step each


@pytest.mark.slow
def test_tiles_without_a_validation_split_train_keeping_the_lowest_training_loss(tmp_path, run_cli):
    """A mapper's one reviewed block is better all trained on than half held out: without a
    validation split, best.keras is the epoch of the lowest training loss, and the run says so."""
    from roofseg.contracts.card import read_card

    from helpers import houses_block

    scene, _ = houses_block(tmp_path)
    out = tmp_path / "tiles"
    result = run_cli("tile", scene, "--labels", tmp_path / "block.geojson", "-o", out, "--tile-size", "64",
                     "--val", "0", "--test", "0", "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    result = run_cli("train", out / "manifest.json", "-o", tmp_path / "run", "--encoder-weights", "none",
                     "--epochs", "3", "--steps-per-epoch", "2", "--batch", "2", "--strategy", "default",
                     "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    assert "no validation split" in result.out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    losses = [float(r["loss"]) for r in csv.DictReader(open(tmp_path / "run" / "history.csv"))]
    assert summary["chosen_by"] == "loss" and summary["best_val_loss"] is None
    assert summary["best_epoch"] == 1 + int(np.argmin(losses)) and summary["best_loss"] == pytest.approx(min(losses))
    assert read_card(tmp_path / "run" / "best.keras").trained_on.steps == 2 * summary["best_epoch"]
    assert (tmp_path / "run" / "samples.png").exists()


@pytest.mark.slow
def test_a_validation_split_of_fewer_tiles_than_replicas_validates(tmp_path, run_cli):
    """Under the mirrored strategy (two logical CPUs here) a batch is split among the replicas; a
    validation split of one tile gave one replica nothing and crashed in its batch norms at the
    first validation. Every replica now gets a tile, and the score is the split's."""
    from helpers import houses_block

    scene, _ = houses_block(tmp_path)
    out = tmp_path / "tiles"
    result = run_cli("tile", scene, "--labels", tmp_path / "block.geojson", "-o", out, "--tile-size", "64",
                     "--split-block", "64", "--val", "0.25", "--test", "0", "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads((out / "manifest.json").read_text())["splits"]["val"]["tiles"] == 1
    result = run_cli("train", out / "manifest.json", "-o", tmp_path / "run", "--encoder-weights", "none",
                     "--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--strategy", "mirrored",
                     "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    assert "2 replicas" in result.out
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert len(history) == 1 and np.isfinite(float(history[0]["val_loss"]))
