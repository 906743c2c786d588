"""Batched augmentation as TensorFlow ops: one geometry for image and mask, photometry on the image.

Geometry: mirror, rotation, and scale (another ground resolution). Photometry (see
:mod:`roofseg.pipeline.photometry`): brightness, contrast, hue, saturation, per-band gain, gamma,
randomized histogram matching, blur and JPEG artefacts. Each has its own switch in
:class:`roofseg.contracts.augment.AugmentConfig` (0 turns it off).

Everything is stateless random from a ``[2]`` seed, so the same seed gives the same batch, and
the ops run wherever the caller runs them: on the GPU inside a training step, on each replica
under MirroredStrategy, or in the tf.data graph on the host.
"""

from __future__ import annotations

import math

from roofseg._tf import tf
from roofseg.contracts.augment import AugmentConfig
from roofseg.pipeline import photometry


def projective_transforms(
    flips: tf.Tensor, angles: tf.Tensor, height: tf.Tensor, width: tf.Tensor, zooms: tf.Tensor | None = None
) -> tf.Tensor:
    """The (B, 8) transforms mapping output pixels to input pixels: zoom, mirror left-right, rotate.

    ``flips`` (B,) bool, ``angles`` (B,) radians counter-clockwise about the image centre,
    ``zooms`` (B,) magnifications about the centre (2: roofs look twice their size, as at half the
    GSD). The form is that of ``ImageProjectiveTransformV3`` (x is the column, y the row).
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
    m = tf.matmul(rot, mirror)
    if zooms is not None:
        inv = 1.0 / zooms  # an output pixel reads the input nearer the centre when magnified
        zoom = tf.stack(
            [inv, zeros, w1 / 2.0 * (1 - inv), zeros, inv, h1 / 2.0 * (1 - inv), zeros, zeros, ones], axis=1
        )
        m = tf.matmul(m, tf.reshape(zoom, [-1, 3, 3]))
    m = tf.reshape(m, [-1, 9])
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
    """Randomly flip, rotate, zoom and recolour a batch; masks get the same geometry only.

    ``images`` (B, H, W, C) float in [0, 1]; ``masks`` (B, H, W, K) float in {0, 1}; ``seed`` a
    shape-[2] integer tensor. Images are resampled bilinearly, masks by nearest neighbour, so
    masks stay binary; the output image is clipped to [0, 1].
    """
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 10)
    batch = tf.shape(images)[0]
    flips = tf.random.stateless_uniform([batch], seeds[0]) < 0.5 if config.flip else tf.zeros([batch], tf.bool)
    limit = config.max_angle * math.pi / 180.0
    angles = tf.random.stateless_uniform([batch], seeds[1], -limit, limit)
    zooms = None
    if config.scale:
        span = math.log1p(config.scale)
        zooms = tf.exp(tf.random.stateless_uniform([batch], seeds[4], -span, span))
    transforms = projective_transforms(flips, angles, tf.shape(images)[1], tf.shape(images)[2], zooms)
    images = warp(images, transforms, "BILINEAR")
    masks = warp(masks, transforms, "NEAREST")
    if config.histogram_match:
        images = photometry.histogram_match(images, seeds[5], config.histogram_match)
    if config.hue or config.saturation:
        if images.shape[-1] == 3:
            images = photometry.hue_saturation(images, seeds[6], config.hue, config.saturation)
    if config.gain or config.gamma:
        images = photometry.gain_gamma(images, seeds[7], config.gain, config.gamma)
    if config.brightness:
        images = images + tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], -config.brightness, config.brightness)
    if config.contrast:
        factor = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], 1 - config.contrast, 1 + config.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = (images - mean) * factor + mean
    if config.blur:
        images = photometry.blur(images, seeds[8], config.blur)
    if config.jpeg:
        images = photometry.jpeg(images, seeds[9], config.jpeg)
    return tf.clip_by_value(images, 0.0, 1.0), masks
