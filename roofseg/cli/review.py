"""``roofseg review``: predicted buildings accepted or rejected in the browser, one key each."""

from __future__ import annotations

from pathlib import Path

import click

from roofseg.cli.options import CONTEXT


@click.command(context_settings=CONTEXT)
@click.argument("pairs", nargs=-1, required=True)
@click.option(
    "--store",
    default=None,
    type=click.Path(dir_okay=False),
    help="The SQLite file of the decisions. Default: beside the first footprints, NAME.review.sqlite.",
)
@click.option(
    "--order",
    type=click.Choice(["confidence", "area"]),
    default="confidence",
    help="The queue: doubtful first (lowest confidence), or largest first.",
)
@click.option(
    "--existing",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Exports leave out the accepted buildings this file maps already, as predict --existing does.",
)
@click.option("--host", default="127.0.0.1", help="The address to listen on (127.0.0.1: this machine only).")
@click.option("--port", default=8733, type=click.IntRange(0, 65535), help="The port (0: any free one).")
def review(pairs, store, order, existing, host, port) -> None:
    """Review predicted buildings in the browser: PAIRS are SCENE FOOTPRINTS, SCENE FOOTPRINTS, ...

    Serves the scenes as map tiles (read from a COG's overviews where it has them) with the
    footprints on top, and prints the URL to open. The queue starts with the buildings the model
    was least sure of; keys decide: A accept, R reject, S skip, B back, Z zoom, N next undecided.
    Each decision is kept in SQLite as it is made, so a stopped review resumes where it was. The
    accepted buildings export as .osm (or open in JOSM, through its remote control), GeoJSON or
    GeoPackage. Stop with Ctrl-C.
    """
    # here, not at the top: keeps --help fast
    from roofseg.review.queue import Pair
    from roofseg.review.server import Review, ReviewServer

    if len(pairs) % 2:
        raise click.BadParameter("give each scene with its footprints: SCENE FOOTPRINTS ...", param_hint="PAIRS")
    given = [Pair(pairs[k], pairs[k + 1]) for k in range(0, len(pairs), 2)]
    first = Path(given[0].footprints)
    store = store or str(first.with_name(f"{first.stem}.review.sqlite"))
    server = ReviewServer(Review(given, store, order, existing), host, port)
    click.echo(f"review of {len(server.review.buildings)} buildings, decisions in {store}")
    click.echo(f"open {server.url}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.review.close()
