"""``roofseg sample``: the built-in synthetic scene."""

from __future__ import annotations

import click

from roofseg.cli.options import CONTEXT, FiniteRange, quiet_opt, seed_opt


@click.command(context_settings=CONTEXT)
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--size", default=2048, type=click.IntRange(64), help="Width and height of the scene in pixels.")
@click.option("--pixel-size", default=0.3, type=FiniteRange(0.01, 100), help="Ground size of a pixel in metres.")
@click.option("--crs", default="EPSG:32633", help="Projected CRS of the scene (anything rasterio accepts).")
@seed_opt
@quiet_opt
def sample(out_dir: str, size: int, pixel_size: float, crs: str, seed: int, quiet: bool) -> None:
    """Write the built-in synthetic sample scene to OUT_DIR.

    Writes sample_image.tif (3-band uint8 GeoTIFF, nodata 0 along an irregular left border),
    sample_mask.tif (0/1 roofs on the same grid) and sample_labels.geojson (the roofs as polygons).
    """
    # here, not at the top: keeps --help fast
    from roofseg.sample import write_sample

    paths = write_sample(out_dir, size=size, pixel=pixel_size, crs=crs, seed=seed, progress=not quiet)
    for role, path in paths.items():
        click.echo(f"{role}: {path}")
