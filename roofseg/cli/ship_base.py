"""``roofseg ship-base``: a trained model made into a base to ship or share (float16, ≤ 50 MB)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from roofseg.cli.options import CONTEXT, ModelSource, overwrite_opt


@click.command("ship-base", context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The tiles MODEL was trained on: their band quantiles become the card's colour reference "
    "(predict --match-colours), where the card has none.",
)
@click.option(
    "--measured",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A JSON file of measured figures (bench/finetune.py --json) kept in the card.",
)
@click.option(
    "--postprocess-of",
    type=ModelSource(),
    default=None,
    help="Keep the post-processing this model was tuned to (roofseg tune: threshold, seeding, reading of coarse "
    "scenes), e.g. base, when MODEL continues it on the same tiles; MODEL's card marks it as the base's until "
    "MODEL is tuned itself.",
)
@overwrite_opt
def ship_base(model, output, manifest, measured, postprocess_of, overwrite) -> None:
    """Write MODEL as a base to ship inside roofseg or to share: float16 weights (half the size;
    predictions within about 1e-3), its card completed. Every command that takes a model takes it
    back in float32. At most 50 MB. To ship it with roofseg, copy OUTPUT to roofseg/models/base.keras.
    """
    # here, not at the top: keeps --help fast
    from roofseg.atomic import check_outputs
    from roofseg.contracts.card import ledger_of
    from roofseg.contracts.provenance import TrainedOn
    from roofseg.errors import RoofsegError
    from roofseg.training.shipping import file_mb, ship

    check_outputs([Path(output)], [model], overwrite)
    notes = None
    if measured:
        try:
            notes = json.loads(Path(measured).read_text())
        except ValueError as exc:
            raise RoofsegError(measured, f"is not JSON ({exc})") from None
    card = ship(model, output, manifest, notes, postprocess_of)
    trained = card.trained_on or TrainedOn()
    ledger = ledger_of(card)
    click.echo(
        f"base: {output} ({file_mb(output):.1f} MB, float16), trained on {len(trained.scenes)} scenes at "
        f"{', '.join(f'{g:g}' for g in trained.gsd_m)} m for {trained.steps} steps "
        f"({ledger.steps} in all, {ledger.cpu_hours:g} CPU-hours)"
    )
