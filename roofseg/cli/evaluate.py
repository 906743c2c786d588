"""``roofseg evaluate``: a model's scores on one split of a manifest."""

from __future__ import annotations

import click

from roofseg.cli.options import CONTEXT, ModelSource, batch_opt, json_opt, quiet_opt, tile_size_opt

SPLIT_NAMES = {"train": "Training", "val": "Validation", "test": "Test"}


@click.command(context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", help="Which split to score.")
@batch_opt
@tile_size_opt
@click.option(
    "--match-colours",
    is_flag=True,
    help="Match each scene's tiles to the training tiles' colours (the reference in MODEL's card) first, as "
    "predict --match-colours matches a scene.",
)
@json_opt
@quiet_opt
def evaluate(model, manifest, split, batch_size, tile_size, match_colours, json_out, quiet) -> None:
    """Score MODEL on one split of MANIFEST: loss, IoU, F1, precision, recall, pixel counts.

    Scores are over every pixel of the split at threshold 0.5 (counts summed, then divided).
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import write_json
    from roofseg.training.evaluate import evaluate as run_evaluate

    scores = run_evaluate(
        model, manifest, split, batch_size, tile_size, progress=not quiet, match_colours=match_colours
    )
    name = SPLIT_NAMES[split]
    click.echo(f"{name} Loss: {scores['loss']:.4f} - {name} IoU: {scores['iou']:.4f}")
    rows = [
        ("F1", f"{scores['f1']:.4f}"),
        ("precision", f"{scores['precision']:.4f}"),
        ("recall", f"{scores['recall']:.4f}"),
        ("tiles", str(scores["tiles"])),
    ]
    for name, value in rows:
        click.echo(f"  {name:<10} {value:>8}")
    px = scores["pixels"]
    click.echo(f"  pixels: {px['tp']} roof found, {px['fp']} false alarms, {px['fn']} missed, {px['tn']} ground")
    if json_out:
        write_json(json_out, scores)
        click.echo(f"scores: {json_out}")
