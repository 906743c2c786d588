"""``roofseg evaluate-scene``: a prediction raster scored against labels."""

from __future__ import annotations

import click

from roofseg.cli.options import CONTEXT, FiniteRange, json_opt, labels_crs_opt, quiet_opt


@click.command("evaluate-scene", context_settings=CONTEXT)
@click.argument("prediction", type=click.Path(exists=True, dir_okay=False))
@click.argument("labels", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--threshold",
    default=None,
    type=FiniteRange(0, 1),
    help="Probability from which a pixel is roof. Default: the one the raster's footprints were made with (its "
    "tags, where predict --vector wrote them; how buildings were seeded too), else 0.5.",
)
@click.option(
    "--iou",
    "iou_threshold",
    default=0.5,
    type=FiniteRange(0, 1, min_open=True),
    help="Object match: a predicted polygon matches a footprint at this IoU or above (SpaceNet: 0.5).",
)
@click.option(
    "--min-area",
    default=None,
    type=FiniteRange(0),
    help="Predicted polygons smaller than this many m² are left out of the object scores. Default: as the "
    "raster's footprints were made (its tags), else 5. True footprints under 2 m² (slivers the raster's edge or "
    "nodata cuts off) are never counted.",
)
@click.option(
    "--regularize/--no-regularize",
    default=None,
    help="Regular outlines for the predicted polygons, as predict --regularize makes them. Default: as the "
    "raster's footprints were made (its tags), else off.",
)
@click.option(
    "--separate/--no-separate",
    default=True,
    help="Split touching buildings along the prediction's contact band (when it has one) before matching objects, as "
    "predict --vector does.",
)
@labels_crs_opt
@json_opt
@click.option(
    "--picture",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also draw hits, false alarms and misses in three colours, the true footprints outlined, into this PNG "
    "(decimated: at most 2048 px a side).",
)
@click.option(
    "--scene", default=None, type=click.Path(dir_okay=False), help="The imagery to draw --picture over (default: grey)."
)
@click.option(
    "--pr-curve",
    default=None,
    type=click.Path(dir_okay=False),
    help="With vector footprints: draw the precision-recall curve of the buildings ranked by confidence into this PNG.",
)
@quiet_opt
def evaluate_scene(
    prediction,
    labels,
    threshold,
    iou_threshold,
    min_area,
    regularize,
    separate,
    labels_crs,
    json_out,
    picture,
    scene,
    pr_curve,
    quiet,
) -> None:
    """Score a PREDICTION raster against LABELS (a mask raster or vector footprints).

    PREDICTION is a probability raster (uint8 0-255 or float 0-1) or a 0/1 mask, as roofseg predict
    writes them. Pixel IoU, F1, precision and recall over the prediction's valid pixels; with vector
    footprints also object precision, recall and F1 at IoU >= 0.5 (the SpaceNet metric), the
    footprints clipped to the raster's extent and valid pixels, and their average precision (AP)
    over the buildings ranked by confidence (the mean roof probability of each). Areas are ground
    areas in m².
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import write_json
    from roofseg.prediction.scoring.score import evaluate_scene as run

    scores = run(
        prediction,
        labels,
        threshold,
        iou_threshold,
        min_area,
        labels_crs,
        separate,
        progress=not quiet,
        regularize=regularize,
    )
    threshold = scores["threshold"]
    px = scores["pixel"]
    click.echo(
        f"pixels: IoU {px['iou']:.4f}  F1 {px['f1']:.4f}  precision {px['precision']:.4f}  recall {px['recall']:.4f}"
    )
    if "objects" in scores:
        ob = scores["objects"]
        click.echo(
            f"objects (IoU >= {iou_threshold:g}): F1 {ob['f1']:.4f}  precision {ob['precision']:.4f}  "
            f"recall {ob['recall']:.4f}  ({ob['matched']} matched of {ob['predicted']} predicted, {ob['true']} true)"
        )
        click.echo(f"average precision (IoU >= {iou_threshold:g}, by confidence): {ob['average_precision']:.4f}")
        if pr_curve:
            # here, not at the top: keeps --help fast
            from roofseg.prediction.scoring.pictures import pr_curve_picture

            pr_curve_picture(ob["curve"], ob["average_precision"], pr_curve)
            click.echo(f"precision-recall curve: {pr_curve}")
    elif pr_curve:
        raise click.BadParameter(
            "needs vector footprints as LABELS (objects are scored against them)", param_hint="--pr-curve"
        )
    if picture:
        # here, not at the top: keeps --help fast
        from roofseg.prediction.scoring.pictures import error_picture

        error_picture(prediction, labels, picture, threshold, scene, labels_crs)
        click.echo(f"picture: {picture}")
    if json_out:
        write_json(json_out, scores)
        click.echo(f"scores: {json_out}")
