"""Tiles of a review: accepted buildings are roof, rejected ones ground, the rest unknown, and the
unknown pixels count in neither the loss nor the scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio.features
from shapely.geometry import box

from roofseg.contracts.tile import read_records

from conftest import write_tif
from helpers import review_pair


@pytest.fixture
def reviewed(tmp_path):
    """A 256 px scene (0.5 m), four footprints and a store: #0 and #3 accepted, #1 rejected, #2 skipped."""
    from roofseg.review.store import DecisionStore

    x0, y0 = 500_000, 5_000_000
    boxes = [
        box(x0 + 10, y0 - 30, x0 + 25, y0 - 15),
        box(x0 + 40, y0 - 30, x0 + 50, y0 - 22),
        box(x0 + 60, y0 - 60, x0 + 80, y0 - 40),
        box(x0 + 100, y0 - 110, x0 + 115, y0 - 100),
    ]
    scene, footprints = review_pair(tmp_path, boxes, (0.5,) * 4)
    store = DecisionStore(tmp_path / "city.review.sqlite", [str(footprints)])
    for key, decision in (("0:0", "accept"), ("0:1", "reject"), ("0:2", "skip"), ("0:3", "accept")):
        store.decide(key, decision)
    store.close()
    return scene, tmp_path / "city.review.sqlite", boxes


def burn(shapes, transform, size):
    return rasterio.features.rasterize([(s, 1) for s in shapes], (size, size), transform=transform, dtype="uint8")


def test_a_review_tiles_accepted_as_roof_rejected_as_ground_and_nothing_else(reviewed, tmp_path, run_cli):
    scene, store, boxes = reviewed
    out = tmp_path / "tiles"
    result = run_cli("tile", scene, "--labels", store, "-o", out, "--tile-size", "64", "--val", "0", "--test", "0",
                     "--contact-px", "0", "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["known"] is True
    (job,) = manifest["jobs"]
    assert {k: job["review"][k] for k in ("accept", "reject")} == {"accept": 2, "reject": 1}
    records = [r for s in manifest["splits"]["train"]["shards"] for r in read_records(str(out / s["path"]))]
    # 16 windows of 64 px; only those a decided building reaches are kept
    assert 0 < len(records) < 16 and job["skipped"]["unknown"] == 16 - len(records)
    for r in records:
        transform = rasterio.Affine(*r["transform"])
        assert np.array_equal(r["mask"], burn([boxes[0], boxes[3]], transform, 64))
        assert np.array_equal(r["known"], burn([boxes[0], boxes[1], boxes[3]], transform, 64))
        assert r["known"].any()


def test_a_store_without_decisions_or_of_another_place_is_one_line(reviewed, tmp_path, run_cli):
    scene, store, _ = reviewed
    import sqlite3

    empty = tmp_path / "empty.review.sqlite"
    with sqlite3.connect(store) as src, sqlite3.connect(empty) as dst:
        src.backup(dst)
        dst.execute("DELETE FROM decisions")
    result = run_cli("tile", scene, "--labels", empty, "-o", tmp_path / "t1", "--quiet")
    assert result.code == 1 and "holds no accepted or rejected building" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "t1" / "manifest.json").exists()
    far = write_tif(tmp_path / "far.tif", np.zeros((3, 64, 64), np.uint8),
                    transform=rasterio.Affine(0.5, 0, 600_000, 0, -0.5, 5_000_000))  # fmt: skip
    result = run_cli("tile", far, "--labels", store, "-o", tmp_path / "t2", "--quiet")
    assert result.code == 1 and "no building it decided lies on the scene" in result.err
    (tmp_path / "bad.sqlite").write_text("not a database")
    result = run_cli("tile", scene, "--labels", tmp_path / "bad.sqlite", "-o", tmp_path / "t3", "--quiet")
    assert result.code == 1 and "is not a review store" in result.err and "Traceback" not in result.err


def test_the_loss_and_the_scores_leave_unknown_pixels_out():
    from roofseg._tf import tf
    from roofseg.training.losses import LOSSES, PixelIoU

    rng = np.random.default_rng(1)
    roof = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    known = np.zeros_like(roof)
    known[:, :8] = 1
    pred = rng.random((2, 16, 16, 1)).astype(np.float32)
    other = pred.copy()
    other[:, 8:] = 1 - other[:, 8:]  # another prediction where nothing is known
    y = tf.constant(np.concatenate([roof, known], -1))
    for name, loss in LOSSES.items():
        a, b = float(loss(y, tf.constant(pred))), float(loss(y, tf.constant(other)))
        assert a == pytest.approx(b, abs=1e-6), name
        # and it is the loss of the known half alone
        half = float(loss(tf.constant(roof[:, :8]), tf.constant(pred[:, :8])))
        assert a == pytest.approx(half, rel=1e-5), name
        assert a != pytest.approx(float(loss(tf.constant(roof), tf.constant(other))), rel=1e-3), name
    scores = []
    for p in (pred, other):
        metric = PixelIoU()
        metric.update_state(y, tf.constant(p))
        scores.append(float(metric.result()))
    assert scores[0] == scores[1]


@pytest.mark.slow
def test_a_review_trains_in_bfloat16_honouring_its_known_mask_and_the_card_records_it(reviewed, tmp_path, run_cli):
    from roofseg.contracts.card import read_card

    scene, store, _ = reviewed
    out = tmp_path / "tiles"
    result = run_cli("tile", scene, "--labels", store, "-o", out, "--tile-size", "64", "--val", "0", "--test", "0",
                     "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    result = run_cli("train", out / "manifest.json", "-o", tmp_path / "run", "--encoder-weights", "none",
                     "--epochs", "1", "--steps-per-epoch", "2", "--batch", "2",
                     "--precision", "bfloat16")  # fmt: skip
    assert result.code == 0, result.err
    card = read_card(tmp_path / "run" / "best.keras")
    assert card.precision == "bfloat16"  # the known mask's loss under the CLI's strategy, as on an AMX CPU
    (review,) = card.trained_on.reviews
    assert review["store"] == str(store) and review["accept"] == 2 and review["reject"] == 1
    assert len(review["sha256"]) == 64
