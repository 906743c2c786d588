"""The losses: the contact borders' weight, and a model compiled with it saved and reloaded."""

from __future__ import annotations

import numpy as np
import pytest

from roofseg._tf import keras, tf
from roofseg.training import config
from roofseg.training.losses import CONTACT_LOSSES, LOSSES, RoofContactLoss, loss_of


def _pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = (rng.random((2, 16, 16, 2)) > 0.6).astype(np.float32)
    pred = rng.uniform(0.05, 0.95, (2, 16, 16, 2)).astype(np.float32)
    return tf.constant(truth), tf.constant(pred)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_contact_weight_scales_the_borders_term_alone(name):
    truth, pred = _pair()
    roof_only = float(LOSSES[name](truth[..., :1], pred[..., :1]))
    whole = float(LOSSES[name](truth, pred))
    assert float(RoofContactLoss(name, 1.0)(truth, pred)) == pytest.approx(whole, rel=1e-5)
    weighted = float(RoofContactLoss(name, 4.0)(truth, pred))
    assert weighted == pytest.approx(roof_only + 4 * (whole - roof_only), rel=1e-5)
    assert loss_of(name) is LOSSES[name]  # the default stays the registered function older releases load


def test_a_model_compiled_with_a_contact_weight_reloads_compiled_with_it(tmp_path):
    from roofseg.training.model import compile_model

    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Conv2D(2, 1, activation="sigmoid")(inp))
    compile_model(model, "bce_dice", 1e-3, contact_weight=3.0)
    truth, _ = _pair()
    images = tf.random.uniform((2, 16, 16, 3), seed=1)
    model.fit(images, truth, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(again.loss, RoofContactLoss)
    assert (again.loss.roof, again.loss.contact_weight) == ("bce_dice", 3.0)
    assert float(again.evaluate(images, truth, verbose=0)[0]) == pytest.approx(
        float(model.evaluate(images, truth, verbose=0)[0]), rel=1e-5
    )


def _focal_by_hand(truth: np.ndarray, pred: np.ndarray, gamma: float = 2.0) -> float:
    p_t = np.where(truth > 0.5, pred, 1.0 - pred)
    return float(np.mean(-((1.0 - p_t) ** gamma) * np.log(p_t)))


def _dice_by_hand(truth: np.ndarray, pred: np.ndarray) -> float:
    return 1.0 - 2.0 * float((truth * pred).sum()) / float(truth.sum() + pred.sum())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_focal_border_loss_is_focal_plus_dice_of_the_borders_alone(name):
    truth, pred = _pair(1)
    roof_only = float(LOSSES[name](truth[..., :1], pred[..., :1]))
    t, p = truth.numpy()[..., 1:], pred.numpy()[..., 1:]
    border = _focal_by_hand(t, p) + _dice_by_hand(t, p)
    loss = loss_of(name, 4.0, "focal_dice")
    assert float(loss(truth, pred)) == pytest.approx(roof_only + 4 * border, rel=1e-4)
    # a pixel already right counts (1 - p_t)^2 of its cross-entropy: 1/100 at p_t = 0.9
    sure = tf.constant(np.full((1, 4, 4, 2), 0.9, np.float32))
    ones = tf.ones((1, 4, 4, 2))
    bce, focal = (
        float(loss_of(name, 1.0, c)(ones, sure)) - float(LOSSES[name](ones[..., :1], sure[..., :1]))
        for c in ("bce_dice", "focal_dice")
    )
    dice = _dice_by_hand(np.ones(16), np.full(16, 0.9))
    assert focal - dice == pytest.approx((bce - dice) / 100, rel=1e-3)


def test_the_losses_named_for_the_cli_are_the_losses_there_are():
    # the CLI's choices come from the config (no TensorFlow import for --help); a loss added on one side only
    # would be offered and fail, or exist and never be offered
    assert set(config.ROOF_LOSSES) == set(LOSSES)
    assert set(config.CONTACT_LOSSES) == set(CONTACT_LOSSES)


def test_an_unknown_border_loss_is_refused():
    with pytest.raises(ValueError, match="contact loss"):
        RoofContactLoss("dice", 1.0, contact="hinge")


def test_a_model_compiled_with_the_focal_border_loss_and_a_gap_weight_reloads_compiled_with_both(tmp_path):
    from roofseg.training.model import compile_model

    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Conv2D(2, 1, activation="sigmoid")(inp))
    compile_model(model, "bce_dice", 1e-3, contact_weight=4.0, contact_loss="focal_dice", gap_weight=10.0)
    truth, _ = _pair()
    images = tf.random.uniform((2, 16, 16, 3), seed=1)
    model.fit(images, truth, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert (again.loss.roof, again.loss.contact_weight, again.loss.contact, again.loss.gap_weight) == (
        "bce_dice",
        4.0,
        "focal_dice",
        10.0,
    )
    assert float(again.evaluate(images, truth, verbose=0)[0]) == pytest.approx(
        float(model.evaluate(images, truth, verbose=0)[0]), rel=1e-5
    )


def test_the_gap_weight_weighs_the_roofs_cross_entropy_on_the_ground_between_buildings_alone():
    from roofseg.training.losses import gap_weights

    truth, pred = _pair(2)
    t, p = truth.numpy(), pred.numpy()
    gaps = (t[..., 0] == 0) & (t[..., 1] == 1)  # ground, yet border: a gap between two buildings
    assert gaps.any() and (~gaps).any()
    weights = gap_weights(truth, 10.0).numpy()[..., 0]
    assert set(np.unique(weights[gaps])) == {10.0} and set(np.unique(weights[~gaps])) == {1.0}
    plain = float(loss_of("bce_dice", 4.0)(truth, pred))
    weighted = float(loss_of("bce_dice", 4.0, gap_weight=10.0)(truth, pred))
    pixels = -(t[..., 0] * np.log(p[..., 0]) + (1 - t[..., 0]) * np.log(1 - p[..., 0]))
    # only the roof's cross-entropy changes: by 9 times the gaps' share of it
    assert weighted - plain == pytest.approx(9 * float((pixels * gaps).mean()), rel=1e-3)
    roof_only = (truth[..., :1], pred[..., :1])  # a model without borders has no gaps to weigh
    assert float(loss_of("bce_dice", 4.0, gap_weight=10.0)(*roof_only)) == pytest.approx(
        float(LOSSES["bce_dice"](*roof_only)), rel=1e-6
    )


def test_a_gap_weight_needs_a_cross_entropy_to_weigh():
    with pytest.raises(ValueError, match="gap weight"):
        loss_of("dice", 4.0, gap_weight=10.0)
    assert loss_of("bce_dice", 1.0, gap_weight=1.0) is LOSSES["bce_dice"]
