"""Zoom and the photometric augmentations: each changes what it should and leaves the mask alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from roofseg._tf import tf
from roofseg.contracts.augment import AugmentConfig
from roofseg.pipeline import photometry
from roofseg.pipeline.augment import augment, projective_transforms, warp

OFF = AugmentConfig.off()


def scene_like(batch: int = 4, size: int = 64, seed: int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """Textured colour tiles with square roofs."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.2, 0.6, (batch, size, size, 3)).astype(np.float32)
    masks = np.zeros((batch, size, size, 1), np.float32)
    masks[:, 20:40, 24:44] = 1
    images[masks[..., 0] > 0] = [0.8, 0.3, 0.2]
    return tf.constant(images), tf.constant(masks)


def test_a_zoom_of_two_doubles_a_centred_roof_and_a_half_halves_it():
    masks = np.zeros((2, 64, 64, 1), np.float32)
    masks[:, 24:40, 24:40] = 1  # 16 px about the centre
    t = projective_transforms(tf.constant([False, False]), tf.zeros([2]), 64, 64, tf.constant([2.0, 0.5]))
    out = warp(tf.constant(masks), t, "NEAREST").numpy()[..., 0]
    rows = out.any(axis=1).sum(axis=1)
    assert abs(rows[0] - 32) <= 1
    # zoomed out, the reflected surroundings repeat the roof: the centre one is 8 px
    assert abs(out[1, 32].reshape(-1)[28:36].sum() - 8) <= 1 and out[1, 32, 27] == 0 and out[1, 32, 36] == 0


def test_zoom_draws_stay_within_the_range_and_keep_image_and_mask_together():
    images, masks = scene_like(batch=16)
    out_i, out_m = augment(images, masks, tf.constant([1, 2]), replace(OFF, scale=0.3))
    area = out_m.numpy().sum(axis=(1, 2, 3))
    ratio = area / masks.numpy()[0].sum()
    assert ratio.min() >= 1 / 1.3**2 - 0.05 and ratio.max() <= 1.3**2 + 0.05
    assert ratio.std() > 0.05  # different zooms drawn across the batch
    red = np.isclose(out_i.numpy(), [0.8, 0.3, 0.2], atol=0.02).all(-1)
    inside = out_m.numpy()[..., 0] > 0
    assert red[inside].mean() > 0.9


@pytest.mark.parametrize(
    "change",
    [
        {"hue": 0.1},
        {"saturation": 0.5},
        {"gain": 0.3},
        {"gamma": 0.5},
        {"histogram_match": 1.0},
        {"blur": 1.0},
        {"jpeg": 1.0},
    ],
    ids=lambda c: next(iter(c)),
)
def test_each_photometric_switch_changes_the_image_alone(change):
    images, masks = scene_like()
    out_i, out_m = augment(images, masks, tf.constant([3, 4]), replace(OFF, **change))
    np.testing.assert_array_equal(out_m.numpy(), masks.numpy())
    assert np.abs(out_i.numpy() - images.numpy()).mean() > 1e-3
    assert out_i.numpy().min() >= 0.0 and out_i.numpy().max() <= 1.0


def test_matching_takes_the_reference_histogram():
    rng = np.random.default_rng(1)
    dark = rng.uniform(0.0, 0.4, (1, 32, 32, 3)).astype(np.float32)
    bright = rng.uniform(0.5, 1.0, (1, 32, 32, 3)).astype(np.float32)
    counts = photometry.histograms(tf.constant(np.concatenate([dark, bright])))
    lookup = photometry.matching_lookup(counts[:1], counts[1:])
    matched = photometry.apply_lookup(tf.constant(dark), lookup).numpy()
    for band in range(3):
        q = np.linspace(0.05, 0.95, 10)
        np.testing.assert_allclose(np.quantile(matched[..., band], q), np.quantile(bright[..., band], q), atol=0.02)
    # the order of levels is kept: a darker pixel stays no brighter
    order = np.argsort(dark[0, ..., 0].ravel())
    assert (np.diff(matched[0, ..., 0].ravel()[order]) >= -1e-6).all()


def test_blur_smooths_and_jpeg_codes_in_blocks():
    rng = np.random.default_rng(2)
    noise = tf.constant(rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32))
    seed = tf.constant([5, 6], tf.int64)
    blurred = photometry.blur(noise, seed, 1.0).numpy()
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(noise.numpy(), axis=1)).mean()
    coded = photometry.jpeg(noise, seed, 1.0).numpy()
    assert np.abs(coded - noise.numpy()).mean() > 0.02


def test_a_config_from_an_older_run_has_the_new_augmentations_off():
    old = {"flip": True, "max_angle": 30.0, "brightness": 0.1, "contrast": 0.2}
    cfg = AugmentConfig.from_dict(old)
    assert cfg.max_angle == 30.0 and cfg.flip
    assert cfg.scale == 0 and cfg.histogram_match == 0 and cfg.jpeg == 0
    assert AugmentConfig.from_dict(AugmentConfig().to_dict()) == AugmentConfig()


def test_make_base_trains_with_the_recipe_the_shipped_base_records():
    import re

    from roofseg.cli.options import augment_config
    from roofseg.contracts.augment import CITIES

    from helpers import ROOT

    flags = re.search(r"^BASE_AUGMENT \?= (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    given = {flags[k][2:].replace("-", "_"): float(flags[k + 1]) for k in range(0, len(flags), 2)}
    defaults = {k: v for k, v in AugmentConfig().to_dict().items() if k != "flip"}
    assert augment_config(**{**defaults, **given}) == CITIES


def test_histogram_matching_neither_counts_nor_paints_nodata():
    """A valid tile matched to a partner that is half nodata (0 in every band) takes the partner's
    data histogram, not its zeros; and the partner's nodata stays nodata."""
    from roofseg.pipeline import photometry

    rng = np.random.default_rng(0)
    valid = rng.uniform(0.4, 0.6, (1, 32, 32, 3)).astype(np.float32)
    partner = rng.uniform(0.5, 0.7, (1, 32, 32, 3)).astype(np.float32)
    partner[:, :, 16:] = 0.0  # half nodata
    batch = tf.constant(np.concatenate([valid, partner]))
    out = photometry.histogram_match(batch, tf.constant([1, 2], tf.int64), 1.0).numpy()
    black = np.all(out[0] == 0, axis=-1).mean()
    assert black < 0.01, f"{black:.0%} of a valid tile set to nodata"
    assert np.all(out[1][:, 16:] == 0)  # nodata stays nodata
