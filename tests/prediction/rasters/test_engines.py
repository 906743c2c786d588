"""Prediction engines: the ONNX export (roofseg's layout and Deepness'), ONNX Runtime and OpenVINO
behind the one Inference, agreeing with TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from conftest import one_error_line
from helpers import scenes_in

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


def two_headed(seed: int = 0):
    """A small Keras model with roof and contact outputs, saved with a card as roofseg writes it."""
    from roofseg._tf import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.UpSampling2D()(x)
    return keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same", activation="sigmoid")(x))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from helpers import write_card_dict as write_model_card

    path = tmp_path_factory.mktemp("model") / "m.keras"
    two_headed().save(path)
    write_model_card(
        path,
        {
            "gsd_m": 0.3,
            "tile_size": 256,
            "outputs": ["roof", "contact"],
            "postprocess": {"threshold": 0.45, "min_area": 6.0, "contact_cut": 0.5, "regularize": False},
        },
    )
    return path


def test_the_onnx_export_equals_keras_in_both_layouts_with_deepness_metadata(model_file, tmp_path, run_cli):
    from roofseg.training.model import load_model

    net = load_model(model_file, compile=False)
    for layout, shape, extra in (("roofseg", (3, 96, 64, 3), ()), ("deepness", (3, 64, 64, 3), ("--tile-size", "64"))):
        batch = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
        want = net(batch.astype(np.float32) / 255.0, training=False).numpy()
        out = tmp_path / f"{layout}.onnx"
        assert run_cli("export", model_file, out, "--layout", layout, *extra).code == 0
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        assert names == ["roof", "contact"]  # the roof first: a Deepness that reads one output reads the roof
        feed = batch if layout == "roofseg" else (batch.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
        got = session.run(None, {session.get_inputs()[0].name: feed})
        both = np.concatenate(got, axis=-1 if layout == "roofseg" else 1)
        if layout == "deepness":
            both = both.transpose(0, 2, 3, 1)
        np.testing.assert_allclose(both, want, atol=1e-4)
        meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
        assert meta["roofseg_card"]["gsd_m"] == 0.3
    assert meta["model_type"] == "Segmentor" and meta["class_names"] == [{"0": "roof"}, {"0": "contact"}]
    assert meta["resolution"] == 30.0 and meta["tile_size"] == meta["tiles_size"] == 64 and meta["seg_thresh"] == 0.45
    # Deepness runs a median filter of side seg_small_segment (made odd) over its class map: at the
    # card's GSD (0.3 m) it wipes out specks under a square metre and keeps a 4 x 4 m roof but for
    # its corners
    import cv2

    side = int(meta["seg_small_segment"] // 2) * 2 + 1
    classes = np.zeros((120, 120), np.uint8)
    classes[10:13, 10:13] = 1  # 3 x 3 px at 0.3 m: 0.8 m²
    classes[60:73, 60:73] = 1  # 13 x 13 px: 15 m²
    kept = cv2.medianBlur(classes, side)
    assert kept[:40, :40].sum() == 0
    assert kept[60:73, 60:73].sum() >= 0.9 * 13 * 13 and kept.sum() == kept[60:73, 60:73].sum()
    assert one_error_line(run_cli("export", model_file, tmp_path / "roofseg.onnx")).endswith(
        "exists; use --overwrite to replace it"
    )


def test_deepness_can_load_the_export_at_the_cards_tile_size(model_file, tmp_path, run_cli):
    """What Deepness checks when it loads a segmentation model: its tile size is the input's last
    dimension (an int, as its tile-size box takes), square tiles, 4-D outputs of one channel each,
    as many as class_names has dicts; the batch may be left open."""
    out = tmp_path / "deepness.onnx"
    result = run_cli("export", model_file, out, "--layout", "deepness")
    assert result.code == 0 and "tiles 256 px" in result.out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.shape[1:] == [3, 256, 256] and isinstance(image.shape[0], str)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["tile_size"]) == image.shape[-1]
    outputs = session.get_outputs()
    assert len(outputs) == len(json.loads(meta["class_names"]))
    assert all(o.shape[1:] == [1, 256, 256] for o in outputs)
    batch = np.random.default_rng(1).random((2, 3, 256, 256), np.float32)
    assert all(r.shape == (2, 1, 256, 256) for r in session.run(None, {image.name: batch}))
    bad = one_error_line(
        run_cli("export", model_file, tmp_path / "x.onnx", "--layout", "deepness", "--tile-size", "100")
    )
    assert "multiple of 32" in bad and not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("engine", ["onnx", "openvino"])
def test_engines_predict_a_scene_as_tensorflow_does(model_file, tmp_path, engine):
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.engines import converted, installed, load_predictor
    from roofseg.prediction.rasters.inference import Inference
    from roofseg.prediction.rasters.predict import predict_scene
    from roofseg.training.model import load_model

    if not installed(engine):
        pytest.skip(f"{engine} is not installed")
    scene = scenes_in(tmp_path / "in", 1, size=150)[0]
    opts = PredictOptions(tile=64, overlap=16, batch=4, dtype="float32")
    predict_scene(load_model(model_file, compile=False), scene, tmp_path / "tf.tif", opts, progress=False)
    cached = converted(model_file)
    stamp = cached.stat().st_mtime_ns
    net = load_predictor(model_file, engine)
    assert (
        net.channels == 2 and converted(model_file) == cached and cached.stat().st_mtime_ns == stamp
    )  # converted once
    predict_scene(
        Inference(net, tta=True),
        scene,
        tmp_path / "e_tta.tif",
        PredictOptions(tile=64, overlap=16, tta=True),
        progress=False,
    )
    predict_scene(Inference(net), scene, tmp_path / "e.tif", opts, progress=False)
    with rasterio.open(tmp_path / "tf.tif") as a, rasterio.open(tmp_path / "e.tif") as b:
        assert b.count == 2
        assert np.abs(a.read() - b.read()).max() < 1 / 255


def test_a_missing_engine_says_what_to_install(model_file, tmp_path, run_cli, monkeypatch):
    import roofseg.prediction.rasters.engines as engines

    monkeypatch.setattr(engines, "installed", lambda engine: engine == "tf")
    scene = scenes_in(tmp_path / "in", 1)[0]
    line = one_error_line(run_cli("predict", model_file, scene, tmp_path / "p.tif", "--engine", "openvino", "--quiet"))
    assert "pip install 'roofseg[openvino]'" in line
    assert engines.choose("auto", gpus=False) == "tf"


def test_engine_outputs_with_a_unit_axis_more_join_into_channels():
    from roofseg.prediction.rasters.engines import _OnnxBase

    batch = np.zeros((3, 8, 6, 3), np.uint8)
    roof, contact = np.random.default_rng(0).random((2, 3, 8, 6, 1)).astype(np.float32)
    joined = _OnnxBase._joined(
        [roof, contact[None]], batch
    )  # as OpenVINO gave a trained model's contact: (1, n, h, w, 1)
    assert joined.shape == (3, 8, 6, 2)
    np.testing.assert_array_equal(joined[..., 1:], contact)


def test_bfloat16_is_asked_for_runs_on_openvino_alone_and_is_recorded(model_file, tmp_path, run_cli):
    from roofseg.errors import RoofsegError
    from roofseg.prediction.many import run_record
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.engines import choose, installed

    scene = scenes_in(tmp_path / "in", 1, size=150)[0]
    line = one_error_line(
        run_cli("predict", model_file, scene, tmp_path / "p.tif", "--engine", "onnx", "--precision", "bf16", "--quiet")
    )
    assert "--precision bf16 runs on OpenVINO" in line and not (tmp_path / "p.tif").exists()
    with pytest.raises(RoofsegError):
        choose("tf", gpus=False, precision="bf16")
    # float32 runs keep the record they had (a resumed run is not redone); bfloat16 is part of what was made
    assert "precision" not in run_record(PredictOptions(), None, None).options
    assert run_record(PredictOptions(precision="bf16"), None, None).options["precision"] == "bf16"
    if not installed("openvino"):
        pytest.skip("openvino is not installed")
    from roofseg.prediction.rasters.engines import OpenVinoModel, converted, native_bf16

    assert OpenVinoModel(converted(model_file)).compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    outs = {}
    for precision in ("f32", "bf16"):
        out = tmp_path / f"{precision}.tif"
        result = run_cli(
            "predict",
            model_file,
            scene,
            out,
            "--engine",
            "openvino",
            "--precision",
            precision,
            "--dtype",
            "float32",
            "--quiet",
        )
        assert result.code == 0, result.err
        assert ("no bfloat16 arithmetic" in result.err) == (precision == "bf16" and not native_bf16())
        with rasterio.open(out) as ds:
            outs[precision] = ds.read()
    difference = np.abs(outs["f32"] - outs["bf16"]).max()
    assert difference < 0.05
    assert (difference > 0) == native_bf16()  # bfloat16 arithmetic was used where the CPU has it


def test_bfloat16_on_a_cpu_without_it_is_said_and_float32_used(model_file, monkeypatch):
    import roofseg.prediction.rasters.engines as engines

    if not engines.installed("openvino"):
        pytest.skip("openvino is not installed")
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no bfloat16 arithmetic"):
        net = engines.OpenVinoModel(engines.converted(model_file), "bf16")
    assert net.precision == "f32"
    assert net.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"


def test_the_first_conversion_is_said_on_the_terminal_once(model_file, tmp_path):
    import shutil
    import subprocess
    import sys

    from helpers import ROOT

    model = tmp_path / "m.keras"
    shutil.copy(model_file, model)
    scene = scenes_in(tmp_path / "in", 1, size=150)[0]
    said = []
    for out in ("a.tif", "b.tif"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "roofseg.cli",
                "predict",
                str(model),
                str(scene),
                str(tmp_path / out),
                "--engine",
                "onnx",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-1500:]
        said.append(f"converting m.keras to ONNX, once (kept in {tmp_path / '.roofseg-cache'})" in proc.stderr)
    assert said == [True, False]


@pytest.mark.parametrize("damage", ["cut", "empty"])
def test_a_broken_cached_export_is_made_again(model_file, tmp_path, damage):
    import shutil
    import warnings

    from roofseg.prediction.rasters.engines import converted, installed

    if not (installed("onnx") or installed("openvino")):
        pytest.skip("no ONNX engine installed")
    model = tmp_path / "m.keras"
    shutil.copy(model_file, model)
    first = converted(model)
    whole = first.read_bytes()
    first.write_bytes(whole[: len(whole) // 3] if damage == "cut" else b"")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        again = converted(model)
    import onnx

    assert again == first and len(onnx.load(str(again)).graph.node) == len(onnx.load_from_string(whole).graph.node)
    assert any("broken" in str(w.message) for w in said)
