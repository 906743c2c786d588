"""``roofseg tune``: the post-processing of a model chosen on labelled scenes of a new area."""

from __future__ import annotations

import click

from roofseg.cli.options import CONTEXT, ModelSource, json_opt, labels_crs_opt, model_output_opt, quiet_opt


@click.command(context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("inputs", nargs=-1)
@model_output_opt("tuned model: MODEL with the chosen post-processing in its card")
@click.option(
    "--labels",
    multiple=True,
    type=click.Path(),
    help="Labels of each scene, in order (as roofseg tile takes them). Default: found beside each scene.",
)
@labels_crs_opt
@click.option(
    "--objective",
    type=click.Choice(["object-f1", "pixel-iou"]),
    default=None,
    help="What the choice maximises, pooled over the scenes: object F1 at IoU >= 0.5 (one polygon per building), or "
    "pixel IoU (the threshold alone). Default: object F1 where every scene has footprints, pixel IoU where a mask "
    "raster labels one (a mask joins touching buildings into one region, so object F1 would reward not splitting "
    "them).",
)
@click.option(
    "--match-colours/--no-match-colours",
    default=None,
    help="Match each scene's band histograms to the training tiles' (the reference in MODEL's card) before "
    "predicting, as predict --match-colours does; the tuned model then has predict match them by default. "
    "Default: as predict would (a model adapted with --match-colours: on).",
)
@click.option(
    "--reading-only",
    is_flag=True,
    help="Keep MODEL's post-processing (its tuned choice, else the defaults) and choose only how scenes coarser "
    "than the model's GSD are read: at their own GSD or resampled to the model's.",
)
@click.option(
    "--held-out",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="MANIFEST",
    help="Tune on the validation blocks (or whole validation scenes) of this tile manifest that no training tile "
    "came from, instead of INPUTS: a model's own training places flatter borders it cannot see elsewhere. Blocks "
    "another scene of the manifest trained on (the same place at another zoom) and mask-labelled scenes are left out.",
)
@json_opt
@quiet_opt
def tune(
    model, inputs, out, labels, labels_crs, objective, match_colours, reading_only, held_out, json_out, quiet
) -> None:
    """Choose MODEL's post-processing on labelled scenes of your area; write it into a copy, OUT.

    INPUTS are scenes with labels, named as for roofseg tile (labels beside each scene, --labels,
    .txt lists, STAC). Each scene is predicted as predict reads it (inside the model's trained GSD
    range at its own GSD), and a scene coarser than the model's own GSD once more at that GSD;
    the threshold, the seeding of touching buildings (a contact cut, or the depth of the peaks
    that seed them), the smallest building area and regular outlines on/off are then searched on
    the kept probabilities of each reading. roofseg predict with OUT uses the chosen values, and
    reads coarser scenes at the model's GSD where that scored better, as its defaults (options
    given on its command line win: --gsd, --native).
    """
    if not inputs and not held_out:
        raise click.UsageError("give labelled scenes (INPUTS) or --held-out MANIFEST")
    # here, not at the top: keeps --help fast
    from roofseg.atomic import write_json
    from roofseg.contracts.card import MIN_AREA
    from roofseg.prediction.scoring.tune import MIN_AREAS, SMALL_SHARE
    from roofseg.prediction.scoring.tune import tune as run

    table = run(
        model,
        list(inputs),
        out,
        list(labels),
        objective,
        progress=not quiet,
        labels_crs=labels_crs,
        match_colours=match_colours,
        reading_only=reading_only,
        held_out=held_out,
    )
    chosen, default = table["chosen"], table["default"]

    def setting(p: dict) -> str:
        cut = "" if p["contact_cut"] is None else f", contact cut {p['contact_cut']:g}"
        if p.get("seed_depth") is not None:
            cut = f", buildings seeded at peaks {p['seed_depth']:g} deep"
        outlines = "on" if p["regularize"] else "off"
        return f"threshold {p['threshold']:g}{cut}, min area {p['min_area']:g} m², regular outlines {outlines}"

    click.echo(f"{'kept' if reading_only else 'defaults'}: {setting(default)}")
    if not reading_only:
        click.echo(f"chosen:   {setting(chosen)}  (by {table['objective']}, pooled)")
    limit = table.get("min_area_limit")
    if limit is not None and limit < max(MIN_AREAS):
        click.echo(
            f"min area: above {MIN_AREA:g} m² only up to {limit:.3g} m² "
            f"({SMALL_SHARE:.0%} of the labelled buildings are smaller)"
        )
    if len(table["readings"]) > 1:
        own, cap = table["readings"]["None"], table["max_gsd"]
        coarse = next(v for k, v in table["readings"].items() if k != "None")
        said = f"scenes coarser than {cap:g} m read at {cap:g} m" if cap else "scenes read at their own GSD"
        key = "object_f1" if table["objective"] == "object-f1" else "pixel_iou"
        click.echo(f"reading:  {said} (at best: {own[key]:.3f} at their own, {coarse[key]:.3f} at the model's)")
    if table.get("reading_kept"):
        cap = table["max_gsd"]
        click.echo(
            f"reading:  kept as chosen on {', '.join(table['reading_kept'])} (scenes coarser than {cap:g} m read at "
            f"{cap:g} m): no scene here is coarser than the model's GSD"
        )
    rows = [(sid, s) for sid, s in table["scenes"].items()] + [("pooled", table["pooled"])]
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'scene':<{width}}  {'pixel IoU':>19}  {'object F1':>19}  {'buildings (matched/predicted/true)':>34}")
    click.echo(
        f"{'':<{width}}  {'default':>9} {'chosen':>9}  {'default':>9} {'chosen':>9}  {'default':>16} {'chosen':>17}"
    )
    for name, s in rows:
        d, c = s["default"], s["chosen"]
        click.echo(
            f"{name:<{width}}  {d['pixel_iou']:>9.3f} {c['pixel_iou']:>9.3f}  {d['object_f1']:>9.3f} "
            f"{c['object_f1']:>9.3f}  "
            f"{d['matched']:>5}/{d['predicted']:>4}/{d['true']:>4} {c['matched']:>6}/{c['predicted']:>4}/{c['true']:>4}"
        )
    click.echo(f"tuned model: {out}")
    if json_out:
        write_json(json_out, table)
        click.echo(f"scores: {json_out}")
