"""`roofseg train`: fit the U-Net on a manifest's shards, resumable, with a run folder of results."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from roofseg._tf import keras, tf
from roofseg.atomic import ensure_writable_dir, remove_stale_partials, temp_path, write_json
from roofseg.contracts.card import ModelCard, Tuning
from roofseg.contracts.manifest import read_manifest
from roofseg.contracts.provenance import TrainedOn
from roofseg.contracts.sizes import check_tile_size, model_gsd
from roofseg.contracts.targets import TARGETS
from roofseg.errors import RoofsegError, first_line
from roofseg.locks import folder_lock
from roofseg.pipeline.check import shard_faults_named
from roofseg.pipeline.dataset import make_dataset, shards_of
from roofseg.raster.scaling import SCALING_RULE
from roofseg.training import reports, resume
from roofseg.training.checkpoints import ledger_start, run_callbacks
from roofseg.training.config import TrainConfig
from roofseg.training.finetune import check_base, read_base, transfer_weights
from roofseg.training.losses import check_gap_weight
from roofseg.training.model import (
    bn_momentum,
    build_model,
    compile_model,
    load_model,
    resolve_encoder_weights,
    set_trainable,
)
from roofseg.training.precision import choose_precision, policy
from roofseg.training.reference import tiles_reference
from roofseg.training.strategy import describe, is_chief, make_strategy


def _output_dir(run: Path, chief: bool) -> Path:
    """The run folder, or for a non-chief worker of a multi-worker run a scratch folder of its own."""
    return run if chief else run / "workers" / str(os.getpid())


#: settings a resumed run may change: how long it goes on, and how patiently
RESUMABLE = {"epochs", "early_stopping_patience", "lr_patience", "min_lr", "samples", "data_service"}
#: settings added in a later release, and what a run started before them used
PREDATED = {"contact_weight": 1.0, "contact_loss": "bce_dice", "gap_weight": 1.0}


def resolve_precision(cfg: TrainConfig, run: Path) -> tuple[str, str]:
    """The precision this run computes in, and why: a resumed run keeps the one it started with
    (``auto`` may choose otherwise on another machine); --mixed-precision means float16 on GPUs."""
    if cfg.mixed_precision:
        if tf.config.list_physical_devices("GPU"):
            return "float16", "--mixed-precision on a GPU"
        print("roofseg: --mixed-precision needs a GPU; ignored")
    if cfg.precision == "auto" and (run / "backup").exists():
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads((run / "config.json").read_text()).get("precision")
            if saved in ("float32", "bfloat16"):
                return saved, "the precision this run started with"
    return choose_precision(cfg.precision)


def config_record(cfg: TrainConfig, replicas: int, global_batch: int, momentum: float) -> dict:
    """The run's config.json: the settings, with the manifest as an absolute path."""
    record = {**asdict(cfg), "replicas": replicas, "global_batch": global_batch, "bn_momentum": momentum}
    record["manifest"] = os.path.abspath(cfg.manifest)
    record["out_dir"] = os.path.abspath(cfg.out_dir)
    return json.loads(json.dumps(record))  # tuples as lists, as read back from the file


def check_same_run(run: Path, record: dict) -> None:
    """Refuse to resume ``run`` with settings other than those it was started with."""
    path = run / "config.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        raise RoofsegError(
            path,
            f"the run has a backup to resume but no readable config; start afresh with another -o (or delete {run})",
        ) from None
    saved = {**PREDATED, **saved}  # a run that predates a setting resumes where the setting is what it used
    differ = [
        f"{k}: {saved.get(k)!r} then, {v!r} now" for k, v in record.items() if k not in RESUMABLE and saved.get(k) != v
    ]
    if differ:
        raise RoofsegError(
            path,
            "this run was started with other settings (" + "; ".join(differ) + "); resume it "
            f"with the same settings, or start afresh with another -o (or delete {run})",
        )


SCHEDULES = ("plateau", "cosine")


def learning_rate(cfg: TrainConfig, total_steps: int):
    """The learning rate: ``cfg.learning_rate`` (cut on plateaus by a callback), or with ``cosine``
    a linear warm-up from a hundredth of it over ``warmup_steps``, then a cosine decay to a hundredth
    over the rest of the planned ``total_steps``. A schedule is a function of the optimizer's step,
    which the backup keeps: a resumed run goes on where the killed one was."""
    if cfg.schedule not in SCHEDULES:
        raise RoofsegError(None, f"unknown --schedule {cfg.schedule!r} ({', '.join(SCHEDULES)})")
    if cfg.schedule == "plateau":
        return cfg.learning_rate
    warmup = min(cfg.warmup_steps, max(0, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 100,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=cfg.learning_rate,
        warmup_steps=warmup,
    )


def _save_atomically(path: Path, save) -> None:
    """``save(tmp)`` to a temporary name with ``path``'s suffixes (Keras picks the format by them), then rename."""
    tmp = temp_path(path, keep_suffix=True)
    try:
        save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def model_card(cfg: TrainConfig, contact: bool = False, base=None) -> ModelCard:
    """How the model is fed, stored in best.keras: the training tiles' ground pixel size, the
    scenes' bands, the tile size and the scaling rule of the imagery; and what its output
    channels hold (roof, and contact borders with the distance they were drawn at)."""
    manifest = read_manifest(cfg.manifest)
    size = cfg.tile_size or manifest.tile_size
    span = manifest.gsd_range
    if span and cfg.widen_gsd and base is not None and base.card is not None and base.card.gsd_range:
        span = (min(span[0], base.card.gsd_range[0]), max(span[1], base.card.gsd_range[1]))  # both ranges
    trained_on = TrainedOn(
        scenes=tuple(manifest.training_scenes),
        tiles=manifest.splits["train"].tiles if "train" in manifest.splits else 0,
        gsd_m=tuple(sorted({round(j.gsd_m, 4) for j in manifest.jobs if j.gsd_m})),
        steps=0,  # set at each checkpoint: the steps this run had trained
        augment=cfg.augment.to_dict(),
        licence=cfg.data_licence,
        # it learnt from a mapper's decisions: which store (by SHA-256), how many of each
        reviews=tuple({"scene": j.id, **j.review} for j in manifest.jobs if j.review),
    )
    return ModelCard(
        gsd_m=model_gsd(manifest.gsd_m, manifest.tile_size, size),
        gsd_range_m=tuple(model_gsd(g, manifest.tile_size, size) for g in span) if span else None,
        precision=cfg.precision if cfg.precision in ("float32", "bfloat16", "float16") else "float32",
        trained_on=trained_on,
        colour_reference=tiles_reference(cfg.manifest) if trained_on.tiles else None,
        tile_size=size,
        bands=tuple(manifest.bands),
        dtypes=tuple(manifest.dtypes),
        scaling=SCALING_RULE,
        outputs=TARGETS if contact else TARGETS[:1],
        contact_px=manifest.contact_px if contact and not manifest.contact_m else None,
        contact_m=manifest.contact_m if contact else None,
        contact_kind=manifest.contact_kind if contact else None,
        base=base.lineage if base is not None else None,
        postprocess=inherited_tuning(base.card if base is not None else None, contact, manifest.contact_kind),
    )


def inherited_tuning(base: ModelCard | None, contact: bool, contact_kind: str | None) -> Tuning | None:
    """The post-processing a model fine-tuned from ``base`` starts with: the base's tuned choice,
    where the base was tuned and that choice fits the new model's outputs (ModelCard.tuning_fits:
    peaks seed borders of any kind, a cut only its own); tune the new model to choose its own. On
    Dhaka block1 a fine-tune of the shipped base found 91 buildings with its base's choice and 32
    with the defaults (README, "Fine-tune for your area")."""
    if base is None or not base.tuning_fits(contact, contact_kind):
        return None
    return base.postprocess.inherited()


def _best_weights(run: Path) -> list | None:
    """The weights of the run's best.keras, for EarlyStopping to restore after a resume."""
    best = run / "best.keras"
    if not best.exists() or not resume.read_rows(run / "history.csv"):
        return None
    return load_model(best, compile=False).get_weights()


WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO)


def _is_write_failure(exc: BaseException) -> bool:
    """A save that failed for lack of room or rights: h5py and TensorFlow (SaveV2: ResourceExhausted
    for ENOSPC, OutOfRange for EFBIG) report it in their own types, with the system's words."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return True
    text = getattr(exc, "message", None) or str(exc)
    return "[Op:SaveV2]" in text or any(os.strerror(e) in text for e in WRITE_ERRNOS)


def _remove_backup_temporaries(run: Path) -> None:
    """Delete what a failed backup save left half-written (its checkpoint's temporary files)."""
    for tmp in (run / "backup").rglob("*_temp*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def train(
    cfg: TrainConfig, verbose: int | str = "auto", callbacks: list | None = None, overwrite: bool = False
) -> dict:
    """Fit the model; return a summary (best val_loss, epochs run, paths). Resumes a killed run.

    A folder that holds a finished run (its best.keras, nothing to resume) is refused unless
    ``overwrite``; even then its best.keras stays until the new run's first checkpoint replaces
    it (its last.keras goes at once). ``callbacks`` are added to the run's own (checkpoint,
    plateau, early stopping, backup, logs).
    """
    try:  # before any folder is made: a setting that cannot apply is one line
        check_gap_weight(cfg.loss, cfg.gap_weight)
    except ValueError as exc:
        raise RoofsegError(None, f"--gap-weight {cfg.gap_weight:g}: {exc}") from None
    run = ensure_writable_dir(cfg.out_dir)
    shards = shards_of(cfg.manifest, "train")
    validates = validation_split(cfg.manifest)
    if not validates:  # tiled with --val 0: trained on every tile, by the training loss
        print(
            "roofseg: warning: the tiles hold no validation split: the model of the lowest training loss is "
            "kept (best.keras), not one chosen on unseen tiles; tile with --val to hold some out"
        )
    size = cfg.tile_size or shards.tile_size
    if not size:
        raise RoofsegError(cfg.manifest, "the shards do not say their tile size: give --tile-size")
    check_tile_size(size, cfg.manifest)
    base = None
    if cfg.init_from:
        base = read_base(cfg.init_from)
        manifest = read_manifest(cfg.manifest)
        check_base(base, manifest, cfg.manifest, model_gsd(manifest.gsd_m, manifest.tile_size, size), cfg.widen_gsd)
    weights = None if base else resolve_encoder_weights(cfg.encoder_weights)
    for line in data_warnings(cfg.manifest, cfg.batch_size):
        print(f"roofseg: warning: {line}")

    precision, why = resolve_precision(cfg, run)
    print(f"roofseg: training in {precision}: {why}")
    cfg = replace(cfg, precision=precision)
    strategy = make_strategy(cfg.strategy, cfg.devices)
    chief = is_chief(strategy)
    with contextlib.ExitStack() as stack:
        if chief and cfg.strategy != "multiworker":  # multi-worker chiefs may share a folder across machines
            stack.enter_context(folder_lock(run))
        with shard_faults_named(cfg.manifest, ("train", "val")):
            try:
                with policy(precision):
                    return _train(
                        cfg, run, strategy, chief, size, weights, shards, verbose, callbacks, overwrite, base, validates
                    )
            except (tf.errors.OpError, OSError) as exc:
                if not _is_write_failure(exc):
                    raise
                if chief:
                    _remove_backup_temporaries(run)
                raise RoofsegError(run, f"writing the run failed ({first_line(exc)})") from None


#: fewer validation tiles than this, and the best epoch is chosen by noise
FEW_VAL_TILES = 16


def validation_split(source: str) -> bool:
    """Whether a run on ``source`` validates: True where the tiles hold a validation split (a glob
    of shards is taken to, as every split of it is the same files), False where they were cut with
    ``tile --val 0``; a RoofsegError naming the fix (``--split-block``) where the tiling asked for
    one and got none. Said now, not after an epoch."""
    if os.fspath(source).endswith(".json"):
        manifest = read_manifest(source)
        split = manifest.splits.get("val")
        if not (split and split.tiles) and not float(manifest.params.get("val", 0) or 0) > 0:
            return False
    shards_of(source, "val")  # the split's shards (or the refusal of an empty one)
    return True


def data_warnings(manifest_path: str, batch: int) -> list[str]:
    """What to say of a validation split too small, or from a single scene, to choose a model by."""
    manifest = read_manifest(manifest_path)
    val = manifest.splits["val"].tiles if "val" in manifest.splits else 0
    scenes = [j.id for j in manifest.jobs if j.tiles_in("val")]
    lines = []
    if 0 < val < FEW_VAL_TILES:
        lines.append(
            f"the validation split has {val} tiles (fewer than {FEW_VAL_TILES}): the best epoch will be chosen "
            "by noise; retile with a smaller --split-block or more scenes"
        )
    if val and len(scenes) == 1 and len(manifest.jobs) > 1:
        lines.append(f"every validation tile comes from one scene ({scenes[0]}): scores will speak for that scene only")
    return lines


@dataclass(frozen=True)
class Plan:
    """What a run's steps share, decided once: the devices, the batch, the epoch's steps."""

    cfg: TrainConfig
    run: Path
    strategy: object
    chief: bool
    size: int
    global_batch: int
    steps: int  # the steps of an epoch
    momentum: float
    contact: bool
    small: bool = False  # fewer training tiles than a global batch: the split is repeated within a batch
    monitor: str = "val_loss"  # what chooses best.keras and drives the monitors (loss: no validation split)


def _plan(cfg: TrainConfig, run: Path, strategy, chief: bool, size: int, shards, validates: bool = True) -> Plan:
    """Step 1: the global batch, an epoch's steps and the batch norms' momentum, said once."""
    global_batch = cfg.batch_size * strategy.num_replicas_in_sync
    small = shards.tiles is not None and shards.tiles < global_batch
    if small:  # a mapper's first labelled block is often this small: drawn again, never refused
        print(
            f"roofseg: the training split has {shards.tiles} tiles, fewer than a global batch of {global_batch}: "
            "each batch draws tiles again (augmented anew each time)"
        )
    steps = cfg.steps_per_epoch or max(1, (shards.tiles or global_batch) // global_batch)
    momentum = bn_momentum(steps)
    print(
        f"roofseg: {describe(strategy)}, batch {cfg.batch_size} per replica, "
        f"global batch {global_batch}, learning rate {cfg.learning_rate:g}, tiles {size} px, "
        f"batch-norm momentum {momentum:g}"
    )
    contact = cfg.contact and shards.contact
    if contact:
        print(
            "roofseg: a second output learns the borders between buildings (splits touching buildings); "
            f"the loss is the roof's {cfg.loss} loss plus the borders' "
            + ("focal loss" if cfg.contact_loss == "focal_dice" else "cross-entropy")
            + " and Dice"
            + (f" times {cfg.contact_weight:g}" if cfg.contact_weight != 1 else "")
            + (f"; the ground between near buildings weighs {cfg.gap_weight:g}" if cfg.gap_weight != 1 else "")
        )
    monitor = "val_loss" if validates else "loss"
    return Plan(cfg, run, strategy, chief, size, global_batch, steps, momentum, contact, small, monitor)


def prepare_folder(plan: Plan, overwrite: bool) -> tuple[dict, bool]:
    """Step 2: the run folder: a resume checked against the settings it started with, a finished
    run refused without ``overwrite``, a new run's stale files cleared. Returns the run's record
    (config.json) and whether it resumes."""
    cfg, run = plan.cfg, plan.run
    record = config_record(cfg, plan.strategy.num_replicas_in_sync, plan.global_batch, plan.momentum)
    if plan.chief:
        remove_stale_partials(run)
    resuming = (run / "backup").exists()
    if resuming:
        check_same_run(run, record)
    elif (run / "best.keras").exists() and not overwrite:
        raise RoofsegError(
            run,
            "holds a finished run (best.keras); train into another -o, or give --overwrite "
            "to train afresh here (best.keras is kept until the new run has a better one)",
        )
    elif plan.chief:  # best.keras stays until the new run's first checkpoint replaces it; last.keras
        # is the latest epoch of this run, which the old one's is not
        for stale in ("history.csv", "curves.png", "samples.png", "summary.json", "config.json", "last.keras"):
            (run / stale).unlink(missing_ok=True)
        shutil.rmtree(run / "logs", ignore_errors=True)
    return record, resuming


def datasets(plan: Plan) -> tuple:
    """Step 3: the training stream and the validation batches, and an epoch's steps for fit
    (None: one pass over the split)."""
    cfg = plan.cfg
    # a balanced stream is endless: an epoch is as many steps as one pass would take
    endless = cfg.roof_share is not None or cfg.balance != "none" or plan.small
    steps_per_epoch = cfg.steps_per_epoch or (plan.steps if endless else None)
    # Workers of a multi-worker run shard the data by element: only disjoint if all read in one order.
    same_order = cfg.strategy == "multiworker"
    train_ds = make_dataset(
        cfg.manifest,
        "train",
        plan.global_batch,
        plan.size,
        training=True,
        seed=cfg.seed,
        repeat=cfg.steps_per_epoch is not None or plan.small,
        shuffle_buffer=cfg.shuffle_buffer,
        augment_on=cfg.augment_on,
        augment_config=cfg.augment,
        deterministic=same_order or None,
        data_service=cfg.data_service,
        roof_share=cfg.roof_share,
        contact=plan.contact,
        balance=cfg.balance,
    )
    if plan.monitor != "val_loss":  # no validation split
        return train_ds, None, steps_per_epoch
    replicas = plan.strategy.num_replicas_in_sync
    val_ds = make_dataset(
        cfg.manifest, "val", plan.global_batch, plan.size, training=False, contact=plan.contact, replicas=replicas
    )
    if cfg.validation_steps:
        val_ds = val_ds.repeat()
    return train_ds, val_ds, steps_per_epoch


def build(plan: Plan, weights: str | None, base=None) -> tuple:
    """Step 4: the model under the strategy, from ``weights`` or every weight of ``base``,
    compiled with its learning rate (a number, or the schedule over the planned steps)."""
    cfg = plan.cfg
    with plan.strategy.scope():
        model, encoder = build_model(
            weights,
            freeze_encoder=cfg.freeze_encoder_epochs > 0,
            momentum=plan.momentum,
            outputs=2 if plan.contact else 1,
        )
        if base is not None:
            for line in transfer_weights(load_model(base.path, compile=False), model, base.path):
                print(f"roofseg: {line}")
            print(f"roofseg: starting from every weight of {base.path}")
        if cfg.augment_on == "device":
            model.augment_config = cfg.augment
            model.augment_seed = cfg.seed
        rate = learning_rate(cfg, cfg.epochs * plan.steps)
        compile_model(model, cfg.loss, rate, cfg.contact_weight, cfg.contact_loss, cfg.gap_weight)
    return model, encoder, rate


def fit_phases(plan: Plan, model, encoder, rate, fit: dict, train_ds, callbacks, card, ledger) -> None:
    """Step 5: the frozen-encoder phase where asked (done once, even across resumes), then the
    whole model, each phase with its own backup to resume from."""
    cfg, run, chief = plan.cfg, plan.run, plan.chief

    def callbacks_of(phase: str) -> list:
        out = _output_dir(run, chief)
        return run_callbacks(cfg, run, out, phase, chief, callbacks, _best_weights(run), card, ledger, plan.monitor)

    frozen_done = run / "backup" / "frozen-phase-done.weights.h5"
    first = min(cfg.freeze_encoder_epochs, cfg.epochs) if cfg.freeze_encoder_epochs > 0 else 0
    if first:
        if frozen_done.exists():
            model.load_weights(str(frozen_done))
        else:
            print(f"roofseg: training the decoder alone for {first} epoch(s), encoder frozen")
            model.fit(train_ds, epochs=first, callbacks=callbacks_of("frozen"), **fit)
            if chief:  # the run's shared files are the chief's to write
                _save_atomically(frozen_done, model.save_weights)
        if first < cfg.epochs:
            with plan.strategy.scope():
                set_trainable(encoder, True)
                compile_model(model, cfg.loss, rate, cfg.contact_weight, cfg.contact_loss, cfg.gap_weight)
                # a new optimizer counts from 0: it goes on from the frozen phase's steps, so a schedule
                # does not warm up again and the card counts every step (a resume restores it anyway)
                model.optimizer.iterations.assign(first * plan.steps)
    if first < cfg.epochs:
        model.fit(train_ds, initial_epoch=first, epochs=cfg.epochs, callbacks=callbacks_of("full"), **fit)
    if chief:
        shutil.rmtree(run / "backup", ignore_errors=True)  # the run is complete: nothing to resume


def summarise(run: Path) -> dict:
    """Step 6: curves.png and summary.json (the best epoch and its scores) from the run's history."""
    log = reports.read_history(run / "history.csv")
    reports.plot_curves(log, run / "curves.png")
    # the epoch best.keras holds: lowest validation loss, or lowest training loss without a validation split
    monitor = "val_loss" if log.get("val_loss") else "loss"
    best = int(np.argmin(log[monitor])) if log.get(monitor) else None
    summary = {
        "best_epoch": None if best is None else int(log["epoch"][best]) + 1,
        "chosen_by": monitor,
        "best_loss": None if best is None else log[monitor][best],
        "best_val_loss": None if best is None or "val_loss" not in log else log["val_loss"][best],
        "best_val_iou": None if best is None or "val_iou_score" not in log else log["val_iou_score"][best],
        "epochs_run": len(log.get("epoch", [])),
        "model": str(run / "best.keras"),
        "last": str(run / "last.keras"),  # the latest epoch's weights (the most steps)
    }
    write_json(run / "summary.json", summary)
    return summary


def _train(
    cfg: TrainConfig,
    run: Path,
    strategy,
    chief: bool,
    size: int,
    weights: str | None,
    shards,
    verbose,
    callbacks,
    overwrite: bool = False,
    base=None,
    validates: bool = True,
) -> dict:
    """The run, as named steps: plan, run folder, data, model, phases, samples and summary."""
    plan = _plan(cfg, run, strategy, chief, size, shards, validates)
    record, resuming = prepare_folder(plan, overwrite)
    train_ds, val_ds, steps_per_epoch = datasets(plan)
    model, encoder, rate = build(plan, weights, base)
    if chief and not resuming:
        write_json(run / "config.json", record)  # once the model builds: a failed start leaves no run behind
    card = model_card(cfg, plan.contact, base)  # once a run: its colour reference reads the training tiles
    ledger = ledger_start(read_manifest(cfg.manifest), plan.global_batch, cfg.precision, base)
    fit = dict(
        validation_data=val_ds,
        steps_per_epoch=steps_per_epoch,
        validation_steps=cfg.validation_steps if val_ds is not None else None,
        verbose=verbose,
    )
    fit_phases(plan, model, encoder, rate, fit, train_ds, callbacks, card, ledger)
    # Every worker predicts the samples: under a multi-worker strategy reading the batch-norm
    # statistics is a collective operation, which waits for all workers.
    split = "val" if plan.monitor == "val_loss" else "train"
    _write_samples(model, cfg.manifest, size, cfg.samples, _output_dir(run, chief) / "samples.png", plan.contact, split)
    if not chief:
        shutil.rmtree(_output_dir(run, chief), ignore_errors=True)
        with contextlib.suppress(OSError):  # the last worker out removes the empty folder
            (run / "workers").rmdir()
        return {}
    return summarise(run)


def _write_samples(
    model, manifest: str, size: int, count: int, out_png: Path, contact: bool, split: str = "val"
) -> None:
    """samples.png: tiles of ``split`` (validation, where there is one) that hold roofs (the first
    ``count`` of them; empty ones only where too few hold any), with their truth and prediction."""
    roofed, empty = [], []
    for images, masks in make_dataset(manifest, split, 32, size, training=False, contact=contact):
        for image, mask in zip(images.numpy(), masks.numpy()):
            (roofed if mask[..., 0].any() else empty).append((image, mask))
        if len(roofed) >= count:
            break
    chosen = (roofed + empty)[:count]
    images, masks = np.stack([c[0] for c in chosen]), np.stack([c[1] for c in chosen])
    # one batch, and each of the strategy's replicas given a tile: a replica given none fails in its batch norms
    copies = -(-model.distribute_strategy.num_replicas_in_sync // len(images))
    feed = np.concatenate([images] * copies)
    probs = model.predict(feed, batch_size=len(feed), verbose=0)[: len(images)]
    reports.plot_samples(images, masks, probs, out_png)
