"""Batched augmentation as TensorFlow ops: one geometry for image and mask, photometry on the image.

Everything is stateless random from a ``[2]`` seed, so the same seed gives the same batch, and
the ops run wherever the caller runs them: on the GPU inside a training step, on each replica
under MirroredStrategy, or in the tf.data graph on the host.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from roofseg._tf import tf


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (all on by default, as the field usually trains)."""

    flip: bool = True
    max_angle: float = 30.0  # degrees, rotation drawn from [-max_angle, max_angle]
    brightness: float = 0.1  # added to [0, 1] images, drawn from [-brightness, brightness]
    contrast: float = 0.2  # contrast factor drawn from [1 - contrast, 1 + contrast]

    def to_dict(self) -> dict:
        return asdict(self)


def projective_transforms(flips: tf.Tensor, angles: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """The (B, 8) transforms mapping output pixels to input pixels: mirror left-right, then rotate.

    ``flips`` (B,) bool, ``angles`` (B,) radians counter-clockwise about the image centre. The
    form is that of ``ImageProjectiveTransformV3`` (x is the column, y the row).
    """
    w1 = tf.cast(width, tf.float32) - 1.0
    h1 = tf.cast(height, tf.float32) - 1.0
    cos, sin = tf.cos(angles), tf.sin(angles)
    zeros, ones = tf.zeros_like(cos), tf.ones_like(cos)
    # rotation about the centre (the transform tfa.image.rotate builds)
    x_off = (w1 - (cos * w1 - sin * h1)) / 2.0
    y_off = (h1 - (sin * w1 + cos * h1)) / 2.0
    rot = tf.stack([cos, -sin, x_off, sin, cos, y_off, zeros, zeros, ones], axis=1)
    rot = tf.reshape(rot, [-1, 3, 3])
    s = tf.where(flips, -ones, ones)  # x -> (w - 1) - x where flipped
    mirror = tf.stack([s, zeros, tf.where(flips, w1 * ones, zeros), zeros, ones, zeros, zeros, zeros, ones], axis=1)
    mirror = tf.reshape(mirror, [-1, 3, 3])
    m = tf.reshape(tf.matmul(rot, mirror), [-1, 9])
    return m[:, :8]


def warp(images: tf.Tensor, transforms: tf.Tensor, interpolation: str) -> tf.Tensor:
    """Apply per-image projective ``transforms`` with reflect fill (the kernel tfa.image.rotate calls)."""
    shape = tf.shape(images)[1:3]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape,
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="REFLECT",
    )
    return tf.ensure_shape(out, images.shape)


def augment(
    images: tf.Tensor, masks: tf.Tensor, seed, config: AugmentConfig = AugmentConfig()
) -> tuple[tf.Tensor, tf.Tensor]:
    """Randomly flip, rotate, brighten and re-contrast a batch; masks get the same geometry only.

    ``images`` (B, H, W, C) float in [0, 1]; ``masks`` (B, H, W, 1) float in {0, 1}; ``seed`` a
    shape-[2] integer tensor. Images are resampled bilinearly, masks by nearest neighbour, so
    masks stay binary; the output image is clipped to [0, 1].
    """
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    batch = tf.shape(images)[0]
    flips = tf.random.stateless_uniform([batch], seeds[0]) < 0.5 if config.flip else tf.zeros([batch], tf.bool)
    limit = config.max_angle * math.pi / 180.0
    angles = tf.random.stateless_uniform([batch], seeds[1], -limit, limit)
    transforms = projective_transforms(flips, angles, tf.shape(images)[1], tf.shape(images)[2])
    images = warp(images, transforms, "BILINEAR")
    masks = warp(masks, transforms, "NEAREST")
    if config.brightness:
        images = images + tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], -config.brightness, config.brightness)
    if config.contrast:
        factor = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], 1 - config.contrast, 1 + config.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = (images - mean) * factor + mean
    return tf.clip_by_value(images, 0.0, 1.0), masks
