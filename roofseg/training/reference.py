"""The colour reference a model's card keeps: band quantiles of its training tiles (for
``--match-colours``, :mod:`roofseg.raster.colours`)."""

from __future__ import annotations

import os

import numpy as np

from roofseg.contracts.provenance import ColourReference
from roofseg.contracts.tile import read_records
from roofseg.pipeline.dataset import shards_of
from roofseg.raster import colours

REFERENCE_TILES = 256  # tiles the reference is taken from, spread over the training shards


def tiles_reference(manifest: str | os.PathLike, tiles: int = REFERENCE_TILES) -> ColourReference | None:
    """The band quantiles of up to ``tiles`` training tiles of ``manifest`` (valid pixels: those a
    tile does not pad), or None where the split has too few pixels."""
    shards = shards_of(manifest, "train")
    per_shard = max(1, -(-tiles // max(1, len(shards.files))))
    images, valid = [], []
    for path in shards.files:
        records = read_records(path, shards.compression)
        step = max(1, len(records) // per_shard)
        for rec in records[::step][:per_shard]:
            h, w = int(rec["valid_height"]), int(rec["valid_width"])
            images.append(rec["image"][:h, :w])
            valid.append(rec["image"][:h, :w].any(axis=-1))
    if not images:
        return None
    try:
        return colours.reference(images, valid)
    except ValueError:
        return None


def quantiles_of(reference: ColourReference) -> np.ndarray:
    return np.asarray(reference.quantiles, np.float32)
