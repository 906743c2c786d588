"""Training precision: auto chooses bfloat16 only where it pays; a bfloat16 run's model predicts in float32."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from roofseg.training.precision import choose_precision, float32_config


@pytest.mark.parametrize(
    "flags, gpus, chosen",
    [
        ({"avx512f", "amx_bf16", "amx_tile", "avx512_bf16"}, [], "bfloat16"),
        ({"avx512f", "avx512_bf16"}, [], "float32"),  # Zen 4: measured 1.0x
        ({"avx2"}, [], "float32"),
        ({"avx2"}, [(8, 0), (9, 0)], "bfloat16"),
        ({"amx_bf16"}, [(8, 6), (7, 5)], "float32"),  # one old GPU: float32 on all
    ],
)
def test_auto_chooses_bfloat16_where_it_pays_and_says_why(flags, gpus, chosen):
    precision, why = choose_precision("auto", frozenset(flags), gpus)
    assert precision == chosen and why
    assert choose_precision("bfloat16", frozenset(), [])[0] == "bfloat16"  # asked for: as asked


def test_mixed_policies_in_a_saved_config_become_float32():
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "Conv2D", "config": {"name": "mixed_conv", "dtype": "mixed_bfloat16"}},
                {
                    "class_name": "BatchNormalization",
                    "config": {
                        "dtype": {"module": "keras", "class_name": "Policy", "config": {"name": "mixed_bfloat16"}}
                    },
                },
                {"class_name": "Activation", "config": {"dtype": "float32"}},
            ]
        },
    }
    out = float32_config(config)
    layers = out["config"]["layers"]
    assert layers[0]["config"] == {"name": "mixed_conv", "dtype": "float32"}  # a layer's name is left alone
    assert layers[1]["config"]["dtype"]["config"]["name"] == "float32" and layers[2]["config"]["dtype"] == "float32"


@pytest.mark.slow
def test_a_bfloat16_run_records_it_and_its_model_predicts_in_float32(manifest, tmp_path):
    from roofseg._tf import keras
    from roofseg.contracts.card import read_card
    from roofseg.training.model import load_model
    from roofseg.training.train import TrainConfig, train

    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(tmp_path / "run"),
        encoder_weights="none",
        epochs=1,
        batch_size=2,
        steps_per_epoch=2,
        validation_steps=1,
        learning_rate=1e-3,
        strategy="default",
        samples=1,
        precision="bfloat16",
    )
    train(cfg, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # put back for what runs next
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["precision"] == "bfloat16"
    card = read_card(run / "best.keras")
    assert card.precision == "bfloat16" and card.trained_on.steps == 2
    with zipfile.ZipFile(run / "best.keras") as zf:
        saved = zf.read("config.json").decode()
    assert '"name": "mixed_bfloat16"' not in saved and '"name": "float32"' in saved
    model = load_model(run / "best.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    out = model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0)
    assert out.dtype == np.float32


def test_a_resumed_run_keeps_the_precision_it_started_with(tmp_path, monkeypatch):
    from roofseg.training import train as training
    from roofseg.training.train import TrainConfig, resolve_precision

    monkeypatch.setattr(training, "choose_precision", lambda asked: ("float32", "this machine's choice"))
    cfg = TrainConfig("m.json", str(tmp_path))
    assert resolve_precision(cfg, tmp_path)[0] == "float32"  # a new run: auto decides
    (tmp_path / "config.json").write_text(json.dumps({"precision": "bfloat16"}))
    (tmp_path / "backup").mkdir()
    assert resolve_precision(cfg, tmp_path) == ("bfloat16", "the precision this run started with")


@pytest.mark.slow
def test_train_with_its_defaults_on_an_amx_cpu_trains_in_bfloat16(manifest, tmp_path, run_cli, monkeypatch):
    """The command's own path (``--precision auto``, the mirrored strategy): on a CPU with AMX,
    auto chooses bfloat16 and an epoch ends with its streaming metrics read across replicas.
    bfloat16 is emulated where the CPU has no AMX, so one step of tiny tiles is what runs."""
    from roofseg.training import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx512f", "amx_bf16"}))
    run = tmp_path / "run"
    result = run_cli(
        "train", manifest, "-o", run, "--encoder-weights", "none", "--epochs", 1, "--batch", 2,
        "--steps-per-epoch", 1, "--validation-steps", 1,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "training in bfloat16" in result.out
    assert json.loads((run / "config.json").read_text())["precision"] == "bfloat16"
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2 and "val_iou_score" in history[0]  # the epoch ended and its metrics were read
    from roofseg.contracts.card import read_card

    ledger = read_card(run / "best.keras").trained_on.ledger.to_dict()
    assert ledger["steps"] == 1 and ledger["runs"][0]["precision"] == "bfloat16"
