"""Fine-tuning from a building model: every weight carried over, the card checked against the
tiles and its lineage recorded, too little data said."""

from __future__ import annotations

import json

import pytest

from conftest import one_error_line

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(manifest, tmp_path_factory):
    """A building model trained briefly on the sample's 64 px tiles (roof and contact heads)."""
    from roofseg.training.train import TrainConfig, train

    run = tmp_path_factory.mktemp("base")
    train(
        TrainConfig(
            manifest=str(manifest),
            out_dir=str(run),
            encoder_weights="none",
            epochs=4,
            batch_size=4,
            steps_per_epoch=8,
            learning_rate=1e-3,
            strategy="default",
            samples=1,
        ),
        verbose=0,
    )
    return run / "best.keras"


def first_epoch(run) -> dict:
    from roofseg.training.reports import read_history

    log = read_history(run / "history.csv")
    return {k: v[0] for k, v in log.items()}


def test_a_fine_tune_starts_where_the_base_ended_and_records_it(base, manifest, tmp_path):
    import hashlib

    from roofseg.training.train import TrainConfig, train

    from helpers import read_card_dict as read_model_card

    common = dict(
        manifest=str(manifest),
        encoder_weights="none",
        epochs=1,
        batch_size=4,
        steps_per_epoch=1,
        learning_rate=1e-4,
        strategy="default",
        samples=1,
    )
    train(TrainConfig(out_dir=str(tmp_path / "tuned"), init_from=str(base), **common), verbose=0)
    train(TrainConfig(out_dir=str(tmp_path / "fresh"), **common), verbose=0)
    tuned, fresh = first_epoch(tmp_path / "tuned"), first_epoch(tmp_path / "fresh")
    assert tuned["val_loss"] < fresh["val_loss"] - 0.2, (tuned, fresh)  # far better than random weights at once
    assert tuned["val_iou_score"] > 2 * fresh["val_iou_score"], (tuned, fresh)
    card = read_model_card(tmp_path / "tuned" / "best.keras")
    assert card["base"]["file"] == "best.keras"
    assert card["base"]["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    assert card["base"]["card"] == read_model_card(base)


def test_a_base_without_the_tiles_contact_head_gets_one_and_the_reverse_drops_it(base, manifest, tmp_path, capsys):
    from roofseg.training.model import load_model
    from roofseg.training.train import TrainConfig, train

    train(
        TrainConfig(
            manifest=str(manifest),
            out_dir=str(tmp_path / "roof"),
            init_from=str(base),
            contact=False,
            epochs=1,
            batch_size=4,
            steps_per_epoch=1,
            strategy="default",
            samples=1,
        ),
        verbose=0,
    )
    out = capsys.readouterr().out
    assert "contact head is dropped" in out
    assert "Strategy" not in out and ".partial" not in out and "saved " + str(tmp_path / "roof" / "best.keras") in out
    roof_only = tmp_path / "roof" / "best.keras"
    assert load_model(roof_only, compile=False).output_shape[-1] == 1
    train(
        TrainConfig(
            manifest=str(manifest),
            out_dir=str(tmp_path / "both"),
            init_from=str(roof_only),
            epochs=1,
            batch_size=4,
            steps_per_epoch=1,
            strategy="default",
            samples=1,
        ),
        verbose=0,
    )
    assert "new contact head" in capsys.readouterr().out
    assert load_model(tmp_path / "both" / "best.keras", compile=False).output_shape[-1] == 2


def test_a_base_for_other_imagery_is_refused_in_one_line(base, manifest, tmp_path, run_cli):
    import zipfile

    from roofseg.contracts.card import CARD_FILE as MODEL_CARD

    from helpers import read_card_dict as read_model_card

    def with_card(name, **changes):
        path = tmp_path / name
        card = {**read_model_card(base), **changes}
        with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w") as dst:
            for item in src.namelist():
                if item != MODEL_CARD:
                    dst.writestr(item, src.read(item))
            dst.writestr(MODEL_CARD, json.dumps(card))
        return path

    gsd = json.loads(manifest.read_text())["gsd_m"]
    line = one_error_line(
        run_cli(
            "train",
            manifest,
            "-o",
            tmp_path / "r1",
            "--init-from",
            with_card("far.keras", gsd_m=gsd * 2, gsd_range_m=[gsd * 2, gsd * 2]),
        )
    )
    assert "far.keras" in line and f"--gsd {gsd * 2:.3g}" in line and "roofseg tile" in line
    line = one_error_line(
        run_cli("train", manifest, "-o", tmp_path / "r2", "--init-from", with_card("nir.keras", bands=[[4, 3, 2]]))
    )
    assert "nir.keras" in line and "bands" in line
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a model")
    line = one_error_line(
        run_cli(
            "train",
            manifest,
            "-o",
            tmp_path / "r3",
            "--init-from",
            not_a_model,
            "--epochs",
            1,
            "--steps-per-epoch",
            1,
            "--batch",
            4,
            "--strategy",
            "default",
        )
    )
    assert "notes.keras" in line and "is not a Keras model file" in line


def test_too_little_validation_data_is_said(manifest, tmp_path):
    from roofseg.training.train import data_warnings

    small = json.loads(manifest.read_text())
    small["splits"]["val"]["tiles"] = 5
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(small))
    (line,) = data_warnings(str(path), 4)
    assert "5 tiles" in line and "fewer than 16" in line


def test_a_fine_tune_of_a_tuned_base_starts_with_its_post_processing(base, manifest, tmp_path):
    """A fine-tuned model predicts with its base's tuned choice until it is tuned itself (on Dhaka
    block1 that found 91 buildings where the defaults found 32); a model whose heads differ from
    the base's does not take it."""
    import shutil

    from roofseg.contracts.card import PostProcess, TuneScores, Tuning, read_card, write_card
    from roofseg.prediction.request import PredictRequest, resolve_model
    from roofseg.training.train import TrainConfig, inherited_tuning, train

    tuned_base = tmp_path / "tuned-base.keras"
    shutil.copy(base, tuned_base)
    choice = PostProcess(0.55, None, 5.0, True, seed_depth=0.15)
    write_card(tuned_base, read_card(tuned_base).with_tuning(Tuning(choice, "object-f1", TuneScores(0.6, 0.5), ("a",))))
    common = dict(manifest=str(manifest), init_from=str(tuned_base), epochs=1, batch_size=4, steps_per_epoch=1,
                  strategy="default", samples=1)  # fmt: skip
    train(TrainConfig(out_dir=str(tmp_path / "run"), **common), verbose=0)
    card = read_card(tmp_path / "run" / "best.keras")
    assert card.postprocess == Tuning(choice, "object-f1", None, (), from_base=True)
    vectors = resolve_model(str(tmp_path / "run" / "best.keras"), PredictRequest(vector="gpkg")).vectors
    assert (vectors.seed_depth, vectors.min_area, vectors.regularize) == (0.15, 5.0, True)
    base_card = read_card(tuned_base)
    assert inherited_tuning(base_card, False, None) is None  # a roof-only model: no borders to seed by
    # peaks are a relative depth: they seed graded borders as they seed outlines; a cut of other borders does not
    assert inherited_tuning(base_card, True, "distance") == Tuning(choice, "object-f1", None, (), from_base=True)
    cut = base_card.with_tuning(Tuning(PostProcess(0.55, 0.4, 5.0, True), "object-f1"))
    assert inherited_tuning(cut, True, base_card.contact_kind).choice.contact_cut == 0.4
    assert inherited_tuning(cut, True, "distance") is None
    assert inherited_tuning(read_card(base), True, base_card.contact_kind) is None  # an untuned base
