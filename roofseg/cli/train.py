"""``roofseg train``: the U-Net on a manifest's splits."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import (
    CONTEXT,
    FiniteRange,
    ModelSource,
    augment_config,
    augment_options,
    batch_opt,
    overwrite_opt,
    seed_opt,
    tile_size_opt,
)
from roofseg.training.config import CONTACT_LOSSES, ROOF_LOSSES, TrainConfig

#: the library's defaults, the options' own: decided once, in TrainConfig, for every caller
DEFAULTS = TrainConfig(manifest="", out_dir="")


@click.command(context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: config.json, best.keras, last.keras, history.csv, curves.png, samples.png, logs/.",
)
@click.option(
    "--init-from",
    default=None,
    type=ModelSource(),
    help="Fine-tune: start from every weight of this roofseg model (a .keras file; `base`, the model that ships with "
    "roofseg; or a URL pinned by #sha256=HEX, downloaded once into a cache) instead of --encoder-weights. "
    "Its card must match the tiles (bands, scaling; GSDs within its trained range, or 25% beyond it, else retile "
    "with tile --gsd). The new model's card records it (file, SHA-256, card). The defaults are the same as "
    "without it (--lr 1e-4, no --freeze-encoder-epochs): see --lr.",
)
@click.option(
    "--widen-gsd",
    is_flag=True,
    help="With --init-from: the tiles may lie beyond the GSD range the base was trained on, on purpose (teaching "
    "a base new resolutions); the new card states the range of both.",
)
@click.option(
    "--encoder-weights",
    default=DEFAULTS.encoder_weights,
    help="imagenet (the Keras cache file resnet34_imagenet_1000_no_top.h5 under $KERAS_HOME/models or "
    "~/.keras/models), none (random), or PATH to an .h5 of encoder weights.",
)
@click.option(
    "--freeze-encoder-epochs",
    default=DEFAULTS.freeze_encoder_epochs,
    type=click.IntRange(0),
    help="Train the decoder alone for this many epochs first, then everything.",
)
@click.option("--loss", type=click.Choice(ROOF_LOSSES), default=DEFAULTS.loss, help="Loss function.")
@click.option(
    "--contact-weight",
    default=DEFAULTS.contact_weight,
    show_default=True,
    type=FiniteRange(0, min_open=True),
    help="Where the tiles carry contact borders: their loss (cross-entropy and Dice) is added to the roof's "
    "times this. 4 against 1: more buildings matched continuing the base (dense Kampala object F1 0.73 "
    "against 0.65), fine-tuning it on Dhaka, and in the demo (0.97 against 0.94).",
)
@click.option(
    "--contact-loss",
    type=click.Choice(CONTACT_LOSSES),
    default=DEFAULTS.contact_loss,
    show_default=True,
    help="The contact borders' loss: cross-entropy and Dice, or focal loss (gamma 2: the hard pixels, "
    "faint borders, carry it) and Dice.",
)
@click.option(
    "--gap-weight",
    default=DEFAULTS.gap_weight,
    show_default=True,
    type=FiniteRange(1),
    help="Where the tiles carry borders: the roof's cross-entropy on the ground in gaps narrower than the "
    "band between two buildings counts this many times (the U-Net paper's weight map; --loss bce or bce_dice).",
)
@click.option(
    "--lr",
    "learning_rate",
    default=DEFAULTS.learning_rate,
    show_default=True,
    type=FiniteRange(0, min_open=True),
    help="Adam learning rate, from scratch and for a fine-tune (--init-from) alike. Fine-tuning the shipped base "
    "on one Dhaka block for 300 steps (bench/finetune_dhaka.py), 1e-4 found the most buildings of the next block "
    "(object F1 0.296; 3e-4 0.268, 1e-3 0.253; pixel IoU 0.82-0.83 for each); 1e-3 took a Nairobi block's pixel "
    "IoU from the base's 0.44 to 0.24.",
)
@click.option(
    "--epochs",
    default=DEFAULTS.epochs,
    type=click.IntRange(1),
    help="Most epochs to train (early stopping may end sooner).",
)
@batch_opt
@tile_size_opt
@click.option(
    "--steps-per-epoch",
    default=None,
    type=click.IntRange(1),
    help="Batches per epoch. Default: one pass over the training split.",
)
@click.option(
    "--validation-steps",
    default=None,
    type=click.IntRange(1),
    help="Validation batches per epoch. Default: the whole validation split.",
)
@click.option(
    "--strategy",
    type=click.Choice(["mirrored", "default", "multiworker"]),
    default=DEFAULTS.strategy,
    help="mirrored: all visible GPUs of this machine; default: one device; multiworker: MultiWorkerMirroredStrategy "
    "set up by TF_CONFIG.",
)
@click.option(
    "--devices",
    default=None,
    help="With mirrored: devices to use, e.g. '/gpu:0,/gpu:1'. Default: all visible GPUs, else the CPU.",
)
@click.option(
    "--mixed-precision", is_flag=True, help="mixed_float16 on GPUs (the output stays float32); ignored without a GPU."
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default=DEFAULTS.precision,
    help="Arithmetic of the training step. auto: bfloat16 (Keras mixed_bfloat16) on a CPU with AMX or a GPU of "
    "compute capability 8.0+, where it measured 2x float32; float32 elsewhere (AVX512_BF16 without AMX measured "
    "1.0x; no bfloat16 arithmetic, many times slower). The sigmoid, loss and metrics stay float32; best.keras "
    "predicts in float32. Recorded in the card and config.json; a resume keeps it.",
)
@click.option(
    "--data-licence",
    default=None,
    help="The training data's licences, stated in the model's card (e.g. 'imagery CC BY 4.0, footprints ODbL').",
)
@click.option(
    "--roof-share",
    default=None,
    type=FiniteRange(0, 1),
    help="Draw training tiles so that this share of them holds roof, the rest empty ground (tf.data "
    "sample_from_datasets); an epoch keeps one pass's number of steps. Default: tiles as they come.",
)
@click.option(
    "--balance",
    type=click.Choice(["none", "place"]),
    default=DEFAULTS.balance,
    help="place: every place and GSD of the manifest gets an equal share of the training tiles drawn (a place is "
    "a scene's name without zoom, block and tile numbers: hot_data2_z20_block1 is hot_data2), so one large "
    "scene does not drown small places; an epoch keeps one pass's number of steps.",
)
@click.option(
    "--schedule",
    type=click.Choice(["plateau", "cosine"]),
    default=DEFAULTS.schedule,
    help="plateau: --lr, cut by --lr-factor when val_loss stalls; cosine: a warm-up (--warmup-steps) to --lr, "
    "then a cosine decay to --lr/100 over the planned epochs x steps (a budget known in advance).",
)
@click.option(
    "--warmup-steps",
    default=DEFAULTS.warmup_steps,
    type=click.IntRange(0),
    help="With --schedule cosine: steps of linear warm-up.",
)
@click.option(
    "--contact/--no-contact",
    default=DEFAULTS.contact,
    help="Where the tiles carry contact targets (tile --contact-px), a second output learns the borders between "
    "buildings, so predict can split touching buildings into one polygon each.",
)
@click.option(
    "--data-service",
    default=None,
    help="grpc://HOST:PORT of a tf.data service (roofseg data-service) that reads, parses and batches the training "
    "split on its workers; augmentation stays in the training step.",
)
@click.option(
    "--augment-on",
    type=click.Choice(["device", "host"]),
    default=DEFAULTS.augment_on,
    help="device: augment inside the training step (on the GPU, each replica); host: in the tf.data graph.",
)
@augment_options
@click.option(
    "--lr-patience",
    default=DEFAULTS.lr_patience,
    type=click.IntRange(1),
    help="ReduceLROnPlateau: epochs without val_loss improvement before the rate is cut by 5.",
)
@click.option("--min-lr", default=DEFAULTS.min_lr, type=FiniteRange(0), help="ReduceLROnPlateau: lowest learning rate.")
@click.option(
    "--patience",
    default=DEFAULTS.early_stopping_patience,
    type=click.IntRange(1),
    help="EarlyStopping: epochs without val_loss improvement before stopping (best weights restored).",
)
@click.option(
    "--shuffle-buffer", default=DEFAULTS.shuffle_buffer, type=click.IntRange(1), help="Tiles in the shuffle buffer."
)
@seed_opt
@overwrite_opt
@click.option("--quiet", is_flag=True, help="No Keras progress bar (one line per epoch).")
def train(
    manifest,
    out_dir,
    init_from,
    widen_gsd,
    encoder_weights,
    freeze_encoder_epochs,
    loss,
    contact_weight,
    contact_loss,
    gap_weight,
    learning_rate,
    epochs,
    batch_size,
    tile_size,
    steps_per_epoch,
    validation_steps,
    strategy,
    devices,
    mixed_precision,
    precision,
    data_licence,
    roof_share,
    balance,
    schedule,
    warmup_steps,
    contact,
    data_service,
    augment_on,
    lr_patience,
    min_lr,
    patience,
    shuffle_buffer,
    seed,
    overwrite,
    quiet,
    **augment,
) -> None:
    """Train the ResNet34 U-Net on the train/val splits of MANIFEST.

    Adam, Dice loss (default), IoU and F1 metrics; the best model by val_loss is kept as best.keras,
    the latest epoch's as last.keras; the learning rate drops on plateaus; training stops early when
    val_loss stalls. Tiles without a validation split (tile --val 0) train all the same, by the
    training loss instead. A killed run started again with the same OUTPUT resumes from its last
    finished epoch.
    """
    # here, not at the top: keeps --help fast
    from roofseg.training.train import train as run_train

    cfg = TrainConfig(
        manifest=manifest,
        out_dir=out_dir,
        encoder_weights=encoder_weights,
        freeze_encoder_epochs=freeze_encoder_epochs,
        loss=loss,
        contact_weight=contact_weight,
        contact_loss=contact_loss,
        gap_weight=gap_weight,
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        tile_size=tile_size,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        strategy=strategy,
        devices=devices.split(",") if devices else None,
        mixed_precision=mixed_precision,
        precision=precision,
        data_licence=data_licence,
        roof_share=roof_share,
        balance=balance,
        schedule=schedule,
        warmup_steps=warmup_steps,
        contact=contact,
        data_service=data_service,
        augment_on=augment_on,
        augment=augment_config(**augment),
        lr_patience=lr_patience,
        min_lr=min_lr,
        early_stopping_patience=patience,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        init_from=init_from,
        widen_gsd=widen_gsd,
    )
    summary = run_train(cfg, verbose=2 if quiet else "auto", overwrite=overwrite)
    if summary:
        if summary["best_val_loss"] is not None:
            click.echo(
                f"best epoch {summary['best_epoch']}: val_loss {summary['best_val_loss']:.4f}, "
                f"val IoU {summary['best_val_iou']:.4f}"
            )
        else:
            click.echo(f"best epoch {summary['best_epoch']} (no validation split): loss {summary['best_loss']:.4f}")
        click.echo(f"model: {summary['model']}")
        click.echo(f"curves: {Path(out_dir) / 'curves.png'}, samples: {Path(out_dir) / 'samples.png'}")
