"""`roofseg train`: fit the U-Net on a manifest's shards, resumable, with a run folder of results."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roofseg._tf import keras, tf
from roofseg.atomic import ensure_writable_dir, write_json
from roofseg.errors import RoofsegError
from roofseg.pipeline.augment import AugmentConfig
from roofseg.pipeline.dataset import make_dataset, shards_of
from roofseg.training import reports
from roofseg.training.model import build_model, compile_model, resolve_encoder_weights, set_trainable
from roofseg.training.strategy import is_chief, make_strategy


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as the run's config.json."""

    manifest: str
    out_dir: str
    encoder_weights: str = "imagenet"
    freeze_encoder_epochs: int = 0
    loss: str = "dice"
    learning_rate: float = 1e-4
    epochs: int = 50
    batch_size: int = 16  # per replica
    tile_size: int | None = None  # model input size; default the manifest's
    steps_per_epoch: int | None = None  # default: one pass over the training split
    validation_steps: int | None = None
    strategy: str = "mirrored"
    devices: list[str] | None = None
    mixed_precision: bool = False
    augment_on: str = "device"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr_factor: float = 0.2
    lr_patience: int = 5
    min_lr: float = 1e-6
    early_stopping_patience: int = 10
    shuffle_buffer: int = 256
    samples: int = 4
    seed: int = 0


def _output_dir(run: Path, chief: bool) -> Path:
    """The run folder, or for a non-chief worker of a multi-worker run a scratch folder of its own."""
    return run if chief else run / "workers" / str(os.getpid())


def _callbacks(cfg: TrainConfig, run: Path, phase: str, chief: bool, extra: list | None) -> list:
    cbs = [
        keras.callbacks.BackupAndRestore(str(run / "backup" / phase)),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr, verbose=1),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping_patience, restore_best_weights=True, verbose=1),
    ]
    out = _output_dir(run, chief)
    cbs += [
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_loss", save_best_only=True, verbose=1),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "logs"), histogram_freq=0, write_graph=False, update_freq="epoch"),
    ]
    return cbs + list(extra or [])


def train(cfg: TrainConfig, verbose: int | str = "auto", callbacks: list | None = None) -> dict:
    """Fit the model; return a summary (best val_loss, epochs run, paths). Resumes a killed run.

    ``callbacks`` are added to the run's own (checkpoint, plateau, early stopping, backup, logs).
    """
    run = ensure_writable_dir(cfg.out_dir)
    shards = shards_of(cfg.manifest, "train")
    shards_of(cfg.manifest, "val")  # fail now, not after an epoch, if there is no validation split
    size = cfg.tile_size or shards.tile_size
    if not size or size % 32:
        raise RoofsegError(cfg.manifest, f"model tiles must be a multiple of 32 px, got {size} (use --tile-size)")
    weights = resolve_encoder_weights(cfg.encoder_weights)

    if cfg.mixed_precision:
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            print("roofseg: --mixed-precision needs a GPU; training in float32")
    strategy = make_strategy(cfg.strategy, cfg.devices)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas
    print(f"roofseg: {replicas} replica(s) ({type(strategy).__name__}), batch {cfg.batch_size} per replica, "
          f"global batch {global_batch}, learning rate {cfg.learning_rate:g}, tiles {size} px")
    if shards.tiles is not None and shards.tiles < global_batch:
        raise RoofsegError(cfg.manifest, f"the training split has {shards.tiles} tiles, fewer than one global batch of {global_batch}")

    resuming = (run / "backup").exists()
    if not resuming and chief:
        for stale in ("history.csv", "best.keras", "curves.png", "samples.png"):
            (run / stale).unlink(missing_ok=True)
        shutil.rmtree(run / "logs", ignore_errors=True)
        write_json(run / "config.json", {**asdict(cfg), "replicas": replicas, "global_batch": global_batch})

    repeat = cfg.steps_per_epoch is not None
    train_ds = make_dataset(cfg.manifest, "train", global_batch, size, training=True, seed=cfg.seed, repeat=repeat,
                            shuffle_buffer=cfg.shuffle_buffer, augment_on=cfg.augment_on, augment_config=cfg.augment)
    val_ds = make_dataset(cfg.manifest, "val", global_batch, size, training=False)
    if cfg.validation_steps:
        val_ds = val_ds.repeat()

    with strategy.scope():
        model, encoder = build_model(weights, freeze_encoder=cfg.freeze_encoder_epochs > 0)
        if cfg.augment_on == "device":
            model.augment_config = cfg.augment
            model.augment_seed = cfg.seed
        compile_model(model, cfg.loss, cfg.learning_rate)

    fit = dict(validation_data=val_ds, steps_per_epoch=cfg.steps_per_epoch, validation_steps=cfg.validation_steps, verbose=verbose)
    frozen_done = run / "backup" / "frozen-phase-done.weights.h5"
    if cfg.freeze_encoder_epochs > 0:
        first = min(cfg.freeze_encoder_epochs, cfg.epochs)
        if frozen_done.exists():
            model.load_weights(str(frozen_done))
        else:
            print(f"roofseg: training the decoder alone for {first} epoch(s), encoder frozen")
            model.fit(train_ds, epochs=first, callbacks=_callbacks(cfg, run, "frozen", chief, callbacks), **fit)
            model.save_weights(str(frozen_done))
        if first < cfg.epochs:
            with strategy.scope():
                set_trainable(encoder, True)
                compile_model(model, cfg.loss, cfg.learning_rate)
            model.fit(train_ds, initial_epoch=first, epochs=cfg.epochs, callbacks=_callbacks(cfg, run, "full", chief, callbacks), **fit)
    else:
        model.fit(train_ds, epochs=cfg.epochs, callbacks=_callbacks(cfg, run, "full", chief, callbacks), **fit)
    shutil.rmtree(run / "backup", ignore_errors=True)  # the run is complete: nothing to resume

    # Every worker predicts the samples: under a multi-worker strategy reading the batch-norm
    # statistics is a collective operation, which waits for all workers.
    _write_samples(model, cfg.manifest, size, cfg.samples, _output_dir(run, chief) / "samples.png")
    if not chief:
        shutil.rmtree(_output_dir(run, chief), ignore_errors=True)
        with contextlib.suppress(OSError):  # the last worker out removes the empty folder
            (run / "workers").rmdir()
        return {}
    log = reports.read_history(run / "history.csv")
    reports.plot_curves(log, run / "curves.png")
    best = int(np.argmin(log["val_loss"])) if log.get("val_loss") else None
    summary = {
        "best_epoch": None if best is None else int(log["epoch"][best]) + 1,
        "best_val_loss": None if best is None else log["val_loss"][best],
        "best_val_iou": None if best is None or "val_iou_score" not in log else log["val_iou_score"][best],
        "epochs_run": len(log.get("epoch", [])),
        "model": str(run / "best.keras"),
    }
    write_json(run / "summary.json", summary)
    return summary


def _write_samples(model, manifest: str, size: int, count: int, out_png: Path) -> None:
    images, masks = next(iter(make_dataset(manifest, "val", count, size, training=False)))
    probs = model.predict(images, verbose=0)
    reports.plot_samples(images.numpy(), masks.numpy(), probs, out_png)
