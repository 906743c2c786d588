"""``roofseg mosaic``: dense settlements pasted from the real roofs of labelled scenes."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import CONTEXT, FiniteRange, quiet_opt, seed_opt


@click.command(context_settings=CONTEXT)
@click.argument("scenes", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write to.")
@click.option("--count", default=8, type=click.IntRange(1), help="How many scenes to write.")
@click.option("--size", default=1024, type=click.IntRange(64), help="Width and height of each scene in pixels.")
@click.option("--pixel-size", default=0.15, type=FiniteRange(0.05, 1), help="Ground size of a pixel in metres.")
@seed_opt
@quiet_opt
def mosaic(
    scenes: tuple[str, ...], out_dir: str, count: int, size: int, pixel_size: float, seed: int, quiet: bool
) -> None:
    """Write dense settlements of small houses touching on all sides, each roof cut from SCENES.

    Each SCENE is an RGB GeoTIFF with building footprints beside it, found as `tile` finds them
    (NAME_labels*.geojson, ...). Writes densemosaic_blockK_image.tif and
    densemosaic_blockK_labels.geojson (one footprint per house) to OUT, for `tile` to cut with the
    rest: training scenes of a kind the labelled places hold few of (`make base` adds them).
    """
    # here, not at the top: keeps --help fast
    from roofseg.errors import RoofsegError
    from roofseg.tiler.inputs import find_labels
    from roofseg.tiler.mosaic import write_mosaics

    pairs = []
    for scene in scenes:
        labels = find_labels(Path(scene), "vector", "put the footprints there: mosaic reads them beside each scene")
        if Path(labels).suffix.lower() in (".tif", ".tiff"):
            raise RoofsegError(scene, f"has only a mask beside it ({Path(labels).name}): roofs are cut from footprints")
        pairs.append((Path(scene), Path(labels)))
    for path in write_mosaics(pairs, out_dir, count, size, pixel_size, seed, progress=not quiet):
        click.echo(f"mosaic: {path}")
