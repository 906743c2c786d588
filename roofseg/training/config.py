"""The settings of a training run (``roofseg train``'s options), saved as its ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field

from roofseg.contracts.augment import AugmentConfig

#: the roof's losses and the contact borders' (the keys of ``losses.LOSSES`` and ``losses.CONTACT_LOSSES``,
#: named here, where the CLI can read them without importing TensorFlow)
ROOF_LOSSES = ("dice", "bce", "bce_dice")
CONTACT_LOSSES = ("bce_dice", "focal_dice")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as the run's config.json."""

    manifest: str
    out_dir: str
    encoder_weights: str = "imagenet"
    freeze_encoder_epochs: int = 0
    loss: str = "dice"
    contact_weight: float = 4.0  # the contact borders' loss is added to the roof's times this
    contact_loss: str = "bce_dice"  # the contact borders' loss: bce_dice or focal_dice
    gap_weight: float = 1.0  # the roof's cross-entropy on the ground between nearly touching buildings, times this
    learning_rate: float = 1e-4
    epochs: int = 50
    batch_size: int = 16  # per replica
    tile_size: int | None = None  # model input size; default the manifest's
    steps_per_epoch: int | None = None  # default: one pass over the training split
    validation_steps: int | None = None
    strategy: str = "mirrored"
    devices: list[str] | None = None
    mixed_precision: bool = False  # mixed_float16 on GPUs (older than precision; wins over it)
    precision: str = "auto"  # auto, float32 or bfloat16 (see roofseg.training.precision)
    augment_on: str = "device"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr_factor: float = 0.2
    lr_patience: int = 5
    min_lr: float = 1e-6
    early_stopping_patience: int = 10
    shuffle_buffer: int = 256
    samples: int = 4
    seed: int = 0
    data_service: str | None = None  # grpc://HOST:PORT of a tf.data service that reads and batches the training split
    roof_share: float | None = None  # draw training tiles so this share holds roof (None: as they come)
    contact: bool = True  # learn the contact borders between buildings too, where the tiles carry them
    init_from: str | None = None  # a roofseg model (.keras) whose every weight is the starting point
    schedule: str = "plateau"  # plateau (cut by lr_factor when val_loss stalls) or cosine (warm-up, then decay)
    warmup_steps: int = 0  # cosine: steps of linear warm-up from lr/100 to lr
    balance: str = "none"  # none, or place: every place and GSD of the manifest drawn in equal shares
    widen_gsd: bool = False  # --init-from a base on tiles at GSDs beyond its range (the new card has the new range)
    data_licence: str | None = None  # the training data's licences, stated in the model's card
