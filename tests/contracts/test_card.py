"""The model card: one read, one write, earlier releases read, newer ones refused in one line."""

from __future__ import annotations

import json
import zipfile

import pytest

from roofseg.contracts.card import (
    CARD_FILE,
    Lineage,
    ModelCard,
    PostProcess,
    Tuning,
    ledger_of,
    lineage_of,
    read_card,
    write_card,
)
from roofseg.contracts.provenance import Adaptation, ColourReference, Ledger, TrainedOn, TuneScores
from roofseg.errors import RoofsegError


def archive(path, card: dict | None = None):
    """A stand-in .keras archive (a zip), with ``card`` stored as JSON where given."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        if card is not None:
            zf.writestr(CARD_FILE, json.dumps(card))
    return path


def test_a_card_written_by_this_release_reads_back_equal(tmp_path):
    card = ModelCard(
        gsd_m=0.3,
        tile_size=128,
        bands=((1, 2, 3),),
        scaling="percentile 2-98",
        outputs=("roof", "contact"),
        contact_px=3,
        base=Lineage("base.keras", "ab" * 32, {"format": "roofseg-model/1", "gsd_m": 0.15}),
        postprocess=Tuning(PostProcess(0.6, None, 10.0, True, 0.1), "object-f1", TuneScores(object_f1=0.7), ("s0",)),
        gsd_range_m=(0.075, 0.3),
        precision="bfloat16",
        trained_on=TrainedOn(scenes=("a", "b"), steps=10, ledger=Ledger(steps=960, places={"a@0.30m": 4})),
        colour_reference=ColourReference(((0.0, 1.0),) * 3, 2, 5, 900),
        adaptation=Adaptation("bn", settings={"match_colours": True}, bn_batches=3),
    )
    path = archive(tmp_path / "m.keras")
    write_card(path, card)
    assert read_card(path) == card
    write_card(path, card.with_tuning(None))  # a new card replaces the old one
    assert read_card(path).postprocess is None
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist().count(CARD_FILE) == 1 and "config.json" in zf.namelist()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_card_of_an_earlier_release_reads_with_its_defaults(tmp_path):
    old = {
        "format": "roofseg-model/1",
        "gsd_m": 0.3,
        "bands": [[1, 2, 3]],
        "postprocess": {"threshold": 0.55, "min_area": 4.0, "regularize": False},
    }
    card = read_card(archive(tmp_path / "old.keras", old))
    assert card.tile_size == 256 and card.outputs == ("roof",) and not card.has_contact
    assert card.postprocess.choice == PostProcess(0.55, None, 4.0, False) and card.postprocess.scenes == ()
    assert card.gsd_range == (0.3, 0.3) and card.precision == "float32" and card.colour_reference is None
    assert card.to_dict()["format"] == "roofseg-model/6"  # written again, it is this release's
    unstamped = read_card(archive(tmp_path / "unstamped.keras", {"gsd_m": 0.5}))
    assert unstamped.gsd_m == 0.5 and unstamped.tile_size == 256


def test_a_model_without_a_card_or_no_archive_has_none(tmp_path):
    assert read_card(archive(tmp_path / "plain.keras")) is None
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert read_card(tmp_path / "junk.keras") is None  # loading the model says what is wrong with it


@pytest.mark.parametrize(
    "stamp, said", [("roofseg-model/7", "newer roofseg"), ("something-else/1", "not a roofseg-model")]
)
def test_a_newer_or_foreign_card_is_refused_in_one_line_naming_the_file(tmp_path, stamp, said):
    path = archive(tmp_path / "new.keras", {"format": stamp, "gsd_m": 0.3})
    with pytest.raises(RoofsegError) as err:
        read_card(path)
    assert err.value.path == str(path) and said in err.value.problem and "\n" not in str(err.value)


def test_a_damaged_card_is_said_so(tmp_path):
    path = archive(tmp_path / "bad.keras", {"format": "roofseg-model/3", "tile_size": "large"})
    with pytest.raises(RoofsegError, match="damaged"):
        read_card(path)


def test_the_cli_says_a_newer_card_in_one_line(tmp_path, run_cli):
    from conftest import one_error_line

    path = archive(tmp_path / "new.keras", {"format": "roofseg-model/9"})
    line = one_error_line(run_cli("export", path, tmp_path / "m.onnx", "--layout", "deepness"))
    assert str(path) in line and "newer roofseg" in line


def test_the_provenance_of_a_card_3_reads_as_typed_records_and_keeps_what_it_does_not_know(tmp_path):
    """A card of roofseg-model/3 (before ledgers and reviews) as a release of then wrote it."""
    old = {
        "format": "roofseg-model/3",
        "gsd_m": 0.3,
        "outputs": ["roof", "contact"],
        "trained_on": {"scenes": ["a"], "tiles": 40, "gsd_m": [0.3], "steps": 700, "licence": "CC BY 4.0",
                       "measured": {"pixel_iou": 0.5}, "colour": "kept"},
        "colour_reference": {"levels": 3, "quantiles": [[0, 100, 255]] * 3, "tiles": 4, "pixels": 1000},
        "adaptation": {"method": "bn", "settings": {"match_colours": True}, "scenes": [{"name": "x", "tiles": 8}],
                       "bn_batches": 1},
        "postprocess": {"threshold": 0.6, "contact_cut": 0.3, "min_area": 5.0, "regularize": False,
                        "scores": {"pixel_iou": 0.6, "object_f1": 0.4, "matched": 4, "predicted": 10, "true": 10}},
    }  # fmt: skip
    card = read_card(archive(tmp_path / "old.keras", old))
    assert card.trained_on.steps == 700 and card.trained_on.ledger is None and card.trained_on.reviews == ()
    assert card.trained_on.measured == {"pixel_iou": 0.5} and card.trained_on.extra == {"colour": "kept"}
    assert ledger_of(card).steps == 700  # a card of before ledgers counts its run's steps
    assert card.colour_quantiles() == ((0.0, 100.0, 255.0),) * 3 and card.colour_reference.pixels == 1000
    assert card.adaptation.match_colours and card.adaptation.windows == 8 and card.adaptation.bn_batches == 1
    assert card.postprocess.scores == TuneScores(0.6, 0.4, 4, 10, 10)
    assert card.postprocess.choice.seed_depth is None  # seeded at cores, the rule of every card before 5
    assert card.postprocess.max_gsd is None and card.reading_range == (0.3, 0.3)  # read as before 6
    again = card.to_dict()
    assert again["trained_on"]["colour"] == "kept" and "ledger" not in again["trained_on"]
    assert ModelCard.from_dict(again) == card
    newer = {**old, "format": "roofseg-model/99"}
    with pytest.raises(RoofsegError, match="newer roofseg"):
        read_card(archive(tmp_path / "new.keras", newer))


def test_a_tuned_coarsest_gsd_narrows_the_range_predict_reads_at_and_survives_a_round_trip():
    from roofseg.contracts.card import Tuning

    tuned = Tuning(PostProcess(0.55, None, seed_depth=0.15), "object-f1", max_gsd=0.15)
    card = ModelCard(gsd_m=0.15, gsd_range_m=(0.07, 1.0), outputs=("roof", "contact"), postprocess=tuned)
    assert card.gsd_range == (0.07, 1.0)  # what it was trained on stays as it was
    assert card.reading_range == (0.07, 0.15)  # a 0.3 m scene is read at 0.15 m
    assert card.with_tuning(None).reading_range == (0.07, 1.0)
    again = ModelCard.from_dict(card.to_dict())
    assert again == card and again.postprocess.max_gsd == 0.15
    assert tuned.inherited().max_gsd is None  # a fine-tune learnt at its own tiles' GSD: read over its range


def test_a_lineage_keeps_one_generation_of_cards_where_the_ledger_holds_the_rest():
    """A base made of bases: each new model records its base's card, not every card before it
    (five generations had made a 48 kB card); the ledger still counts every run."""
    first = ModelCard(trained_on=TrainedOn(steps=700))  # before ledgers: its steps are in its card alone
    second = ModelCard(trained_on=TrainedOn(steps=250), base=Lineage("a.keras", "1" * 64, first.to_dict()))
    ledger = Ledger(950, 0, 0.0, {}, ({"steps": 700}, {"steps": 250}))
    third = ModelCard(
        trained_on=TrainedOn(steps=100, ledger=ledger.then({"steps": 100, "global_batch": 8, "cpu_hours": 0.1}, {})),
        base=Lineage("b.keras", "2" * 64, second.to_dict()),
    )
    kept = lineage_of("c.keras", "3" * 64, third)
    assert (kept.file, kept.sha256) == ("c.keras", "3" * 64)
    assert kept.card["base"] == {"file": "b.keras", "sha256": "2" * 64, "card": None}  # one generation
    assert ledger_of(kept.card).steps == 1050 == ledger_of(third).steps
    old = lineage_of("b.keras", "2" * 64, second)  # no ledger: its base's card is where its steps are
    assert old.card["base"]["card"] == first.to_dict() and ledger_of(old.card).steps == 950
    assert lineage_of("x.keras", "4" * 64, None) == Lineage("x.keras", "4" * 64, None)
