"""``roofseg adapt``: a model adapted to a new city's scenes without labels."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import (
    CONTEXT,
    FiniteRange,
    ModelSource,
    bands_opt,
    model_output_opt,
    overwrite_opt,
    parsed_bands,
    quiet_opt,
    seed_opt,
    stac_choice,
    stac_options,
)


@click.command(context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("scenes", nargs=-1, required=True)
@model_output_opt("adapted model")
@click.option(
    "--method",
    default="bn",
    show_default=True,
    help="bn: re-estimate the batch-norm statistics on the scenes (forward passes only); self-train: train on the "
    "model's own confident predictions; bn,self-train: both, in that order.",
)
@click.option(
    "--tiles", "tiles_per_scene", default=64, show_default=True, type=click.IntRange(1), help="Windows per scene."
)
@click.option(
    "--steps", default=150, show_default=True, type=click.IntRange(1), help="self-train: training steps (bounded)."
)
@click.option(
    "--low",
    default=0.1,
    show_default=True,
    type=FiniteRange(0, 1),
    help="self-train: pixels below this probability are taken as ground.",
)
@click.option(
    "--high",
    default=0.9,
    show_default=True,
    type=FiniteRange(0, 1),
    help="self-train: pixels above this probability are taken as roof; those in between are left out.",
)
@click.option("--lr", "learning_rate", default=1e-4, show_default=True, type=FiniteRange(0, min_open=True))
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1), help="Windows per batch.")
@click.option(
    "--match-colours/--no-match-colours",
    default=None,
    help="Match each scene's colours to the model's training tiles first. Default: as predict would for MODEL "
    "(as its tune or an earlier adapt chose; else not). The adapted model is then predicted alike.",
)
@bands_opt
@stac_options
@seed_opt
@overwrite_opt
@quiet_opt
def adapt(
    model,
    scenes,
    out,
    method,
    tiles_per_scene,
    steps,
    low,
    high,
    learning_rate,
    batch,
    match_colours,
    bands,
    stac_asset,
    stac_labels,
    seed,
    overwrite,
    quiet,
) -> None:
    """Adapt MODEL to SCENES of a new city that has no labels yet, into OUTPUT.

    SCENES are named as for predict: files, folders, glob patterns ('city/*.tif', quoted), .txt lists,
    URLs and STAC. The windows of all scenes count together (a city of 256 px chips is adapted on
    one window from each); a scene that gives none is said and left out.

    MODEL may be `base`, the model that ships with roofseg: `roofseg adapt base city/*.tif -o city.keras`
    goes from imagery alone to a model for that city. Scenes are read at the model's GSD where they
    lie outside the range it was trained on, as predict reads them. A killed self-training resumes
    from its last checkpoint when run again with the same OUTPUT. The new card records MODEL's
    SHA-256, the method, the scenes and the settings.
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import check_outputs
    from roofseg.prediction.adapt import AdaptConfig
    from roofseg.prediction.adapt import adapt as run
    from roofseg.scenes import scene_files

    paths = [path for _, path in scene_files(list(scenes), stac_choice(stac_asset, stac_labels))]
    check_outputs([Path(out)], [model, *paths], overwrite)
    cfg = AdaptConfig(
        methods=tuple(m.strip() for m in method.split(",") if m.strip()),
        tiles_per_scene=tiles_per_scene,
        batch=batch,
        steps=steps,
        low=low,
        high=high,
        learning_rate=learning_rate,
        match_colours=match_colours,
        seed=seed,
        bands=parsed_bands(bands),
    )
    done = run(model, paths, out, cfg, progress=not quiet)
    click.echo(f"adapted ({done.method}) on {len(done.scenes)} scenes, {done.windows} windows: {out}")
    if done.dropped_tuning:
        click.echo(
            "roofseg: MODEL's tuned post-processing was chosen before adaptation and is not carried over: "
            f"roofseg tune {out} SCENES -o TUNED.keras chooses the adapted model's"
        )
    if done.pseudo_labels is not None:
        p = done.pseudo_labels
        click.echo(
            f"self-training labels: {p['roof']:.1%} roof, {p['ground']:.1%} ground, {p['left_out']:.1%} left out"
        )
