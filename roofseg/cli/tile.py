"""``roofseg tile``: scenes and labels into TFRecord shards."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from roofseg.cli.options import (
    CONTEXT,
    FiniteRange,
    bands_opt,
    fraction,
    labels_crs_opt,
    overwrite_opt,
    parsed_bands,
    parsed_gsds,
    quiet_opt,
    resolved_inputs,
    runner_options,
    seed_opt,
    stac_choice,
    stac_options,
    tile_size_opt,
    xyz_options,
)
from roofseg.contracts.manifest import Manifest
from roofseg.contracts.targets import CONTACT_KINDS, CONTACT_M, CONTACT_PX

if TYPE_CHECKING:
    from roofseg.tiler.tile import TileParams


def border_band(contact_m: float | None, contact_px: int | None) -> dict:
    """TileParams' border band from --contact-m and --contact-px (neither: the library's default)."""
    if contact_m is not None and contact_px is not None:
        raise click.UsageError("give the border band in metres (--contact-m) or in px (--contact-px), not both")
    if contact_px is not None:
        return {"contact_px": contact_px, "contact_m": None}
    if contact_m is not None:
        return {"contact_px": None, "contact_m": contact_m}  # asked in metres: a scene without a GSD is refused
    return {}


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the shards and manifest.json.",
)
@click.option(
    "--labels",
    multiple=True,
    type=click.Path(),
    help="Labels of each scene, in order (mask raster, vector file, or a review's NAME.review.sqlite: accepted "
    "buildings are roof, rejected ones ground, the rest unknown and left out of the loss); repeat once per scene. "
    "Default: found beside each scene (see above).",
)
@click.option(
    "--prefer",
    type=click.Choice(["mask", "vector"]),
    default="vector",
    help="Which labels to take when both a mask and footprints lie beside a scene. vector: footprints keep touching "
    "buildings apart, which the border targets need (a mask joins them into one region).",
)
@labels_crs_opt
@click.option(
    "--ignore-non-polygons",
    is_flag=True,
    help="Take a labels file holding only lines or points as an area without buildings (default: refuse it).",
)
@tile_size_opt(default=256)
@click.option(
    "--stride",
    default=None,
    type=click.IntRange(1),
    help="Pixels between tile starts. Default: tile size minus --overlap.",
)
@click.option(
    "--overlap",
    default=0,
    type=click.IntRange(0),
    help="Pixels shared by neighbouring tiles (ignored when --stride is given).",
)
@bands_opt
@click.option(
    "--gsd",
    default=None,
    callback=lambda ctx, param, value: parsed_gsds(value),
    help="Resample every scene (and its labels) to this ground pixel size in metres first, window by window (area "
    "average when coarsening, bilinear when refining). Several, comma-separated (0.15,0.3): each scene is tiled "
    "once at each, so one model learns them all (its card records the range); split blocks cover the same ground "
    "at every GSD. Default: each scene's own.",
)
@click.option(
    "--contact-m",
    default=None,
    type=FiniteRange(1e-3, 100.0),
    help=f"Also store each tile's border target, this many metres of ground wide, drawn in each scene's own pixels "
    "(at least 1 px), from which the model learns to split touching buildings (footprints; a mask's separate "
    "regions); scenes of different GSDs, and the zooms training draws, teach one band. Given, a scene without a "
    f"ground pixel size is refused (declare one with --pixel-size). Default: {CONTACT_M:g} m, and {CONTACT_PX} px "
    "on scenes without a ground pixel size.",
)
@click.option(
    "--contact-px",
    default=None,
    type=click.IntRange(0),
    help="The border target this many px wide on every scene, instead of metres. 0: roof only.",
)
@click.option(
    "--contact-kind",
    type=click.Choice(CONTACT_KINDS),
    default=CONTACT_KINDS[0],
    help="outline: every building's edge band plus where buildings meet (cores stay apart: what splits dense "
    "blocks); between: only where two buildings meet (the targets of roofseg 0.1's base); distance: the "
    "outline band graded by the distance to the building's edge (1 there, 0 at twice the band inside); "
    "relative: distance, but a building narrower than that falls to 0 at its own middle.",
)
@click.option(
    "--pixel-size",
    type=FiniteRange(1e-3, 1e3),
    default=None,
    help="Metres per pixel of images without georeference (PNG, JPG): declared so that they have a ground "
    "resolution. Georeferenced scenes keep their own.",
)
@click.option(
    "--nodata",
    type=FiniteRange(),
    default=None,
    help="The no-data value of images without georeference (PNG, JPG), which cannot state one: a pixel with every "
    "band at it is no data (255: pure white, as in the Massachusetts tiles). Georeferenced scenes keep their own.",
)
@click.option(
    "--max-nodata",
    default=0.5,
    type=fraction(),
    help="Skip tiles with more than this fraction of nodata (padding outside the scene counts as nodata).",
)
@click.option(
    "--keep-empty",
    default=1.0,
    type=fraction(),
    help="Fraction of training tiles without any roof to keep (val and test keep all).",
)
@click.option(
    "--val", "val_fraction", default=0.15, type=fraction(0, 0.9), help="Fraction of scenes (or blocks) for validation."
)
@click.option(
    "--test", "test_fraction", default=0.15, type=fraction(0, 0.9), help="Fraction of scenes (or blocks) for testing."
)
@click.option(
    "--split-by",
    type=click.Choice(["auto", "scene", "block"]),
    default="auto",
    help="Split whole scenes, or square blocks inside each scene. auto: by scene from 3 scenes on, else by block.",
)
@click.option(
    "--split-block",
    default=512,
    type=click.IntRange(16),
    help="Block size in pixels for --split-by block; tiles straddling two splits are dropped.",
)
@click.option(
    "--shard-mb",
    default=100.0,
    type=FiniteRange(0.001),
    help="Approximate size of a shard in MB (uncompressed records).",
)
@click.option("--compress", type=click.Choice(["none", "gzip"]), default="none", help="TFRecord compression.")
@click.option("--workers", default=1, type=click.IntRange(1), help="Scenes tiled in parallel (processes).")
@seed_opt
@overwrite_opt
@stac_options
@xyz_options
@runner_options(local="this process, and --workers processes")
@quiet_opt
def tile(
    inputs,
    out_dir,
    labels,
    prefer,
    labels_crs,
    ignore_non_polygons,
    tile_size,
    stride,
    overlap,
    bands,
    gsd,
    contact_m,
    contact_px,
    contact_kind,
    pixel_size,
    nodata,
    max_nodata,
    keep_empty,
    val_fraction,
    test_fraction,
    split_by,
    split_block,
    shard_mb,
    compress,
    workers,
    seed,
    overwrite,
    stac_asset,
    stac_labels,
    bbox,
    zoom,
    runner,
    beam_options,
    quiet,
) -> None:
    """Cut scenes and their labels into tiles written to TFRecord shards.

    INPUTS are GeoTIFF scenes, folders of scenes, glob patterns ('scenes/*.tif', quoted), .txt lists
    with one 'IMAGE [LABELS]' per line, STAC Items, ItemCollections or Catalogs (JSON files or URLs;
    item ids become scene ids); or one folder holding images/ and masks/ (JPG/PNG/TIF of any size,
    matched by name), each pair resized alike to one tile (area average when shrinking, bilinear
    otherwise; a mask pixel is roof where at least half of it is). Any scene or labels path may be
    a URL (http(s)://, s3://, gs://) or a GDAL path (/vsicurl/...): read in range requests, never
    downloaded whole.

    Scenes are read window by window, never whole. Labels beside a scene NAME.tif (or NAME_image.tif)
    are NAME_mask.tif, NAME_labels*.geojson/.gpkg/.shp or NAME.geojson/.gpkg/.shp; footprints in another
    CRS are reprojected. Any non-uint8 imagery is stretched to uint8 by per-band 2-98 percentiles of a
    decimated read of the whole scene (uint8 is taken as it is).

    With --runner beam the same tiling runs as an Apache Beam pipeline whose elements are parts of
    scenes (a few rows of tiles each), so a huge scene spreads over many workers.

    Writes OUTPUT/{train,val,test}/*.tfrecord and OUTPUT/manifest.json (written last).
    """
    # here, not at the top: keeps --help fast
    from roofseg.tiler.run import tile as run_tile

    params = tile_params(
        tile_size, stride, overlap, bands, gsd, contact_m, contact_px, contact_kind, pixel_size, nodata, max_nodata,
        keep_empty, val_fraction, test_fraction, split_block, shard_mb, compress, seed, labels_crs,
        ignore_non_polygons,
    )  # fmt: skip
    manifest = run_tile(
        list(resolved_inputs(inputs, bbox, zoom)),
        out_dir,
        params,
        labels=list(labels),
        prefer=prefer,
        split_by=split_by,
        workers=workers,
        overwrite=overwrite,
        progress=not quiet,
        stac=stac_choice(stac_asset, stac_labels),
        runner=runner,
        beam_options=beam_options,
    )
    report(manifest, out_dir, val_fraction, test_fraction, split_block)


def tile_params(
    tile_size, stride, overlap, bands, gsd, contact_m, contact_px, contact_kind, pixel_size, nodata, max_nodata,
    keep_empty, val_fraction, test_fraction, split_block, shard_mb, compress, seed, labels_crs, ignore_non_polygons,
) -> TileParams:  # fmt: skip
    """The TileParams of tile's options (a stride that would skip pixels is refused as --stride's)."""
    # here, not at the top: keeps --help fast
    from roofseg.raster.windows import stride_for
    from roofseg.tiler.shards import COMPRESSIONS
    from roofseg.tiler.tile import TileParams

    try:
        step = stride or stride_for(tile_size, overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--overlap") from None
    if step > tile_size:
        raise click.BadParameter(
            f"stride {step} is larger than the tile size {tile_size}: pixels would be missed", param_hint="--stride"
        )
    return TileParams(
        size=tile_size,
        stride=step,
        max_nodata=max_nodata,
        keep_empty=keep_empty,
        bands=parsed_bands(bands),
        shard_bytes=int(shard_mb * 1e6),
        compression=COMPRESSIONS[compress],
        val=val_fraction,
        test=test_fraction,
        split_block=split_block,
        seed=seed,
        labels_crs=labels_crs,
        ignore_non_polygons=ignore_non_polygons,
        gsd=gsd[0] if len(gsd) == 1 else None,
        gsds=gsd if len(gsd) > 1 else (),
        **border_band(contact_m, contact_px),
        contact_kind=contact_kind,
        pixel_size=pixel_size,
        nodata=nodata,
    )


def report(manifest: Manifest, out_dir: str, val_fraction: float, test_fraction: float, split_block: int) -> None:
    """Each split's tiles, the manifest's path, and warnings on the splits and on ground shared across them."""
    # here, not at the top: keeps --help fast
    from roofseg.tiler.heldout import shared_ground
    from roofseg.tiler.split import split_warnings

    for name, s in manifest.splits.items():
        click.echo(f"{name}: {s.tiles} tiles in {len(s.shards)} shards, roof fraction {s.roof_fraction:.3f}")
    click.echo(f"manifest: {out_dir.rstrip('/')}/manifest.json")
    for line in split_warnings(manifest, {"val": val_fraction, "test": test_fraction}, split_block):
        click.echo(f"roofseg: warning: {line}", err=True)
    for line in shared_ground(manifest):
        click.echo(f"roofseg: warning: {line}", err=True)
