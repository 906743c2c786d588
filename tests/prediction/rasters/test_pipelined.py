"""The pipelined predictor (reader thread, model, writer thread) writes what the sequential one
writes, bit for bit, and a failure in any stage ends the run cleanly, with no thread left."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import rasterio

from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene

from conftest import write_tif


def noise_scene(tmp_path, h: int, w: int):
    rng = np.random.default_rng(h * w)
    data = rng.integers(1, 255, (3, h, w), dtype=np.uint8)
    data[:, : h // 5, : w // 7] = 0  # some nodata
    return write_tif(tmp_path / f"n{h}x{w}.tif", data, nodata=0)


def mixing_model(batch: np.ndarray) -> np.ndarray:
    """Not pointwise: each pixel mixes its neighbourhood, so window borders and blending matter."""
    x = batch.mean(axis=-1, keepdims=True)
    return (x + np.roll(x, 3, axis=1) + np.roll(x, -5, axis=2)) / 3


@pytest.mark.parametrize("h, w", [(512, 768), (333, 517)])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_pipelined_output_equals_the_sequential_one_bit_for_bit(tmp_path, h, w, dtype):
    scene = noise_scene(tmp_path, h, w)
    out = {}
    for pipelined in (False, True):
        path = tmp_path / f"p{pipelined}.tif"
        opts = PredictOptions(tile=128, overlap=32, batch=3, dtype=dtype, threshold=0.5, pipelined=pipelined)
        predict_scene(mixing_model, scene, path, opts, progress=False)
        with rasterio.open(path) as ds, rasterio.open(tmp_path / f"p{pipelined}_binary.tif") as b:
            out[pipelined] = (ds.read(), ds.read_masks(1), b.read())
    for a, b in zip(out[False], out[True]):
        np.testing.assert_array_equal(a, b)


def test_keras_models_get_uint8_windows_scaled_in_their_graph(tmp_path):
    from roofseg._tf import keras

    scene = noise_scene(tmp_path, 256, 256)
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Lambda(lambda x: x[..., :1])(inp))
    predict_scene(
        model, scene, tmp_path / "k.tif", PredictOptions(tile=128, overlap=0, dtype="float32"), progress=False
    )
    predict_scene(
        lambda b: b[..., :1],
        scene,
        tmp_path / "c.tif",
        PredictOptions(tile=128, overlap=0, dtype="float32"),
        progress=False,
    )
    with rasterio.open(tmp_path / "k.tif") as k, rasterio.open(tmp_path / "c.tif") as c:
        # TF divides by multiplying with 1/255: the same scaling, to the last bit or so
        np.testing.assert_allclose(k.read(), c.read(), rtol=0, atol=1e-7)


class Boom(Exception):
    pass


@pytest.mark.parametrize("stage", ["read", "model", "write"])
def test_a_failure_in_any_stage_stops_the_run_and_leaves_nothing(tmp_path, monkeypatch, stage):
    import roofseg.prediction.rasters.predict as pp

    scene = noise_scene(tmp_path, 700, 600)
    calls = {"n": 0}

    def fail_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Boom(stage)

    model = mixing_model
    if stage == "read":
        real = pp.Scene.read
        monkeypatch.setattr(pp.Scene, "read", lambda self, *a: fail_on_third() or real(self, *a))
    elif stage == "model":
        model = lambda b: fail_on_third() or mixing_model(b)  # noqa: E731
    else:
        real_write = pp._write_band
        monkeypatch.setattr(pp, "_write_band", lambda *a: fail_on_third() or real_write(*a))
    before = threading.active_count()
    with pytest.raises(Boom):
        predict_scene(
            model,
            scene,
            tmp_path / "p.tif",
            PredictOptions(tile=128, overlap=32, batch=2, threshold=0.5),
            progress=False,
        )
    assert threading.active_count() == before  # reader and writer joined
    assert sorted(os.listdir(tmp_path)) == [scene.name]  # no output, no temporary
