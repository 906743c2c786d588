"""``roofseg train``."""

from __future__ import annotations


def test_a_missing_base_model_is_one_line_and_writes_no_run(manifest, tmp_path, run_cli):
    from conftest import one_error_line

    line = one_error_line(
        run_cli("train", manifest, "-o", tmp_path / "run", "--init-from", tmp_path / "no.keras", "--epochs", 1)
    )
    assert "no.keras" in line and "no such model file" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_manifest_of_a_newer_roofseg_is_one_line(tmp_path, run_cli):
    import json

    from conftest import one_error_line

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": "roofseg-tiles/7", "splits": {}}))
    line = one_error_line(run_cli("train", manifest, "-o", tmp_path / "run", "--encoder-weights", "none"))
    assert str(manifest) in line and "newer roofseg" in line


def test_a_gap_weight_with_dice_alone_is_one_line_and_writes_no_run(manifest, tmp_path, run_cli):
    from conftest import one_error_line

    args = ("train", manifest, "-o", tmp_path / "run", "--encoder-weights", "none", "--epochs", 1)
    line = one_error_line(run_cli(*args, "--loss", "dice", "--gap-weight", 10))
    assert "--gap-weight 10" in line and "dice" in line and "bce_dice" in line
    assert not (tmp_path / "run").exists()


def test_every_option_of_a_run_setting_defaults_to_the_librarys_setting():
    import dataclasses

    import click

    from roofseg.cli.train import train
    from roofseg.training.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    named = {"patience": "early_stopping_patience"}
    compared, ctx = 0, click.Context(train)
    for param in train.params:
        field = fields.get(named.get(param.name, param.name))
        if field is None or field.default is dataclasses.MISSING or param.required:
            continue
        default = param.get_default(ctx)
        assert default == field.default, (param.name, default, field.default)
        compared += 1
    assert compared >= 20
