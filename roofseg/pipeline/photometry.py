"""Photometric augmentation as batched TensorFlow ops: what changes between cities, sensors and
seasons but not where the roofs are.

Each function takes images (B, H, W, C) float in [0, 1], per-image random draws from a stateless
``[2]`` seed, and returns images of the same shape, not yet clipped. The ops are those a GPU runs
(plus the JPEG codec, which TensorFlow places on the host).
"""

from __future__ import annotations

import math

from roofseg._tf import tf

LEVELS = 256  # histogram bins: the levels of the uint8 imagery the tiles hold


def _per_image(batch: tf.Tensor, seed: tf.Tensor, low: float, high: float, channels: int = 1) -> tf.Tensor:
    return tf.random.stateless_uniform([batch, 1, 1, channels], seed, low, high)


def _chosen(batch: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """(B, 1, 1, 1) bool: which images of the batch get an op applied with ``probability``."""
    return tf.random.stateless_uniform([batch, 1, 1, 1], seed) < probability


def hue_saturation(images: tf.Tensor, seed: tf.Tensor, hue: float, saturation: float) -> tf.Tensor:
    """Hue turned by ±``hue`` of a full turn, saturation scaled by 1 ± ``saturation`` (3-band images)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(images, 0.0, 1.0))
    h = tf.math.floormod(hsv[..., :1] + _per_image(batch, seeds[0], -hue, hue), 1.0)
    s = tf.clip_by_value(hsv[..., 1:2] * _per_image(batch, seeds[1], 1 - saturation, 1 + saturation), 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.concat([h, s, hsv[..., 2:]], -1))


def gain_gamma(images: tf.Tensor, seed: tf.Tensor, gain: float, gamma: float) -> tf.Tensor:
    """Each band scaled by its own 1 ± ``gain`` (a sensor's or a mosaic's colour balance), then the
    image raised to a gamma drawn log-uniformly from [1 / (1 + ``gamma``), 1 + ``gamma``]."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch, bands = tf.shape(images)[0], images.shape[-1]
    out = images * _per_image(batch, seeds[0], 1 - gain, 1 + gain, bands)
    if gamma:
        limit = math.log1p(gamma)
        exponent = tf.exp(_per_image(batch, seeds[1], -limit, limit))
        out = tf.pow(tf.clip_by_value(out, 1e-6, 1.0), exponent)
    return out


def data_pixels(images: tf.Tensor) -> tf.Tensor:
    """(B, H, W) True where a pixel holds data: nodata and a tile's padding are read as 0 in every
    band (see roofseg.raster.scene), which no imagery is elsewhere to the level."""
    return tf.reduce_any(images > 0.5 / (LEVELS - 1), axis=-1)


def histograms(images: tf.Tensor, valid: tf.Tensor | None = None) -> tf.Tensor:
    """(B, C, LEVELS) counts of each band's levels (images in [0, 1], quantized to 256 levels),
    over the ``valid`` pixels (B, H, W) alone where given."""
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * (LEVELS - 1)), tf.int32)
    per_band = tf.reshape(tf.transpose(levels, [0, 3, 1, 2]), [tf.shape(images)[0], images.shape[-1], -1])
    flat = tf.reshape(per_band, [-1, tf.shape(per_band)[-1]])
    weights = None
    if valid is not None:
        mask = tf.reshape(tf.cast(valid, tf.float32), [tf.shape(images)[0], 1, -1])
        weights = tf.reshape(tf.broadcast_to(mask, tf.shape(per_band)), tf.shape(flat))
    counts = tf.math.bincount(flat, weights=weights, minlength=LEVELS, maxlength=LEVELS, axis=-1, dtype=tf.float32)
    return tf.reshape(counts, [tf.shape(images)[0], images.shape[-1], LEVELS])


def matching_lookup(source: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
    """(…, LEVELS) the value in [0, 1] each source level maps to so that the source's histogram
    becomes the reference's (both (…, LEVELS) counts): the classic CDF-to-CDF lookup."""
    src = tf.math.cumsum(source, -1) / tf.maximum(tf.reduce_sum(source, -1, keepdims=True), 1.0)
    ref = tf.math.cumsum(reference, -1) / tf.maximum(tf.reduce_sum(reference, -1, keepdims=True), 1.0)
    index = tf.searchsorted(ref, src, side="left")
    return tf.cast(tf.minimum(index, LEVELS - 1), tf.float32) / (LEVELS - 1)


def apply_lookup(images: tf.Tensor, lookup: tf.Tensor) -> tf.Tensor:
    """Images (B, H, W, C) with each band's levels replaced through ``lookup`` (B, C, LEVELS)."""
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * (LEVELS - 1)), tf.int32)
    per_band = tf.transpose(levels, [0, 3, 1, 2])  # (B, C, H, W)
    flat = tf.reshape(per_band, [tf.shape(images)[0], images.shape[-1], -1])
    mapped = tf.gather(lookup, flat, batch_dims=2)
    return tf.transpose(tf.reshape(mapped, tf.shape(per_band)), [0, 2, 3, 1])


def histogram_match(images: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """Randomized histogram matching (Yaras et al., IEEE JSTARS 2024): with ``probability``, an
    image takes the band histograms of another image of the batch, blended with itself by a
    weight drawn from [0, 1]: the model learns roofs under another city's colours. Histograms count
    the pixels that hold data alone, and nodata and padding stay as they are."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    batch = tf.shape(images)[0]
    valid = data_pixels(images)
    counts = histograms(images, valid)
    # each image's reference is another of the batch: a random non-zero shift of the batch order
    shift = tf.random.stateless_uniform([], seeds[0], 1, tf.maximum(batch, 2), tf.int32)
    reference = tf.roll(counts, shift, axis=0)
    matched = apply_lookup(images, matching_lookup(counts, reference))
    weight = _per_image(batch, seeds[1], 0.0, 1.0)
    blended = tf.where(valid[..., None], images + weight * (matched - images), images)
    return tf.where(_chosen(batch, seeds[2], probability), blended, images)


def _gaussian_kernel(sigma: float, bands: int) -> tf.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(x**2) / (2 * sigma**2))
    k = k / tf.reduce_sum(k)
    kernel = k[:, None] * k[None, :]
    return tf.tile(kernel[:, :, None, None], [1, 1, bands, 1])


def blur(images: tf.Tensor, seed: tf.Tensor, probability: float, sigma: float = 1.2) -> tf.Tensor:
    """With ``probability``, an image blended with its Gaussian blur (σ ``sigma`` px) by a weight
    drawn from [0, 1]: soft imagery of another sensor, a resampled mosaic, haze."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    kernel = _gaussian_kernel(sigma, images.shape[-1])
    blurred = tf.nn.depthwise_conv2d(
        tf.pad(images, [[0, 0], [kernel.shape[0] // 2] * 2, [kernel.shape[1] // 2] * 2, [0, 0]], mode="REFLECT"),
        kernel,
        strides=[1, 1, 1, 1],
        padding="VALID",
    )
    weight = _per_image(batch, seeds[0], 0.0, 1.0)
    return tf.where(_chosen(batch, seeds[1], probability), images + weight * (blurred - images), images)


def jpeg(images: tf.Tensor, seed: tf.Tensor, probability: float, quality: tuple[int, int] = (30, 90)) -> tf.Tensor:
    """With ``probability``, an image recompressed as a JPEG of a quality drawn from ``quality``: the
    block artefacts of OpenAerialMap's and tile servers' JPEG tiles."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    per_image = tf.random.experimental.stateless_split(seeds[0], batch)

    def one(args):
        image, s = args
        return tf.image.stateless_random_jpeg_quality(tf.clip_by_value(image, 0.0, 1.0), quality[0], quality[1], s)

    coded = tf.map_fn(one, (images, per_image), fn_output_signature=tf.TensorSpec(images.shape[1:], images.dtype))
    return tf.where(_chosen(batch, seeds[1], probability), coded, images)
