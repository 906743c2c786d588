"""Adapting a model to a new city without labels (``roofseg adapt``).

Two methods, alone or chained (``bn,self-train``):

- ``bn`` (AdaBN): every batch norm's moving mean and variance re-estimated on the target scenes'
  windows, by forward passes alone; the weights stay as they are.
- ``self-train``: the model's own confident predictions on the target windows become labels: a
  pixel is roof above ``high``, ground below ``low``, and left out in between; the model then
  trains on them for a bounded number of steps (flips and rotations, masked cross-entropy and
  Dice), from a checkpoint it resumes after a kill.

Windows are read as ``predict`` reads a scene, through the same front door
(:func:`roofseg.prediction.request.resolve`): the model's tile size, its GSD where the scene lies
outside the range it was trained on, the bands asked, and colour matching as asked, else as the
model's own history says (a model tuned or adapted with matching is adapted with it).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from roofseg._tf import keras, tf
from roofseg.atomic import ensure_writable_dir, remove_stale_partials, temp_path
from roofseg.contracts.augment import AugmentConfig
from roofseg.contracts.card import ModelCard, write_model
from roofseg.contracts.provenance import Adaptation
from roofseg.errors import RoofsegError
from roofseg.pipeline.augment import augment
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import scene_gsd
from roofseg.prediction.request import PredictRequest, resolve
from roofseg.raster import colours
from roofseg.raster.scene import Scene
from roofseg.raster.windows import tile_grid
from roofseg.scenes import file_signature
from roofseg.terminal import terminal
from roofseg.training.finetune import read_base
from roofseg.training.model import check_archive, compile_model, drop_optimizer_state, load_model

METHODS = ("bn", "self-train")
MIN_TILES = 8  # fewer usable windows than this in the whole run, and the statistics are noise
MAX_NODATA = 0.5  # a window with more nodata than this is not used


@dataclass(frozen=True)
class AdaptConfig:
    """How a model is adapted (saved in the adapted model's card)."""

    methods: tuple[str, ...] = ("bn",)
    tiles_per_scene: int = 64  # windows drawn from each scene
    batch: int = 8
    steps: int = 150  # self-train: training steps
    low: float = 0.1  # self-train: below this probability a pixel is taken as ground
    high: float = 0.9  # self-train: above this, as roof; in between it is left out
    learning_rate: float = 1e-4
    match_colours: bool | None = None  # windows matched to the card's colour reference first (None: as predict would)
    seed: int = 0
    bands: tuple[int, ...] | None = None  # the scenes' bands, as predict --bands picks them

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise RoofsegError(None, f"unknown --method {','.join(unknown) or '(none)'} (bn, self-train, or both)")
        if not 0 <= self.low < self.high <= 1:
            raise RoofsegError(None, f"--low {self.low} must be below --high {self.high}, both in [0, 1]")


@dataclass(frozen=True)
class TargetTiles:
    """The windows of the target scenes: uint8 images (N, t, t, 3), validity (N, t, t), and how
    many came from each scene."""

    images: np.ndarray
    valid: np.ndarray
    per_scene: dict[str, int]


def _scene_windows(path: str, options: PredictOptions, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    size = options.tile
    reference = None if options.colour_reference is None else np.asarray(options.colour_reference, np.float32)
    with Scene(path, options.bands, scene_gsd(path, options)) as scene:
        # whole windows only: the scene's edge, padded, would teach statistics of reflections
        grid = [t for t in tile_grid(scene.height, scene.width, size, size) if t.height == t.width == size]
        order = np.random.default_rng(seed).permutation(len(grid))
        table = None
        if reference is not None:
            table = colours.scene_table(scene.read, scene.height, scene.width, size, reference)
        images, valids = [], []
        for k in order:
            t = grid[k]
            image, valid = scene.read(t.row, t.col, size, size)
            if valid.mean() < 1 - MAX_NODATA:
                continue
            if table is not None:
                image = colours.apply_table(image, table, valid)
            images.append(image)
            valids.append(valid)
            if len(images) == count:
                break
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8), np.stack(valids) if valids else (
        np.zeros((0, size, size), bool)
    )


def target_tiles(scenes: list[str], options: PredictOptions, cfg: AdaptConfig) -> TargetTiles:
    """Up to ``cfg.tiles_per_scene`` windows of each scene, read as ``options`` (:func:`resolve`'s)
    tell predict to read it (mostly-nodata windows skipped). The run needs :data:`MIN_TILES` usable
    windows in all, however many scenes give them (a city of 256 px chips gives one window each); a
    scene that gives none is said in one line and left out."""
    images, valid, per_scene = [], [], {}
    empty = []
    size = options.tile
    for k, path in enumerate(scenes):
        img, val = _scene_windows(path, options, cfg.tiles_per_scene, cfg.seed + k)
        if not len(img):
            empty.append(path)
            continue
        images.append(img)
        valid.append(val)
        per_scene[os.path.basename(path)] = len(img)
    why = f"no usable window of {size} px (smaller than one, or over {MAX_NODATA:.0%} nodata in each)"
    if not images and len(scenes) == 1:
        raise RoofsegError(scenes[0], why)
    for path in empty:
        warnings.warn(f"{path}: {why}, left out", stacklevel=2)
    total = sum(per_scene.values())
    if total < MIN_TILES:
        raise RoofsegError(
            scenes[0] if len(scenes) == 1 else None,
            f"the scenes give {total} usable windows of {size} px, fewer than {MIN_TILES}: too few for "
            "stable statistics; give larger scenes, or more",
        )
    return TargetTiles(np.concatenate(images), np.concatenate(valid), per_scene)


def run_fingerprint(sha256: str, scenes: list[str], cfg: AdaptConfig) -> dict:
    """What a self-training's work folder belongs to: the input model, the scenes (each file's
    path, size and time) and the settings. A resume with another is another run."""
    return json.loads(
        json.dumps(
            {"input_sha256": sha256, "scenes": [[p, *file_signature(p)] for p in scenes], "settings": asdict(cfg)}
        )
    )


def claim_work(work: Path, fingerprint: dict) -> bool:
    """Make ``work`` this run's: kept where it holds this very run's work (a resume, True); emptied
    and said where another run's is there (False)."""
    stamp = work / "run.json"
    if work.exists():
        try:
            same = json.loads(stamp.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        if same:
            return True
        print(f"roofseg: {work} holds the work of another adapt run (other model, scenes or settings): starting again")
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(stamp, keep_suffix=True)
    tmp.write_text(json.dumps(fingerprint))
    os.replace(tmp, stamp)
    return False


def _batch_norms(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def adapt_batch_norm(model: keras.Model, images: np.ndarray, batch: int, progress: bool = True) -> None:
    """AdaBN: each batch norm's moving statistics become the mean, over batches of ``images``
    (uint8), of the statistics it sees there; forward passes only, the weights unchanged."""
    norms = _batch_norms(model)
    momenta = [bn.momentum for bn in norms]
    batches = [images[k : k + batch] for k in range(0, len(images) - batch + 1, batch)] or [images]
    try:
        for k, chunk in enumerate(
            tqdm(batches, desc="adapting batch norms", unit="batch", disable=not progress, file=terminal())
        ):
            for bn in norms:  # the running mean of the batches' statistics: batch k weighs 1 / (k + 1)
                bn.momentum = k / (k + 1)
            model(tf.constant(chunk, tf.float32) / 255.0, training=True)
    finally:
        for bn, m in zip(norms, momenta):
            bn.momentum = m


def pseudo_labels(model: keras.Model, tiles: TargetTiles, low: float, high: float, batch: int) -> np.ndarray:
    """(N, t, t, 2 × channels) float32: per output channel the label (1 above ``high``) and its
    weight (1 where the probability is above ``high`` or below ``low`` on a valid pixel, else 0)."""
    probs = model.predict(tiles.images.astype(np.float32) / 255.0, batch_size=batch, verbose=0)
    labels = (probs >= high).astype(np.float32)
    sure = ((probs >= high) | (probs <= low)) & tiles.valid[..., None]
    return np.concatenate([labels, sure.astype(np.float32)], axis=-1)


def _masked_loss(y: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """Cross-entropy plus Dice of each output channel over its confident pixels alone."""
    channels = p.shape[-1]
    labels, weights = y[..., :channels], y[..., channels:]
    eps = 1e-6
    p = tf.clip_by_value(p, eps, 1 - eps)
    bce = -(labels * tf.math.log(p) + (1 - labels) * tf.math.log(1 - p))
    total = tf.reduce_sum(weights, axis=[0, 1, 2]) + eps
    bce = tf.reduce_sum(bce * weights, axis=[0, 1, 2]) / total
    inter = tf.reduce_sum(p * labels * weights, axis=[0, 1, 2])
    union = tf.reduce_sum((p + labels) * weights, axis=[0, 1, 2])
    dice = 1 - (2 * inter + 1) / (union + 1)
    return tf.reduce_sum(bce + dice)


def self_train(
    model: keras.Model, tiles: TargetTiles, cfg: AdaptConfig, work: Path, progress: bool = True
) -> dict[str, float]:
    """Train ``model`` on its own confident predictions for ``cfg.steps`` steps, from the checkpoint
    in ``work`` where a killed run left one. Returns the share of pixels taken as roof, as ground,
    and left out."""
    work.mkdir(parents=True, exist_ok=True)
    labels_file = work / "pseudo-labels.npy"
    if labels_file.exists():  # a resumed run trains on the labels it started with
        targets = np.load(labels_file)
    else:
        targets = pseudo_labels(model, tiles, cfg.low, cfg.high, cfg.batch)
        tmp = temp_path(labels_file, keep_suffix=True)
        np.save(tmp, targets)
        os.replace(tmp, labels_file)
    channels = targets.shape[-1] // 2
    weights = targets[..., channels : channels + 1]
    shares = {
        "roof": float((targets[..., :1] * weights).mean()),
        "ground": float(((1 - targets[..., :1]) * weights).mean()),
        "left_out": float(1 - weights.mean()),
    }
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(checkpoint, str(work / "checkpoints"), max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
    geometry = replace(AugmentConfig.off(), flip=True, max_angle=30.0)
    n = len(tiles.images)

    @tf.function
    def train_step(x, y, seed):
        x, y = augment(tf.cast(x, tf.float32) / 255.0, y, seed, geometry)
        with tf.GradientTape() as tape:
            loss = _masked_loss(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    save_every = max(10, cfg.steps // 10)
    with tqdm(
        total=cfg.steps,
        initial=int(step.numpy()),
        desc="self-training",
        unit="step",
        disable=not progress,
        file=terminal(),
    ) as bar:
        while int(step.numpy()) < cfg.steps:
            k = int(step.numpy())
            rng = np.random.default_rng([cfg.seed, k])  # the same draw for a step, resumed or not
            index = rng.choice(n, size=min(cfg.batch, n), replace=False)
            loss = train_step(tiles.images[index], targets[index], tf.constant([cfg.seed, k], tf.int64))
            step.assign_add(1)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
            if int(step.numpy()) % save_every == 0 or int(step.numpy()) == cfg.steps:
                manager.save()
    return shares


def adapt(
    model_path: str | os.PathLike,
    scenes: list[str],
    out: str | os.PathLike,
    cfg: AdaptConfig,
    progress: bool = True,
) -> Adaptation:
    """Adapt the model at ``model_path`` to ``scenes`` and write it to ``out`` (the input model is
    never changed); return what was done (the card's ``adaptation``)."""
    model_path, out = os.fspath(model_path), Path(out)
    if out.exists() and os.path.samefile(out, model_path):
        raise RoofsegError(out, "is the input model; adapt writes a new one (choose another -o)")
    ensure_writable_dir(out.parent)
    remove_stale_partials(out.parent, out.name)
    check_archive(model_path)  # before any scene is read
    base = read_base(model_path)
    card = base.card or ModelCard()
    # the windows predict would feed the model, decided where predict decides them (a card without
    # the colour reference asked for is refused there, before any scene is read)
    options = resolve(card, PredictRequest(bands=cfg.bands, match_colours=cfg.match_colours), model_path).options
    cfg = replace(cfg, match_colours=options.colour_reference is not None)  # recorded as decided
    tiles = target_tiles(scenes, options, cfg)
    model = load_model(model_path, compile=False)
    done: dict = {}
    if "bn" in cfg.methods:
        adapt_batch_norm(model, tiles.images, cfg.batch, progress)
        done["bn_batches"] = max(1, len(tiles.images) // cfg.batch)
    # the self-training checkpoint sits beside the output, named after it, until the output is written
    work = out.parent / f".{out.name}.adapt"
    if "self-train" in cfg.methods:
        claim_work(work, run_fingerprint(base.sha256, scenes, cfg))
        done["pseudo_labels"] = self_train(model, tiles, cfg, work, progress)
    adaptation = Adaptation(
        method=",".join(m for m in METHODS if m in cfg.methods),
        dropped_tuning=card.postprocess is not None,  # tune the adapted model for its own
        input=os.path.basename(model_path),
        input_sha256=base.sha256,
        scenes=tuple({"name": name, "tiles": n} for name, n in tiles.per_scene.items()),
        settings=asdict(cfg),
        bn_batches=done.get("bn_batches"),
        pseudo_labels=done.get("pseudo_labels"),
    )
    # tune's choice was made for the model before adaptation: not the adapted model's defaults (its
    # colour matching among them); the base's card keeps it
    adapted = replace(card, adaptation=adaptation, base=base.lineage, postprocess=None)
    compile_model(model)

    def save(tmp: Path) -> None:
        model.save(tmp)
        drop_optimizer_state(tmp)

    write_model(out, adapted, save)
    shutil.rmtree(work, ignore_errors=True)
    return adaptation
