"""The losses: the contact borders' weight, and a model compiled with it saved and reloaded."""

from __future__ import annotations

import numpy as np
import pytest

from roofseg._tf import keras, tf
from roofseg.training.losses import LOSSES, RoofContactLoss, loss_of


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
