"""The ``roofseg`` command line: one click group, one subcommand per verb (like ``rio``).

Heavy libraries are imported inside each command, so ``--help`` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from roofseg import __version__
from roofseg.errors import failure_line

CONTEXT = {"show_default": True, "help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


SPLIT_NAMES = {"train": "Training", "val": "Validation", "test": "Test"}


def fraction(lo: float = 0.0, hi: float = 1.0):
    return click.FloatRange(lo, hi)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="roofseg")
def cli() -> None:
    """Rooftop segmentation from georeferenced satellite and aerial scenes.

    A typical run: `roofseg sample DIR`, `roofseg tile DIR -o TILES`, `roofseg train TILES/manifest.json -o RUN`,
    `roofseg predict RUN/best.keras SCENE.tif OUT.tif`.
    """


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--size", default=2048, type=click.IntRange(64), help="Width and height of the scene in pixels.")
@click.option("--pixel-size", default=0.3, type=click.FloatRange(0.01, 100), help="Ground size of a pixel in metres.")
@click.option("--crs", default="EPSG:32633", help="Projected CRS of the scene (anything rasterio accepts).")
@click.option("--seed", default=0, type=int, help="Seed of the layout and textures: same seed, same scene.")
def sample(out_dir: str, size: int, pixel_size: float, crs: str, seed: int) -> None:
    """Write the built-in synthetic sample scene to OUT_DIR.

    Writes sample_image.tif (3-band uint8 GeoTIFF, nodata 0 along an irregular left border),
    sample_mask.tif (0/1 roofs on the same grid) and sample_labels.geojson (the roofs as polygons).
    """
    from roofseg.sample import write_sample

    paths = write_sample(out_dir, size=size, pixel=pixel_size, crs=crs, seed=seed)
    for role, path in paths.items():
        click.echo(f"{role}: {path}")


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the shards and manifest.json.")
@click.option("--labels", multiple=True, type=click.Path(), help="Labels of each scene, in order (mask raster or vector file); repeat once per scene. Default: found beside each scene (see above).")
@click.option("--prefer", type=click.Choice(["mask", "vector"]), default="mask", help="Which labels to take when both a mask and footprints lie beside a scene.")
@click.option("--labels-crs", default=None, help="CRS of vector labels whose file states none or a wrong one, e.g. EPSG:3857 (GeoJSON without a 'crs' member is read as WGS84).")
@click.option("--ignore-non-polygons", is_flag=True, help="Take a labels file holding only lines or points as an area without buildings (default: refuse it).")
@click.option("--tile-size", default=256, type=click.IntRange(16), help="Tile width and height in pixels.")
@click.option("--stride", default=None, type=click.IntRange(1), help="Pixels between tile starts. Default: tile size minus --overlap.")
@click.option("--overlap", default=0, type=click.IntRange(0), help="Pixels shared by neighbouring tiles (ignored when --stride is given).")
@click.option("--bands", default=None, help="Bands to use, 1-based, e.g. '3,2,1' or '1'. Default: 1,2,3, or the only band replicated to RGB.")
@click.option("--max-nodata", default=0.5, type=fraction(), help="Skip tiles with more than this fraction of nodata (padding outside the scene counts as nodata).")
@click.option("--keep-empty", default=1.0, type=fraction(), help="Fraction of training tiles without any roof to keep (val and test keep all).")
@click.option("--val", "val_fraction", default=0.15, type=fraction(0, 0.9), help="Fraction of scenes (or blocks) for validation.")
@click.option("--test", "test_fraction", default=0.15, type=fraction(0, 0.9), help="Fraction of scenes (or blocks) for testing.")
@click.option("--split-by", type=click.Choice(["auto", "scene", "block"]), default="auto", help="Split whole scenes, or square blocks inside each scene. auto: by scene from 3 scenes on, else by block.")
@click.option("--split-block", default=512, type=click.IntRange(16), help="Block size in pixels for --split-by block; tiles straddling two splits are dropped.")
@click.option("--shard-mb", default=100.0, type=click.FloatRange(0.001), help="Approximate size of a shard in MB (uncompressed records).")
@click.option("--compress", type=click.Choice(["none", "gzip"]), default="none", help="TFRecord compression.")
@click.option("--workers", default=1, type=click.IntRange(1), help="Scenes tiled in parallel (processes).")
@click.option("--seed", default=0, type=int, help="Seed of the split and of --keep-empty.")
@click.option("--overwrite", is_flag=True, help="Redo scenes whose shards are complete (by default a rerun skips them).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def tile(inputs, out_dir, labels, prefer, labels_crs, ignore_non_polygons, tile_size, stride, overlap, bands, max_nodata, keep_empty,
         val_fraction, test_fraction, split_by, split_block, shard_mb, compress, workers, seed, overwrite, quiet) -> None:
    """Cut scenes and their labels into tiles written to TFRecord shards.

    INPUTS are GeoTIFF scenes, folders of scenes, or .txt lists with one 'IMAGE [LABELS]' per line;
    or one folder holding images/ and masks/ (JPG/PNG/TIF of any size, matched by name), each pair
    resized to one tile (image bilinear, mask nearest).

    Scenes are read window by window, never whole. Labels beside a scene NAME.tif (or NAME_image.tif)
    are NAME_mask.tif, NAME_labels*.geojson/.gpkg/.shp or NAME.geojson/.gpkg/.shp; footprints in another
    CRS are reprojected. Any non-uint8 imagery is stretched to uint8 by per-band 2-98 percentiles of a
    decimated read of the whole scene (uint8 is taken as it is).

    Writes OUTPUT/{train,val,test}/*.tfrecord and OUTPUT/manifest.json (written last).
    """
    from roofseg.raster.scene import parse_bands
    from roofseg.raster.windows import stride_for
    from roofseg.tiler.run import tile as run_tile
    from roofseg.tiler.shards import COMPRESSIONS
    from roofseg.tiler.tile import TileParams

    try:
        band_tuple = parse_bands(bands)
        step = stride or stride_for(tile_size, overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if step > tile_size:
        raise click.BadParameter(f"stride {step} is larger than the tile size {tile_size}: pixels would be missed", param_hint="--stride")
    params = TileParams(size=tile_size, stride=step, max_nodata=max_nodata, keep_empty=keep_empty, bands=band_tuple,
                        shard_bytes=int(shard_mb * 1e6), compression=COMPRESSIONS[compress], val=val_fraction,
                        test=test_fraction, split_block=split_block, seed=seed, labels_crs=labels_crs,
                        ignore_non_polygons=ignore_non_polygons)
    manifest = run_tile(list(inputs), out_dir, params, labels=list(labels), prefer=prefer, split_by=split_by,
                        workers=workers, overwrite=overwrite, progress=not quiet)
    for name, s in manifest["splits"].items():
        click.echo(f"{name}: {s['tiles']} tiles in {len(s['shards'])} shards, roof fraction {s['roof_fraction']:.3f}")
    click.echo(f"manifest: {out_dir.rstrip('/')}/manifest.json")


def augment_options(f):
    """The ranges of the random augmentation, shared by the commands that augment."""
    for opt in reversed([
        click.option("--no-flip", is_flag=True, help="Do not mirror tiles left-right at random."),
        click.option("--max-angle", default=30.0, type=click.FloatRange(0, 180), help="Rotations are drawn from ±this many degrees."),
        click.option("--brightness", default=0.1, type=click.FloatRange(0, 1), help="Brightness shifts are drawn from ±this (images in [0, 1])."),
        click.option("--contrast", default=0.2, type=click.FloatRange(0, 1), help="Contrast factors are drawn from 1 ± this."),
    ]):
        f = opt(f)
    return f


def augment_config(no_flip: bool, max_angle: float, brightness: float, contrast: float):
    from roofseg.pipeline.augment import AugmentConfig

    return AugmentConfig(flip=not no_flip, max_angle=max_angle, brightness=brightness, contrast=contrast)


@cli.command("augment-preview")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_png", type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", help="Which tiles to draw.")
@click.option("--count", default=6, type=click.IntRange(1, 64), help="How many tiles.")
@click.option("--seed", default=0, type=int, help="Seed of the augmentation drawn.")
@augment_options
def augment_preview(manifest, out_png, split, count, seed, no_flip, max_angle, brightness, contrast) -> None:
    """Draw tiles of MANIFEST before and after augmentation, masks outlined, into OUT_PNG.

    The outline is the mask; if it still follows the roofs in the augmented column, image and
    mask were transformed together.
    """
    from roofseg.pipeline.preview import write_preview

    write_preview(manifest, out_png, count=count, split=split, seed=seed,
                  config=augment_config(no_flip, max_angle, brightness, contrast))
    click.echo(f"preview: {out_png}")


@cli.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder: config.json, best.keras, history.csv, curves.png, samples.png, logs/.")
@click.option("--encoder-weights", default="imagenet", help="imagenet (the Keras cache file resnet34_imagenet_1000_no_top.h5 under $KERAS_HOME/models or ~/.keras/models), none (random), or PATH to an .h5 of encoder weights.")
@click.option("--freeze-encoder-epochs", default=0, type=click.IntRange(0), help="Train the decoder alone for this many epochs first, then everything.")
@click.option("--loss", type=click.Choice(["dice", "bce", "bce_dice"]), default="dice", help="Loss function.")
@click.option("--lr", "learning_rate", default=1e-4, type=click.FloatRange(0, min_open=True), help="Adam learning rate.")
@click.option("--epochs", default=50, type=click.IntRange(1), help="Most epochs to train (early stopping may end sooner).")
@click.option("--batch", "batch_size", default=16, type=click.IntRange(1), help="Tiles per batch on each replica (global batch = this x replicas).")
@click.option("--tile-size", default=None, type=click.IntRange(32), help="Model input size in px, a multiple of 32; tiles of another size are resized. Default: the manifest's tile size.")
@click.option("--steps-per-epoch", default=None, type=click.IntRange(1), help="Batches per epoch. Default: one pass over the training split.")
@click.option("--validation-steps", default=None, type=click.IntRange(1), help="Validation batches per epoch. Default: the whole validation split.")
@click.option("--strategy", type=click.Choice(["mirrored", "default", "multiworker"]), default="mirrored", help="mirrored: all visible GPUs of this machine; default: one device; multiworker: MultiWorkerMirroredStrategy set up by TF_CONFIG.")
@click.option("--devices", default=None, help="With mirrored: devices to use, e.g. '/gpu:0,/gpu:1'. Default: all visible GPUs, else the CPU.")
@click.option("--mixed-precision", is_flag=True, help="mixed_float16 on GPUs (the output stays float32); ignored without a GPU.")
@click.option("--augment-on", type=click.Choice(["device", "host"]), default="device", help="device: augment inside the training step (on the GPU, each replica); host: in the tf.data graph.")
@augment_options
@click.option("--lr-patience", default=5, type=click.IntRange(1), help="ReduceLROnPlateau: epochs without val_loss improvement before the rate is cut by 5.")
@click.option("--min-lr", default=1e-6, type=click.FloatRange(0), help="ReduceLROnPlateau: lowest learning rate.")
@click.option("--patience", default=10, type=click.IntRange(1), help="EarlyStopping: epochs without val_loss improvement before stopping (best weights restored).")
@click.option("--shuffle-buffer", default=256, type=click.IntRange(1), help="Tiles in the shuffle buffer.")
@click.option("--seed", default=0, type=int, help="Seed of shuffling and augmentation.")
@click.option("--quiet", is_flag=True, help="No Keras progress bar (one line per epoch).")
def train(manifest, out_dir, encoder_weights, freeze_encoder_epochs, loss, learning_rate, epochs, batch_size, tile_size,
          steps_per_epoch, validation_steps, strategy, devices, mixed_precision, augment_on, no_flip, max_angle,
          brightness, contrast, lr_patience, min_lr, patience, shuffle_buffer, seed, quiet) -> None:
    """Train the ResNet34 U-Net on the train/val splits of MANIFEST.

    Adam, Dice loss (default), IoU and F1 metrics; the best model by val_loss is kept as best.keras;
    the learning rate drops on plateaus; training stops early when val_loss stalls. A killed run
    started again with the same OUTPUT resumes from its last finished epoch.
    """
    from roofseg.training.train import TrainConfig, train as run_train

    cfg = TrainConfig(manifest=manifest, out_dir=out_dir, encoder_weights=encoder_weights,
                      freeze_encoder_epochs=freeze_encoder_epochs, loss=loss, learning_rate=learning_rate, epochs=epochs,
                      batch_size=batch_size, tile_size=tile_size, steps_per_epoch=steps_per_epoch,
                      validation_steps=validation_steps, strategy=strategy,
                      devices=devices.split(",") if devices else None, mixed_precision=mixed_precision,
                      augment_on=augment_on, augment=augment_config(no_flip, max_angle, brightness, contrast),
                      lr_patience=lr_patience, min_lr=min_lr, early_stopping_patience=patience,
                      shuffle_buffer=shuffle_buffer, seed=seed)
    summary = run_train(cfg, verbose=2 if quiet else "auto")
    if summary:
        click.echo(f"best epoch {summary['best_epoch']}: val_loss {summary['best_val_loss']:.4f}, "
                   f"val IoU {summary['best_val_iou']:.4f}")
        click.echo(f"model: {summary['model']}")
        click.echo(f"curves: {Path(out_dir) / 'curves.png'}, samples: {Path(out_dir) / 'samples.png'}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", help="Which split to score.")
@click.option("--batch", "batch_size", default=16, type=click.IntRange(1), help="Tiles per batch.")
@click.option("--tile-size", default=None, type=click.IntRange(32), help="Resize tiles to this size first. Default: as stored.")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write the scores to this JSON file.")
def evaluate(model, manifest, split, batch_size, tile_size, json_out) -> None:
    """Score MODEL on one split of MANIFEST: loss, IoU, F1, precision, recall, pixel counts.

    Scores are over every pixel of the split at threshold 0.5 (counts summed, then divided).
    """
    from roofseg.atomic import write_json
    from roofseg.training.evaluate import evaluate as run_evaluate

    scores = run_evaluate(model, manifest, split, batch_size, tile_size)
    name = SPLIT_NAMES[split]
    click.echo(f"{name} Loss: {scores['loss']:.4f} - {name} IoU: {scores['iou']:.4f}")
    click.echo(f"F1 {scores['f1']:.4f}  precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
               f"({scores['tiles']} tiles of the {split} split; pixels {scores['pixels']})")
    if json_out:
        write_json(json_out, scores)
        click.echo(f"scores: {json_out}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("scene", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--tile", default=256, type=click.IntRange(32), help="Window size in px (a multiple of 32).")
@click.option("--overlap", default=64, type=click.IntRange(0), help="Pixels shared by neighbouring windows, blended with a raised-cosine weight.")
@click.option("--batch", default=8, type=click.IntRange(1), help="Windows predicted at once.")
@click.option("--bands", default=None, help="Bands to use, 1-based, e.g. '3,2,1' or '1'. Default: 1,2,3, or the only band replicated to RGB.")
@click.option("--dtype", type=click.Choice(["uint8", "float32"]), default="uint8", help="Output probability as 0-255 or as 0.0-1.0.")
@click.option("--threshold", default=None, type=click.FloatRange(0, 1), help="Also write OUTPUT_binary.tif, 1 where the probability is at least this.")
@click.option("--vector", default=None, type=click.Path(dir_okay=False), help="Also write the thresholded roofs as polygons (.geojson, .gpkg, .shp, .fgb) in the scene's CRS (threshold 0.5 unless --threshold).")
@click.option("--min-area", default=5.0, type=click.FloatRange(0), help="Polygons smaller than this many m² are dropped from --vector.")
@click.option("--tta", is_flag=True, help="Average the predictions of the four flips of each window (4x slower).")
@click.option("--cog", is_flag=True, help="Write Cloud-Optimised GeoTIFFs with overviews.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(model, scene, output, tile, overlap, batch, bands, dtype, threshold, vector, min_area, tta, cog, overwrite, quiet) -> None:
    """Predict roofs over the whole SCENE with MODEL into OUTPUT, a GeoTIFF on the scene's grid.

    The scene is read window by window with the tiler's reader (same band choice, one-band
    replication and percentile stretch); overlapping windows are blended so no seam shows, edge
    windows are reflect-padded and cropped. OUTPUT keeps the scene's CRS, transform and size, is
    tiled and DEFLATE-compressed, and marks the scene's nodata in its mask band.
    """
    from roofseg.prediction.predict import PredictOptions, check_outputs, predict_scene
    from roofseg.prediction.vectorize import DRIVERS, write_polygons
    from roofseg.raster.scene import parse_bands
    from roofseg.training.model import load_model

    try:
        band_tuple = parse_bands(bands)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bands") from None
    if overlap >= tile:
        raise click.BadParameter(f"must be smaller than --tile ({tile})", param_hint="--overlap")
    if vector:
        if Path(vector).suffix.lower() not in DRIVERS:
            raise click.BadParameter(f"use one of {', '.join(DRIVERS)}", param_hint="--vector")
        check_outputs([Path(vector)], [scene, model], overwrite)
        threshold = 0.5 if threshold is None else threshold
    check_outputs([Path(output)], [scene, model], overwrite)  # before the model's slow loading
    net = load_model(model, compile=False)
    options = PredictOptions(tile=tile, overlap=overlap, batch=batch, dtype=dtype, threshold=threshold, tta=tta, cog=cog, bands=band_tuple)
    result = predict_scene(net, scene, output, options, overwrite=overwrite, progress=not quiet)
    click.echo(f"prediction: {result['prediction']} ({result['width']}x{result['height']} px, {result['windows']} windows)")
    if result["binary"]:
        click.echo(f"binary mask: {result['binary']}")
    if vector:
        n = write_polygons(result["binary"], vector, min_area)
        click.echo(f"footprints: {vector} ({n} polygons of at least {min_area:g} m²)")


@cli.command("evaluate-scene")
@click.argument("prediction", type=click.Path(exists=True, dir_okay=False))
@click.argument("labels", type=click.Path(exists=True, dir_okay=False))
@click.option("--threshold", default=0.5, type=click.FloatRange(0, 1), help="Probability from which a pixel is roof.")
@click.option("--iou", "iou_threshold", default=0.5, type=click.FloatRange(0, 1, min_open=True), help="Object match: a predicted polygon matches a footprint at this IoU or above (SpaceNet: 0.5).")
@click.option("--min-area", default=5.0, type=click.FloatRange(0), help="Predicted polygons smaller than this many m² are ignored for object scores.")
@click.option("--labels-crs", default=None, help="CRS of vector labels whose file states none or a wrong one, e.g. EPSG:3857.")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write the scores to this JSON file.")
def evaluate_scene(prediction, labels, threshold, iou_threshold, min_area, labels_crs, json_out) -> None:
    """Score a PREDICTION raster against LABELS (a mask raster or vector footprints).

    PREDICTION is a probability raster (uint8 0-255 or float 0-1) or a 0/1 mask, as roofseg predict
    writes them. Pixel IoU, F1, precision and recall over the prediction's valid pixels; with vector
    footprints also object precision, recall and F1 at IoU >= 0.5 (the SpaceNet metric), the
    footprints clipped to the raster's extent and valid pixels. Areas are ground areas in m².
    """
    from roofseg.atomic import write_json
    from roofseg.prediction.score import evaluate_scene as run

    scores = run(prediction, labels, threshold, iou_threshold, min_area, labels_crs)
    px = scores["pixel"]
    click.echo(f"pixels: IoU {px['iou']:.4f}  F1 {px['f1']:.4f}  precision {px['precision']:.4f}  recall {px['recall']:.4f}")
    if "objects" in scores:
        ob = scores["objects"]
        click.echo(f"objects (IoU >= {iou_threshold:g}): F1 {ob['f1']:.4f}  precision {ob['precision']:.4f}  "
                   f"recall {ob['recall']:.4f}  ({ob['matched']} matched of {ob['predicted']} predicted, {ob['true']} true)")
    if json_out:
        write_json(json_out, scores)
        click.echo(f"scores: {json_out}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected failure ends in one line on stderr and exit 1.

    This is the one place errors become messages: usage errors (click's), RoofsegError and the
    I/O libraries' own errors (see :func:`roofseg.errors.failure_line`); anything else is a bug
    and keeps its traceback.
    """
    try:
        cli.main(args=argv, prog_name="roofseg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: the same one-line form and exit status
        click.echo(f"roofseg: error: {exc.format_message()}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        line = failure_line(exc)
        if line is None:
            raise
        click.echo(f"roofseg: error: {line}", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
