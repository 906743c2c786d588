"""The ``roofseg`` command line: one click group, one module per command (as ``rio``).

Heavy libraries are imported inside each command, so ``--help`` answers at once. :func:`main`
is the one place errors become messages.
"""

from __future__ import annotations

import sys
import warnings

import click

from roofseg import __version__
from roofseg.cli.adapt import adapt
from roofseg.cli.augment_preview import augment_preview
from roofseg.cli.data_service import data_service
from roofseg.cli.evaluate import evaluate
from roofseg.cli.evaluate_scene import evaluate_scene
from roofseg.cli.export import export
from roofseg.cli.mosaic import mosaic
from roofseg.cli.options import CONTEXT
from roofseg.cli.predict import predict
from roofseg.cli.review import review
from roofseg.cli.sample import sample
from roofseg.cli.ship_base import ship_base
from roofseg.cli.tile import tile
from roofseg.cli.train import train
from roofseg.cli.tune import tune
from roofseg.errors import BatchError, failure_line, first_line


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="roofseg")
def cli() -> None:
    """Rooftop segmentation from georeferenced satellite and aerial scenes.

    A typical run: `roofseg sample DIR`, `roofseg tile DIR -o TILES`, `roofseg train TILES/manifest.json -o RUN`,
    `roofseg predict RUN/best.keras SCENE.tif OUT.tif`.
    """


for command in (
    sample,
    mosaic,
    tile,
    augment_preview,
    train,
    adapt,
    tune,
    evaluate,
    predict,
    evaluate_scene,
    review,
    export,
    ship_base,
    data_service,
):
    cli.add_command(command)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings in roofseg's one-line form: what it means, never a library's source path."""
    click.echo(
        "roofseg: warning: "
        f"{first_line(message) if isinstance(message, BaseException) else str(message).splitlines()[0]}",
        err=True,
    )


def _quiet_library_warnings() -> None:
    """Library warnings that roofseg says in its own words (a scene without georeference is said by
    predict; TensorFlow's and Keras' notes on their own internals mean nothing to a user)."""
    warnings.showwarning = _show_warning
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")  # rasterio's NotGeoreferencedWarning
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", module=r"(keras|tf_keras|tensorflow|absl)(\.|$)")


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected failure ends in one line on stderr and exit 1.

    This is the one place errors become messages: usage errors (click's), RoofsegError and the
    I/O libraries' own errors (see :func:`roofseg.errors.failure_line`); anything else is a bug
    and keeps its traceback.
    """
    with warnings.catch_warnings():  # the filters last as long as the command: a caller's own stay as they were
        _quiet_library_warnings()
        _run(argv)


def _run(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="roofseg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: the same one-line form and exit status
        click.echo(f"roofseg: error: {exc.format_message()}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BatchError as exc:  # the items that failed, one line each, then the count
        for item in exc.failures:
            click.echo(f"roofseg: error: {item}", err=True)
        click.echo(f"roofseg: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        line = failure_line(exc)
        if line is None:
            raise
        click.echo(f"roofseg: error: {line}", err=True)
        sys.exit(1)
    sys.exit(0)
