"""``roofseg augment-preview``: tiles before and after augmentation, side by side."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import CONTEXT, augment_config, augment_options, quiet_opt, seed_opt


@click.command("augment-preview", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_png", type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", help="Which tiles to draw.")
@click.option("--count", default=6, type=click.IntRange(1, 64), help="How many tiles.")
@seed_opt
@augment_options
@quiet_opt
def augment_preview(manifest, out_png, split, count, seed, quiet, **augment) -> None:
    """Draw tiles of MANIFEST before and after augmentation, masks outlined, into OUT_PNG.

    The outline is the mask; if it still follows the roofs in the augmented column, image and
    mask were transformed together.
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import check_outputs
    from roofseg.pipeline.preview import write_preview

    check_outputs([Path(out_png)], [manifest], overwrite=True)  # a picture replaces a picture, never its input

    write_preview(
        manifest,
        out_png,
        count=count,
        split=split,
        seed=seed,
        config=augment_config(**augment),
        progress=not quiet,
    )
    click.echo(f"preview: {out_png}")
