"""Options and helpers shared by several commands (as rasterio's ``rio/options.py``)."""

from __future__ import annotations

import math

import click

#: click settings of every command
CONTEXT = {"show_default": True, "help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


class FiniteRange(click.FloatRange):
    """click's FloatRange that also refuses what is not a finite number (nan, inf): a comparison
    with nan is always false, so FloatRange lets it through to do harm downstream."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def fraction(lo: float = 0.0, hi: float = 1.0) -> click.FloatRange:
    return FiniteRange(lo, hi)


def parsed_bands(text: str | None) -> tuple[int, ...] | None:
    """``--bands`` as a tuple of 1-based band numbers, or a usage error."""
    # here, not at the top: keeps --help fast
    from roofseg.raster.scene import parse_bands

    try:
        return parse_bands(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bands") from None


def _tile_size(ctx, param, value: int | None) -> int | None:
    """--tile-size checked by the one rule (roofseg.contracts.sizes), said as a usage error."""
    if value is None:
        return None
    # here, not at the top: keeps --help fast
    from roofseg.contracts.sizes import check_tile_size
    from roofseg.errors import RoofsegError

    try:
        return check_tile_size(value)
    except RoofsegError as exc:
        raise click.BadParameter(exc.problem) from None


def tile_size_opt(f=None, *, default: int | None = None, aliases: tuple[str, ...] = ()):
    """--tile-size: the side of tiles and windows, with its one check and help text."""
    if f is None:
        return lambda g: tile_size_opt(g, default=default, aliases=aliases)
    return click.option(
        "--tile-size",
        *aliases,
        "tile_size",
        default=default,
        type=click.IntRange(32),
        callback=_tile_size,
        help="Side of tiles (and prediction windows) in px, a multiple of 32: the U-Net halves it "
        "five times. Default: what the tiles were cut at, or the model was trained on "
        "(its card), else 256.",
    )(f)


def batch_opt(f=None, *, default: int = 16):
    """--batch: tiles or windows per batch."""
    if f is None:
        return lambda g: batch_opt(g, default=default)
    return click.option(
        "--batch",
        "batch_size",
        default=default,
        type=click.IntRange(1),
        help="Tiles or windows per batch, on each replica of the model where it has several.",
    )(f)


overwrite_opt = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace what this command would write. Without it, a rerun resumes or refuses, and never silently replaces.",
)
seed_opt = click.option(
    "--seed",
    default=0,
    type=int,
    help="Seed of everything this command draws at random: the same seed gives the same result.",
)

bands_opt = click.option(
    "--bands",
    default=None,
    help="Bands to use, 1-based, e.g. '3,2,1' or '1'. Default: 1,2,3, or the only band replicated to RGB.",
)
labels_crs_opt = click.option(
    "--labels-crs",
    default=None,
    help="CRS of vector labels whose file states none or a wrong one, e.g. EPSG:3857 (GeoJSON without a 'crs' member "
    "is read as WGS84).",
)
quiet_opt = click.option("--quiet", is_flag=True, help="No progress bar.")
json_opt = click.option(
    "--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write the scores to this JSON file."
)


def runner_options(f=None, *, local: str = "this process"):
    """Where the work runs: here (``local`` says how), or on an Apache Beam runner."""
    if f is None:
        return lambda g: runner_options(g, local=local)
    f = click.option(
        "--beam-options",
        default=None,
        help="With --runner beam: Beam's pipeline options as one string, e.g. '--runner=DataflowRunner --project=P "
        "--region=R --temp_location=gs://B/tmp'. Default: the DirectRunner, a process per core of this machine.",
    )(f)
    return click.option(
        "--runner",
        type=click.Choice(["local", "beam"]),
        default="local",
        help=f"local: {local}; beam: an Apache Beam pipeline (pip install 'roofseg[beam]').",
    )(f)


def stac_options(f):
    """How STAC inputs name their assets."""
    f = click.option(
        "--stac-labels",
        default=None,
        help="STAC inputs: the item asset holding the labels. Default: an asset with the role 'labels' (label "
        "extension).",
    )(f)
    return click.option(
        "--stac-asset",
        default="visual",
        help="STAC inputs: the item asset holding the imagery; when an item has none by that key, its first "
        "GeoTIFF/COG asset.",
    )(f)


def stac_choice(asset: str, labels: str | None):
    # here, not at the top: keeps --help fast
    from roofseg.stac import StacChoice

    return StacChoice(asset=asset, labels=labels)


#: the augmentation options: name, type, help (the defaults are AugmentConfig's)
AUGMENT_OPTIONS = (
    ("--max-angle", FiniteRange(0, 180), "Rotations are drawn from ±this many degrees."),
    ("--brightness", FiniteRange(0, 1), "Brightness shifts are drawn from ±this (images in [0, 1])."),
    ("--contrast", FiniteRange(0, 1), "Contrast factors are drawn from 1 ± this."),
    ("--scale", FiniteRange(0, 2), "Zoom drawn from [1/(1+this), 1+this]: the ground resolution varies by ±this."),
    ("--hue", FiniteRange(0, 0.5), "Hue turned by up to this fraction of a full turn."),
    ("--saturation", FiniteRange(0, 1), "Saturation scaled by 1 ± this."),
    ("--gain", FiniteRange(0, 1), "Each band scaled by its own 1 ± this (colour balance)."),
    ("--gamma", FiniteRange(0, 2), "Gamma drawn from [1/(1+this), 1+this]."),
    (
        "--histogram-match",
        FiniteRange(0, 1),
        "Chance that a tile takes another tile's band histograms, blended by a random weight (randomized histogram "
        "matching, Yaras et al. 2024).",
    ),
    ("--blur", FiniteRange(0, 1), "Chance of a Gaussian blur (σ 1.2 px, blended by a random weight)."),
    ("--jpeg", FiniteRange(0, 1), "Chance of JPEG recompression at a quality of 30-90."),
)


MIN_GSD, MAX_GSD = 0.005, 1000.0  # metres: finer than 5 mm or coarser than 1 km is no imagery of buildings


def parsed_gsds(text: str | None) -> tuple[float, ...]:
    """``--gsd 0.3`` or ``--gsd 0.15,0.3``: ground pixel sizes in metres, each once, finest first."""
    if not text:
        return ()
    try:
        values = sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a ground pixel size in metres, or several comma-separated") from None
    if not values or not all(math.isfinite(v) for v in values) or values[0] < MIN_GSD or values[-1] > MAX_GSD:
        raise click.BadParameter(
            f"{text!r}: ground pixel sizes are metres from {MIN_GSD:g} to {MAX_GSD:g}", param_hint="--gsd"
        )
    return tuple(values)


class ModelSource(click.ParamType):
    """A model: a .keras file, ``base`` (the model that ships with roofseg), or a URL pinned by
    ``#sha256=HEX`` (http(s)://, s3://, gs://; downloaded once into a cache and checked)."""

    name = "model"

    def convert(self, value, param, ctx):
        # here, not at the top: the CLI's shared options import nothing of roofseg at load
        from roofseg.sources import model_file

        return model_file(value)


def model_output_opt(what: str):
    """``-o/--output``: the new model a command writes from MODEL, which it never changes."""
    return click.option(
        "-o",
        "--output",
        "out",
        required=True,
        type=click.Path(dir_okay=False),
        help=f"The {what} (.keras). MODEL itself is never changed.",
    )


def augment_options(f):
    """The ranges and chances of the random augmentation, shared by the commands that augment
    (0 turns one off); the command receives them as ``**augment`` for :func:`augment_config`."""
    # here, not at the top: the defaults are AugmentConfig's alone (a module without TensorFlow)
    from roofseg.contracts.augment import AugmentConfig

    defaults = AugmentConfig()
    for name, kind, text in reversed(AUGMENT_OPTIONS):
        key = name[2:].replace("-", "_")
        f = click.option(name, key, default=getattr(defaults, key), type=kind, show_default=True, help=text)(f)
    f = click.option("--no-flip", is_flag=True, help="Do not mirror tiles left-right at random.")(f)
    f = click.option("--no-augment", is_flag=True, help="No augmentation at all (every option below is ignored).")(f)
    return f


def augment_config(no_augment: bool = False, no_flip: bool = False, **ranges):
    """The AugmentConfig of the options :func:`augment_options` adds."""
    # here, not at the top: the CLI's shared options import nothing of roofseg at load
    from roofseg.contracts.augment import AugmentConfig

    if no_augment:
        return AugmentConfig.off()
    return AugmentConfig(flip=not no_flip, **ranges)


def xyz_options(f):
    """Where an ``xyz:URL`` input (a tile server's layer) is read: a box and a zoom."""
    f = click.option(
        "--zoom",
        default=None,
        type=click.IntRange(0, 24),
        help="xyz: inputs: the zoom level of the tiles to read (19: about 0.3 m at the equator, finer towards the "
        "poles).",
    )(f)
    return click.option("--bbox", default=None, help="xyz: inputs: the box to read, W,S,E,N in degrees (WGS84).")(f)


def resolved_inputs(inputs, bbox: str | None, zoom: int | None) -> list[str]:
    """The inputs with each ``xyz:URL`` tile layer replaced by the VRT that reads it over the box."""
    # here, not at the top: keeps --help fast
    from roofseg.xyz import is_xyz, xyz_scene

    if (bbox or zoom is not None) and not any(is_xyz(i) for i in inputs):
        raise click.BadParameter("reads xyz:URL inputs (tile servers), and none is given", param_hint="--bbox/--zoom")
    return [xyz_scene(i, bbox, zoom) if is_xyz(i) else i for i in inputs]
