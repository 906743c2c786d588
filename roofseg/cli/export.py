"""``roofseg export``: a model as ONNX, for QGIS' Deepness plugin or any ONNX runtime."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import CONTEXT, ModelSource, overwrite_opt, tile_size_opt


@click.command(context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "--layout",
    type=click.Choice(["roofseg", "deepness"]),
    default="roofseg",
    help="roofseg: uint8 (n, h, w, 3) windows of any size in, scaled inside, roof and contact (n, h, w, 1) out, as "
    "roofseg's engines run it. deepness: float32 (n, 3, size, size) in [0, 1] in, (n, 1, size, size) heads out, "
    "roof first, with the QGIS Deepness plugin's metadata.",
)
@tile_size_opt
@overwrite_opt
def export(model, output, layout, tile_size, overwrite) -> None:
    """Write MODEL (a roofseg .keras) as ONNX to OUTPUT: any batch size, its card in the metadata
    (roofseg_card).

    For QGIS: `roofseg export RUN/best.keras roofs.onnx --layout deepness`, then load roofs.onnx in
    the Deepness plugin's panel, pick the imagery layer, and run: it reads the
    resolution (cm/px, from the model's GSD), tile size, overlap and threshold from the file.
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import check_outputs
    from roofseg.export import export as run

    if tile_size and layout != "deepness":
        raise click.BadParameter(
            "fixes the deepness layout's tile size; roofseg's layout takes any", param_hint="--tile-size"
        )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    check_outputs([Path(output)], [model], overwrite)  # as predict checks its outputs: exists, is the input, writable
    meta = run(model, output, layout, tile_size)
    click.echo(f"ONNX model: {output} ({layout} layout)")
    if layout == "deepness":
        at = (
            f"{meta['resolution']:g} cm/px"
            if "resolution" in meta
            else "no GSD in the model's card: set the resolution in Deepness"
        )
        click.echo(
            f"Deepness: {at}, tiles {meta['tile_size']} px, overlap {meta['tiles_overlap']}%, "
            f"threshold {meta['seg_thresh']:g}"
        )
