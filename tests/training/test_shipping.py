"""A model shipped as float16 inside roofseg, and taken back as ``base`` in float32."""

from __future__ import annotations

import os
import zipfile
from dataclasses import replace

import h5py
import numpy as np
import pytest

from roofseg import sources
from roofseg.contracts.card import Lineage, ModelCard, ledger_of, read_card, write_card
from roofseg.contracts.provenance import Ledger, TrainedOn
from roofseg.contracts.targets import TARGETS
from roofseg.errors import RoofsegError
from roofseg.training.model import load_model
from roofseg.training.shipping import EXPANDED_FROM, WEIGHTS, expand, ship

from helpers import tiny_keras


@pytest.fixture
def trained(tmp_path):
    """A small model with a card, as a run's best.keras is."""
    model = tiny_keras(seed=4)
    path = tmp_path / "best.keras"
    model.save(path)
    write_card(path, ModelCard(gsd_m=0.3, tile_size=64, trained_on=TrainedOn(scenes=("a",), steps=7)))
    return path


def weight_dtypes(path) -> set[str]:
    """The data types of the model's layer weights."""
    with zipfile.ZipFile(path) as zf, zf.open(WEIGHTS) as f, h5py.File(f, "r") as h5:
        found = set()
        h5["layers"].visititems(lambda n, o: found.add(str(o.dtype)) if isinstance(o, h5py.Dataset) else None)
    return found


def test_a_shipped_card_keeps_one_generation_of_its_bases_cards(tmp_path):
    """A run that continued a base of bases carried every card before it (48 kB after five
    generations): shipped, the base's card keeps only the name and digest of its own base."""
    oldest = ModelCard(trained_on=TrainedOn(steps=700)).to_dict()
    ledger = Ledger(950, 7600, 1.0, {"a": 40}, ({"steps": 700}, {"steps": 250}))
    base = ModelCard(trained_on=TrainedOn(steps=250, ledger=ledger), base=Lineage("old.keras", "1" * 64, oldest))
    path = tmp_path / "best.keras"
    tiny_keras(seed=4).save(path)
    run_ledger = ledger.then({"steps": 100, "global_batch": 8, "cpu_hours": 0.5}, {"a": 40})
    write_card(path, ModelCard(trained_on=TrainedOn(steps=100, ledger=run_ledger),
                               base=Lineage("base.keras", "2" * 64, base.to_dict())))  # fmt: skip
    ship(path, tmp_path / "shipped.keras")
    card = read_card(tmp_path / "shipped.keras")
    assert (card.base.file, card.base.sha256) == ("base.keras", "2" * 64)
    assert card.base.card["base"] == {"file": "old.keras", "sha256": "1" * 64, "card": None}
    assert card.base.card["trained_on"]["ledger"]["steps"] == 950 and ledger_of(card).steps == 1050


def test_values_beyond_float16_are_kept_as_they_are(tmp_path):
    from roofseg.training.shipping import _convert

    src, dst = tmp_path / "a.h5", tmp_path / "b.h5"
    with h5py.File(src, "w") as h5:
        h5["layers/conv/vars/0"] = np.full(3, 0.5, np.float32)
        h5["metrics/iou/vars/0"] = np.full((2, 2), 9.9e6, np.float32)  # pixel counts
    _convert(str(src), str(dst), np.float16)
    with h5py.File(dst, "r") as h5:
        assert h5["layers/conv/vars/0"].dtype == np.float16
        assert h5["metrics/iou/vars/0"].dtype == np.float32 and h5["metrics/iou/vars/0"][0, 0] == 9.9e6


def test_a_shipped_model_is_float16_and_predicts_as_the_original_once_expanded(trained, manifest, tmp_path):
    out = tmp_path / "base.keras"
    card = ship(trained, out, manifest, notes={"pixel_iou": 0.5})
    assert weight_dtypes(out) == {"float16"}
    back = read_card(out)
    assert back.trained_on.measured == {"pixel_iou": 0.5} and back.trained_on.steps == 7
    ref = back.colour_reference
    assert card.colour_reference == ref and len(ref.quantiles) == 3 and len(ref.quantiles[0]) == 101
    assert ref.tiles > 0 and all(np.diff(q).min() >= 0 for q in ref.quantiles)
    expanded = tmp_path / "expanded.keras"
    expand(out, expanded)
    assert weight_dtypes(expanded) == {"float32"}
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    a = load_model(trained, compile=False).predict(x, verbose=0)
    b = load_model(expanded, compile=False).predict(x, verbose=0)
    assert np.abs(a - b).max() < 2e-3 and read_card(expanded) == back
    assert not [p for p in os.listdir(tmp_path) if ".partial" in p]


def test_base_names_the_shipped_model_expanded_once_into_the_cache(trained, tmp_path, monkeypatch):
    shipped = tmp_path / "pkg" / "base.keras"
    shipped.parent.mkdir()
    ship(trained, shipped)
    monkeypatch.setattr(sources, "SHIPPED", shipped)
    monkeypatch.setenv("ROOFSEG_CACHE", str(tmp_path / "cache"))
    path = sources.model_file("base")
    assert weight_dtypes(path) == {"float32"} and path.startswith(str(tmp_path / "cache"))
    stamp = os.stat(path).st_mtime_ns
    assert sources.model_file("base") == path and os.stat(path).st_mtime_ns == stamp
    assert load_model(path, compile=False).predict(np.zeros((1, 16, 16, 3), np.float32), verbose=0).shape == (
        1,
        16,
        16,
        1,
    )


def test_a_model_started_from_base_names_the_shipped_file_not_its_expansion(trained, tmp_path, monkeypatch):
    """The cache's float32 copy differs byte for byte from one expansion to the next: what a
    fine-tune's lineage (and adapt's run) knows ``base`` by is the file that ships, checkable anywhere."""
    import hashlib
    import shutil

    from roofseg.training.finetune import read_base

    shipped = tmp_path / "pkg" / "base.keras"
    shipped.parent.mkdir()
    ship(trained, shipped)
    monkeypatch.setattr(sources, "SHIPPED", shipped)
    monkeypatch.setenv("ROOFSEG_CACHE", str(tmp_path / "cache"))
    want = hashlib.sha256(shipped.read_bytes()).hexdigest()
    first = read_base(sources.model_file("base"))
    shutil.rmtree(tmp_path / "cache")
    again = read_base(sources.model_file("base"))
    assert first.sha256 == again.sha256 == want
    assert first.lineage.file == "base.keras" and first.lineage.sha256 == want
    assert read_base(trained).sha256 == hashlib.sha256(trained.read_bytes()).hexdigest()  # any other model is itself
    # an expansion of before it named its source is made again, not taken as its own base
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(sources.model_file("base")) as zin, zipfile.ZipFile(old, "w") as zout:
        for info in zin.infolist():
            if info.filename != EXPANDED_FROM:
                zout.writestr(info, zin.read(info))
    os.replace(old, sources.model_file("base"))
    assert read_base(sources.model_file("base")).sha256 == want


def test_no_shipped_base_is_said_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SHIPPED", tmp_path / "none.keras")
    with pytest.raises(RoofsegError, match="without its base model"):
        sources.model_file("base")


def test_a_model_over_the_size_limit_is_not_shipped(trained, tmp_path, monkeypatch):
    from roofseg.training import shipping

    monkeypatch.setattr(shipping, "MAX_SHIPPED_MB", 0.001)
    with pytest.raises(RoofsegError, match="MB allowed"):
        ship(trained, tmp_path / "big.keras")
    assert not (tmp_path / "big.keras").exists() and not [p for p in os.listdir(tmp_path) if ".partial" in p]


def test_commands_take_base_as_a_model(trained, tmp_path, monkeypatch, run_cli, sample_scene):
    shipped = tmp_path / "pkg" / "base.keras"
    shipped.parent.mkdir()
    ship(trained, shipped)
    monkeypatch.setattr(sources, "SHIPPED", shipped)
    monkeypatch.setenv("ROOFSEG_CACHE", str(tmp_path / "cache"))
    result = run_cli("predict", "base", sample_scene["image"], tmp_path / "p.tif", "--quiet")
    assert result.code == 0 and (tmp_path / "p.tif").exists(), result.err
    result = run_cli(
        "tune", "base", sample_scene["image"], "--labels", sample_scene["labels"], "-o", tmp_path / "t.keras"
    )
    assert result.code == 0 and read_card(tmp_path / "t.keras").postprocess is not None, result.err


def test_the_shipped_base_is_small_says_what_it_learnt_from_and_predicts(tmp_path, monkeypatch):
    if not sources.SHIPPED.is_file():
        pytest.skip("this checkout has no shipped base")
    from roofseg.training.shipping import MAX_SHIPPED_MB, file_mb

    assert file_mb(sources.SHIPPED) <= MAX_SHIPPED_MB and weight_dtypes(sources.SHIPPED) == {"float16"}
    card = read_card(sources.SHIPPED)
    trained = card.trained_on
    assert "OpenAerialMap" in trained.licence and "OpenStreetMap" in trained.licence
    assert trained.steps > 0 and len(trained.scenes) > 1 and len(trained.gsd_m) > 1
    assert card.gsd_range[0] < card.gsd_range[1] and card.colour_reference
    # what its last run trained in, as its ledger says; stored float16, it predicts float32 (below)
    assert card.precision == trained.ledger.runs[-1]["precision"] and card.precision in ("float32", "bfloat16")
    monkeypatch.setenv("ROOFSEG_CACHE", str(tmp_path))
    model = load_model(sources.model_file("base"), compile=False)
    out = model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0)
    assert out.shape == (1, 64, 64, 2) and out.dtype == np.float32


def test_a_shipped_continuation_keeps_the_choice_its_base_was_tuned_to(trained, tmp_path, run_cli):
    from roofseg.contracts.card import PostProcess, Tuning
    from roofseg.contracts.provenance import TuneScores

    from conftest import one_error_line

    tuned = tmp_path / "tuned.keras"
    tiny_keras(seed=5).save(tuned)
    chosen = Tuning(
        PostProcess(0.55, None, 5.0, True, 0.15),
        "object-f1",
        scores=TuneScores(0.6, 0.5, 10, 20, 20),
        scenes=("a",),
        max_gsd=0.148,
        reading_scenes=("b",),
    )
    write_card(tuned, ModelCard(gsd_m=0.3, tile_size=64, postprocess=chosen))
    out = tmp_path / "shipped.keras"
    result = run_cli("ship-base", trained, out, "--postprocess-of", tuned)
    assert result.code == 0, result.err
    kept = read_card(out).postprocess
    # the whole choice, the reading of coarse scenes too; not the other model's scores
    assert kept.choice == chosen.choice and kept.max_gsd == 0.148 and kept.reading_scenes == ("b",)
    assert kept.from_base and kept.scores is None
    line = one_error_line(run_cli("ship-base", trained, tmp_path / "x.keras", "--postprocess-of", trained))
    assert "best.keras" in line and "never tuned" in line and not (tmp_path / "x.keras").exists()
    # a cut of another kind of borders means another thing there; peaks seed any kind (the choice above)
    mine = replace(read_card(trained), outputs=TARGETS, contact_kind="outline")
    write_card(trained, mine)
    cut = Tuning(PostProcess(0.5, 0.4, 5.0, False), "object-f1")
    write_card(tuned, replace(mine, contact_kind="distance", postprocess=cut))
    line = one_error_line(run_cli("ship-base", trained, tmp_path / "y.keras", "--postprocess-of", tuned))
    assert "tuned.keras" in line and "another kind" in line and not (tmp_path / "y.keras").exists()
    write_card(tuned, replace(mine, contact_kind="distance", postprocess=chosen))
    assert run_cli("ship-base", trained, tmp_path / "z.keras", "--postprocess-of", tuned).code == 0
