"""The ResNet34 U-Net of segmentation-models, with augmentation inside its training step."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import h5py

from roofseg._tf import keras, sm, tf
from roofseg.atomic import TMP_SUFFIX, file_sha256
from roofseg.contracts.augment import AugmentConfig
from roofseg.contracts.card import CARD_FILE
from roofseg.errors import RoofsegError, first_line
from roofseg.pipeline.augment import augment
from roofseg.training import losses
from roofseg.training.precision import float32_config

# Keras' own loader of .keras archives, reached through roofseg._tf: imported from tf_keras
# directly, TensorFlow would load before roofseg._tf quiets its native start-up logs
sl = keras.src.saving.saving_lib

BACKBONE = "resnet34"
IMAGENET_FILE = "resnet34_imagenet_1000_no_top.h5"
IMAGENET_URL = "https://github.com/qubvel/classification_models/releases/download/0.0.1/" + IMAGENET_FILE


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, else ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def resolve_encoder_weights(choice: str) -> str | None:
    """``imagenet`` → the cached ImageNet file, ``none`` → None, else an existing .h5 path."""
    if choice.lower() == "none":
        return None
    if choice.lower() == "imagenet":
        path = keras_cache_dir() / IMAGENET_FILE
        if not path.is_file():
            raise RoofsegError(
                path,
                f"ImageNet weights of the ResNet34 encoder are not there and this "
                f"machine cannot download them: put {IMAGENET_URL} at that path, or "
                "use --encoder-weights none or --encoder-weights PATH",
            )
        return str(path)
    if not Path(choice).is_file():
        raise RoofsegError(choice, "no such encoder weights file (--encoder-weights imagenet|none|PATH)")
    return check_hdf5(choice)


def check_hdf5(path: str | os.PathLike) -> str:
    """``path`` if it is an HDF5 file (Keras' .h5 weights), else a RoofsegError saying what it is not."""

    if not h5py.is_hdf5(path):
        raise RoofsegError(
            path,
            "is not an HDF5 weights file (.h5); give the ResNet34 encoder's "
            f"{IMAGENET_FILE}, or --encoder-weights none",
        )
    return os.fspath(path)


@keras.saving.register_keras_serializable("roofseg")
class SegmentationModel(keras.Model):
    """A functional model whose ``train_step`` augments each batch before the forward pass.

    Augmentation thus runs where the step runs: on the GPU, and on every replica under a
    distribution strategy. A reloaded model has ``augment_config`` None and trains without it
    (loading is for prediction; training builds a new one and restores from its backup).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.augment_config: AugmentConfig | None = None
        self.augment_seed = 0

    def train_step(self, data):
        x, y = data[0], data[1]
        if self.augment_config is not None:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            step = tf.cast(self.optimizer.iterations, tf.int64)
            # a new draw each step and each replica, repeatable from the seed (also after a resume)
            seed = tf.stack([tf.constant(self.augment_seed, tf.int64), step * 1024 + tf.cast(replica, tf.int64)])
            x, y = augment(x, y, seed, self.augment_config)
        return super().train_step((x, y))

    def get_config(self) -> dict:
        # A functional subclass with its own __init__ reports only its name; the config of the
        # same graph as a plain functional model lets load_model rebuild every layer.
        return keras.Model(self.inputs, self.outputs, name=self.name).get_config()


def bn_momentum(steps_per_epoch: int) -> float:
    """Batch-norm momentum whose moving statistics follow the weights within a fifth of an epoch.

    Keras' 0.99 averages the last ~100 steps. On a short run from random weights (the demo: ~20
    steps an epoch) the statistics then lag the weights for many epochs, and the model in
    inference mode (validation, checkpoints, prediction) scores far below the model in training.
    Long runs keep 0.99; the time constant never drops below 4 steps.
    """
    steps = min(100.0, max(4.0, steps_per_epoch / 5.0))
    return round(1.0 - 1.0 / steps, 4)


def build_model(
    encoder_weights: str | None = None, freeze_encoder: bool = False, momentum: float | None = None, outputs: int = 1
) -> tuple[SegmentationModel, list]:
    """The U-Net (ResNet34 encoder, sigmoid) for inputs of any size divisible by 32.

    Channel 0 is the roof probability; ``outputs=2`` adds channel 1, the probability that a pixel
    is a contact border between two buildings (trained on the tiler's contact targets; the
    channels are named in ``roofseg.tiler.targets.TARGETS``).

    Returns the model and its encoder layers (those frozen for fine-tuning; batch norms excepted,
    as segmentation-models does). The sigmoid is a float32 layer of its own, so the output stays
    float32 under a mixed-precision policy. ``momentum`` sets every batch norm's (see :func:`bn_momentum`).
    """
    try:
        base = sm.Unet(
            BACKBONE,
            input_shape=(None, None, 3),
            classes=outputs,
            activation="linear",
            encoder_weights=encoder_weights,
            encoder_freeze=True,
        )
    except (OSError, ValueError) as exc:  # an HDF5 file of other weights
        raise RoofsegError(encoder_weights, f"cannot load as ResNet34 encoder weights ({first_line(exc)})") from None
    if momentum is not None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum
    encoder = [layer for layer in base.layers if not layer.trainable]
    probabilities = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(base.output)
    model = SegmentationModel(inputs=base.input, outputs=probabilities, name="unet_resnet34")
    set_trainable(encoder, not freeze_encoder)
    return model, encoder


def set_trainable(layers: list, trainable: bool) -> None:
    for layer in layers:
        layer.trainable = trainable


def compile_model(
    model: keras.Model,
    loss: str = "dice",
    learning_rate: float = 1e-4,
    contact_weight: float = losses.CONTACT_WEIGHT,
    contact_loss: str = losses.CONTACT_LOSS,
    gap_weight: float = 1.0,
) -> None:
    """Adam, the chosen loss (its contact borders' ``contact_loss`` term times ``contact_weight``,
    the gaps between buildings weighed ``gap_weight``), IoU and F1 at threshold 0.5."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=losses.loss_of(loss, contact_weight, contact_loss, gap_weight),
        metrics=losses.metrics(),
    )


WEIGHTS = "model.weights.h5"


def drop_optimizer_state(path: str | os.PathLike) -> None:
    """Rewrite the .keras file at ``path`` without the optimizer's state (Adam's two moments: twice
    the weights' size) and with float32 layers: the file a user copies and shares holds the
    weights, the model's configuration and its card, and predicts in float32 whatever precision
    it was trained in; resuming reads the optimizer from the run's backup/."""

    path = Path(path)
    # a scratch folder named as roofseg's temporaries are (.NAME.PID.partial), so a later run removes it
    with tempfile.TemporaryDirectory(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".{os.getpid()}{TMP_SUFFIX}"
    ) as tmp:
        with zipfile.ZipFile(path) as zf:
            if WEIGHTS not in zf.namelist():
                return
            members = {n: zf.read(n) for n in zf.namelist() if n != WEIGHTS}
            full = zf.extract(WEIGHTS, tmp)
        # a model trained under mixed_bfloat16 is saved as a float32 one (see precision.float32_config)
        members["config.json"] = json.dumps(float32_config(json.loads(members["config.json"]))).encode()
        lean = os.path.join(tmp, "lean.h5")
        with h5py.File(full, "r") as src, h5py.File(lean, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                if name != "optimizer":
                    src.copy(src[name], dst, name=name)
        rewritten = os.path.join(tmp, "model.keras")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_STORED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            zf.write(lean, WEIGHTS)
        os.replace(rewritten, path)


def model_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a model file (hex): what a fine-tuned model's lineage and the engines' cache
    of its ONNX export know it by."""
    return file_sha256(path)


def check_archive(path: str | os.PathLike) -> str:
    """``path`` if it is a ``.keras`` archive whole enough to load (a zip holding the model's
    configuration and weights); else a RoofsegError saying what it is instead."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RoofsegError(path, "no such model file")
    if not zipfile.is_zipfile(path):
        raise RoofsegError(
            path,
            "is not a Keras model file (a .keras zip archive): give the best.keras of a "
            "training run (roofseg train ... -o RUN writes RUN/best.keras)",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            broken = zf.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise RoofsegError(path, f"is a damaged zip archive ({exc}): copy the model again") from None
    missing = [m for m in ("config.json", WEIGHTS) if m not in names]
    if missing:
        raise RoofsegError(
            path,
            f"is a zip archive but no Keras model (it holds no {missing[0]}): give the best.keras of a training run",
        )
    if broken is not None:
        raise RoofsegError(path, f"is a damaged zip archive ({broken} fails its checksum): copy the model again")
    return path


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Load a model saved by roofseg (``.keras``), with its loss and metrics."""
    path = check_archive(path)
    try:
        try:
            return _load_extracted(path, compile)
        except (ImportError, AttributeError, KeyError):  # another tf-keras layout: the public loader
            return keras.models.load_model(path, compile=compile)
    except (OSError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise RoofsegError(path, f"cannot load the model ({str(exc).splitlines()[0]})") from None


def _load_extracted(path: str, compile: bool) -> keras.Model:
    """tf-keras' own .keras loading, but with the weights read from a file on disk.

    tf-keras reads the weights' HDF5 through zipfile, and on Python 3.11 every backward seek in
    a zip member re-reads it from the start: a 100 MB U-Net takes over a minute to load. The
    member extracted to a temporary file loads in a second.
    """

    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
        names = [n for n in zf.namelist() if n != CARD_FILE]
        if len(names) > 3 or "model.weights.h5" not in names:  # assets or npz weights
            raise KeyError("layout")
        config = float32_config(json.loads(zf.read("config.json")))
        if not compile:
            config["compile_config"] = None
        weights = zf.extract("model.weights.h5", tmp)
        previous = getattr(sl._SAVING_V3_ENABLED, "value", False)
        sl._SAVING_V3_ENABLED.value = True
        try:
            with sl.ObjectSharingScope():
                model = sl.deserialize_keras_object(config, None, safe_mode=True)
            store = sl.H5IOStore(weights, mode="r")
            try:
                sl._load_state(model, weights_store=store, assets_store=None, inner_path="", visited_trackables=set())
            finally:
                store.close()
        finally:
            sl._SAVING_V3_ENABLED.value = previous
    return model
