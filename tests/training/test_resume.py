"""Training figures that are right: resumed runs remember their best, validation follows training
early, logged scores equal `roofseg evaluate`, workers share the data without overlap, and broken
shards or mismatched resumes end in one line."""

from __future__ import annotations

import json
import math
import resource
import signal
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roofseg.tiler.tile import TileParams

from conftest import one_error_line
from helpers import tile_dict as tile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(sample_scene, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiles64")
    tile(
        [str(sample_scene["image"])],
        out,
        TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2, shard_bytes=60_000),
        progress=False,
    )
    return out / "manifest.json"


# -- the monitors' memory -----------------------------------------------------------------------


@given(
    st.lists(st.sampled_from([1.0, 0.9, 0.9, 0.8, 0.85, 0.7, 0.7, 0.95]), min_size=1, max_size=14),
    st.integers(1, 4),
    st.integers(1, 4),
)
def test_replay_gives_the_state_keras_callbacks_reach(values, lr_patience, stop_patience):
    from roofseg._tf import keras
    from roofseg.training.resume import replay

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=lr_patience, min_lr=1e-5)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=stop_patience, restore_best_weights=True)
    for cb in (plateau, stopping):
        cb.set_model(model)
        cb.on_train_begin()
    lrs = []
    for epoch, value in enumerate(values):
        logs = {"val_loss": value}
        plateau.on_epoch_end(epoch, logs)  # adds the epoch's learning rate to the logs, as CSVLogger records it
        stopping.on_epoch_end(epoch, logs)
        lrs.append(float(logs["lr"]))
    state = replay(values, lrs, 0.2, lr_patience, 1e-5)
    assert (state.best, state.best_epoch, state.stop_wait) == (stopping.best, stopping.best_epoch, stopping.wait)
    assert (state.plateau_best, state.plateau_wait) == (plateau.best, plateau.wait)
    assert state.lr == pytest.approx(float(keras.backend.get_value(model.optimizer.lr)), rel=1e-6)


def test_a_resume_under_a_learning_rate_schedule_remembers_the_best_epoch(tmp_path):
    """A run with --schedule cosine logs no "lr" column (only ReduceLROnPlateau puts it in the
    logs): its resume still knows the best val_loss, so best.keras is not replaced by a worse epoch."""
    from roofseg._tf import keras
    from roofseg.training.resume import ResumeMonitors

    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_loss\n0,1.9,1.6\n1,1.7,1.42\n2,1.6,1.5\n")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True)
    stopping = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(patience=2)
    monitors = ResumeMonitors(history, checkpoint, stopping, plateau)
    for cb in (checkpoint, stopping, plateau, monitors):
        cb.set_model(model)
        cb.on_train_begin()
    monitors.on_epoch_begin(3)
    assert checkpoint.best == 1.42 and (stopping.best, stopping.best_epoch, stopping.wait) == (1.42, 1, 1)
    assert model.optimizer._learning_rate is schedule  # the schedule keeps setting the rate


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def resumed(manifest, tmp_path_factory):
    """A run with a frozen first epoch, killed (an exception) before its third epoch, then resumed.

    Returns the run folder, the two runs' printed output, the summary, and the refusal of a
    resume with another batch size.
    """
    import contextlib
    import io

    from roofseg._tf import keras
    from roofseg.errors import RoofsegError
    from roofseg.training.train import TrainConfig, train

    class CrashAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise Crash()

    run = tmp_path_factory.mktemp("resumed")
    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(run),
        encoder_weights="none",
        freeze_encoder_epochs=1,
        epochs=4,
        batch_size=4,
        steps_per_epoch=6,
        learning_rate=1e-3,
        strategy="default",
        samples=2,
    )
    first = io.StringIO()
    with contextlib.redirect_stdout(first), pytest.raises(Crash):
        train(cfg, verbose=2, callbacks=[CrashAt()])
    assert (run / "backup").exists()
    with pytest.raises(RoofsegError) as refused:
        train(replace(cfg, batch_size=2, loss="bce"), verbose=0)
    second = io.StringIO()
    with contextlib.redirect_stdout(second):
        summary = train(cfg, verbose=2)
    return run, first.getvalue(), second.getvalue(), summary, str(refused.value)


def test_the_phase_switch_and_a_resume_keep_the_best_epoch(resumed):
    from roofseg.training.resume import read_rows

    run, first, second, summary, _ = resumed
    rows = read_rows(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]  # no epoch lost or logged twice
    assert first.count("improved from inf") == 1, first  # only epoch 1: the full phase remembered the frozen one
    assert "from inf" not in second, second
    best_before = min(r["val_loss"] for r in rows[:2])
    assert f"from {best_before:.5f}" in second  # the resumed checkpoint compares with the earlier best
    assert summary["best_val_loss"] == min(r["val_loss"] for r in rows)


def test_best_keras_is_the_best_epoch_and_logged_scores_equal_evaluate(resumed, manifest):
    from roofseg.training.evaluate import evaluate
    from roofseg.training.resume import read_rows

    run, _, _, summary, _ = resumed
    best = next(r for r in read_rows(run / "history.csv") if r["epoch"] == summary["best_epoch"] - 1)
    scores = evaluate(run / "best.keras", manifest, "val", batch_size=4)
    assert scores["loss"] == pytest.approx(best["val_loss"], abs=2e-3)
    # IoU and F1 are counted over the whole split in both (not averaged over batches)
    assert scores["iou"] == pytest.approx(best["val_iou_score"], abs=0.01)
    assert scores["f1"] == pytest.approx(best["val_f1_score"], abs=0.01)


def test_last_keras_holds_the_latest_epoch_and_every_step_of_a_resumed_run(resumed, manifest):
    """A long run shipped at a milestone wants its weights with the most steps, not only those
    validation chose: last.keras is the last epoch's, its ledger counts the killed run's steps too."""
    from roofseg.contracts.card import read_card
    from roofseg.training.evaluate import evaluate
    from roofseg.training.resume import read_rows

    run, _, _, summary, _ = resumed
    assert summary["last"] == str(run / "last.keras")
    last = read_rows(run / "history.csv")[-1]
    scores = evaluate(run / "last.keras", manifest, "val", batch_size=4)
    # relative: a few steps in, the losses are large (2 to 6) and apart by far more than this
    assert scores["loss"] == pytest.approx(last["val_loss"], rel=0.01)
    steps = {name: read_card(run / name).trained_on.ledger.steps for name in ("best.keras", "last.keras")}
    epochs = summary["best_epoch"], int(last["epoch"]) + 1
    # 6 steps an epoch (the frozen first epoch's included): the best's epoch and the last's
    assert (steps["best.keras"], steps["last.keras"]) == (6 * epochs[0], 6 * epochs[1])


def test_resuming_with_other_settings_is_refused(resumed):
    run, _, _, _, refused = resumed
    assert "config.json" in refused and "batch_size" in refused and "loss" in refused and "another -o" in refused


def test_batch_norm_momentum_follows_the_run_length():
    from roofseg.training.model import bn_momentum

    assert bn_momentum(10_000) == 0.99  # Keras' own for long runs
    assert bn_momentum(500) == 0.99
    assert bn_momentum(22) == pytest.approx(1 - 1 / 4.4, abs=1e-4)  # the demo: follows within an epoch
    assert bn_momentum(1) == 0.75
    for steps in (5, 22, 100, 500, 5000):  # the initial statistics fade within an epoch (to < 5 %), from 5 steps on
        assert bn_momentum(steps) ** steps < 0.05 or steps < 20


def test_the_model_gets_the_momentum_in_every_batch_norm():
    from roofseg._tf import keras
    from roofseg.training.model import build_model

    model, _ = build_model(None, momentum=0.8)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 40 and {layer.momentum for layer in norms} == {0.8}


def test_pixel_scores_are_counted_over_the_epoch_not_averaged_per_batch():
    from roofseg._tf import tf
    from roofseg.training.losses import PixelF1, PixelIoU

    truth = [np.ones((1, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 1), np.float32)]
    pred = [np.ones((1, 4, 4, 1), np.float32) * 0.9, np.zeros((1, 4, 4, 1), np.float32)]
    pred[0][0, 0, :, 0] = 0.1  # 12 of 16 roof pixels found in batch 1; batch 2 has no roof at all
    for metric, want in ((PixelIoU(), 12 / 16), (PixelF1(), 24 / 28)):
        for t, p in zip(truth, pred):
            metric.update_state(tf.constant(t), tf.constant(p))
        assert float(metric.result()) == pytest.approx(want)  # a per-batch mean would say (0.75 + 1) / 2


# -- data for several workers ---------------------------------------------------------------------


def test_every_worker_reads_the_same_order_so_data_sharding_is_disjoint_and_complete(manifest):
    from roofseg.pipeline.dataset import make_dataset

    def epochs(n: int):
        ds = make_dataset(
            manifest, "train", 4, training=True, seed=7, deterministic=True, with_meta=True, shuffle_buffer=16
        )
        out = []
        for _ in range(n):
            out.append([tuple(zip(m["row"].numpy(), m["col"].numpy())) for _, _, m in ds])
        return out

    worker0, worker1 = epochs(2), epochs(2)  # two workers build the same dataset
    assert worker0 == worker1
    tiles = json.loads(Path(manifest).read_text())["splits"]["train"]["tiles"]
    for epoch in worker0:
        shares = [[t for k, batch in enumerate(epoch) if k % 2 == w for t in batch] for w in (0, 1)]  # DATA sharding
        assert not set(shares[0]) & set(shares[1])
        assert len(set(shares[0]) | set(shares[1])) == (tiles // 4) * 4
    assert worker0[0] != worker0[1]  # and still reshuffled every epoch


def test_batch_counts_are_known_before_the_first_epoch(manifest):
    from roofseg.pipeline.dataset import make_dataset

    splits = json.loads(Path(manifest).read_text())["splits"]
    assert int(make_dataset(manifest, "train", 4).cardinality()) == splits["train"]["tiles"] // 4
    assert int(make_dataset(manifest, "val", 4).cardinality()) == math.ceil(splits["val"]["tiles"] / 4)


# -- broken shards and bad starts ---------------------------------------------------------------------


@pytest.fixture
def broken_copy(manifest, tmp_path):
    """A copy of the tiles whose first test shard can be damaged."""
    import shutil

    copy = tmp_path / "tiles"
    shutil.copytree(Path(manifest).parent, copy)
    shard = copy / json.loads((copy / "manifest.json").read_text())["splits"]["test"]["shards"][0]["path"]
    return copy / "manifest.json", shard


@pytest.mark.parametrize("damage", ["cut in half", "zeroed bytes"])
def test_evaluate_names_a_broken_shard(resumed, broken_copy, run_cli, damage):
    run, *_ = resumed
    manifest, shard = broken_copy
    data = bytearray(shard.read_bytes())
    if damage == "cut in half":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    shard.write_bytes(bytes(data))
    # --quiet: the error line alone, whether or not an earlier test in this process took the terminal
    line = one_error_line(run_cli("evaluate", run / "best.keras", manifest, "--split", "test", "--quiet"))
    assert shard.name in line


def _record_ends(data: bytes) -> list[int]:
    """Byte offsets where each record of an uncompressed TFRecord file ends (8-byte length, 4-byte
    CRC, the record, 4-byte CRC)."""
    ends, at = [], 0
    while at < len(data):
        at += 8 + 4 + struct.unpack("<Q", data[at : at + 8])[0] + 4
        ends.append(at)
    return ends


def test_train_names_a_shard_cut_short(broken_copy, tmp_path, run_cli):
    manifest, _ = broken_copy
    spec = max(json.loads(manifest.read_text())["splits"]["train"]["shards"], key=lambda s: s["tiles"])
    shard = manifest.parent / spec["path"]
    data = shard.read_bytes()
    ends = _record_ends(data)
    assert len(ends) == spec["tiles"] >= 2
    # cut at a record's end: every record left is whole, so only the manifest's count can tell
    shard.write_bytes(data[: ends[len(ends) // 2 - 1]])
    line = one_error_line(
        run_cli(
            "train",
            manifest,
            "-o",
            tmp_path / "run",
            "--encoder-weights",
            "none",
            "--epochs",
            "1",
            "--batch",
            "4",
            "--strategy",
            "default",
            "--quiet",
        )
    )
    assert shard.name in line and "promises" in line


def test_encoder_weights_that_are_not_hdf5(manifest, tmp_path, run_cli):
    bogus = tmp_path / "weights.h5"
    bogus.write_text("not hdf5")
    line = one_error_line(run_cli("train", manifest, "-o", tmp_path / "run", "--encoder-weights", bogus))
    assert "weights.h5" in line and "HDF5" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_evaluate_names_the_split_it_scored(resumed, manifest, run_cli):
    run, *_ = resumed
    res = run_cli("evaluate", run / "best.keras", manifest, "--split", "train")
    assert res.code == 0, res.err
    assert "Training Loss: " in res.out and "Validation" not in res.out


# best.keras is ~100 MB, the backup's variables (with Adam's) ~300 MB: 20 MB stops the checkpoint
# (h5py), 150 MB the backup (TensorFlow's SaveV2), each as a full disk would
@pytest.mark.parametrize("limit_mb", [20, 150])
def test_train_onto_a_file_size_limit_ends_in_one_line_and_leaves_no_half_file(manifest, tmp_path, limit_mb):
    run = tmp_path / "run"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_mb * 2**20, limit_mb * 2**20))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "roofseg.cli",
            "train",
            str(manifest),
            "-o",
            str(run),
            "--encoder-weights",
            "none",
            "--epochs",
            "1",
            "--batch",
            "2",
            "--steps-per-epoch",
            "1",
            "--validation-steps",
            "1",
            "--strategy",
            "default",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("roofseg: error: ") and str(run) in lines[0], done.stderr[-3000:]
    assert not (run / "best.keras").exists() or limit_mb > 100
    leftovers = [p.name for p in run.rglob("*") if p.is_file() and ("partial" in p.name or "_temp" in str(p))]
    assert leftovers == []


def test_a_run_started_before_a_setting_existed_resumes_where_it_keeps_what_the_run_used(tmp_path):
    import json

    from roofseg.errors import RoofsegError
    from roofseg.training.train import check_same_run

    record = {"loss": "bce_dice", "contact_weight": 1.0, "contact_loss": "bce_dice", "epochs": 20}
    older = {"loss": "bce_dice", "epochs": 10}  # config.json of a release before both settings
    (tmp_path / "config.json").write_text(json.dumps(older))
    check_same_run(tmp_path, record)  # resumes: the weight and the borders' loss are what it used
    for key, other in (("contact_loss", "focal_dice"), ("contact_weight", 4.0)):
        with pytest.raises(RoofsegError, match=f"{key}: '?[a-z_0-9.]+'? then"):
            check_same_run(tmp_path, {**record, key: other})
