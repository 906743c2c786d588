"""The GeoTIFF tags that say what a prediction raster holds, written by predict and read back by
evaluate-scene, tune, the vectors, the mosaic and a resumed run.

A raster without ``ROOFSEG_CONTENT`` is not roofseg's: readers then guess from its data type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from roofseg.contracts.card import PostProcess
from roofseg.contracts.targets import TARGETS

PREFIX = "ROOFSEG_"
CONTENT = "ROOFSEG_CONTENT"  # "probability" or "binary"
SCALE = "ROOFSEG_PROBABILITY_SCALE"  # the value that stands for probability 1 (255 or 1)
THRESHOLD = "ROOFSEG_THRESHOLD"  # on a binary raster: the roof probability from which a pixel is 1
BANDS = "ROOFSEG_BANDS"  # what each band holds: "roof", or "roof,contact"
RUN = "ROOFSEG_RUN"  # the stamp of the run record the raster was made under
POSTPROCESS = "ROOFSEG_POSTPROCESS"  # JSON: the post-processing its footprints were made with
PROBABILITY, BINARY = "probability", "binary"


def probability_scale(dtype: str) -> float:
    """The stored value that stands for probability 1 in a probability raster of ``dtype``."""
    return 255.0 if dtype == "uint8" else 1.0


@dataclass(frozen=True)
class RasterTags:
    """What a raster roofseg wrote holds."""

    content: str  # PROBABILITY or BINARY
    scale: float = 1.0  # the value of probability 1 (a binary raster: 1)
    bands: tuple[str, ...] = TARGETS[:1]
    threshold: float | None = None  # a binary raster's threshold
    run: str | None = None
    postprocess: PostProcess | None = None  # what made the footprints predict wrote from it

    @classmethod
    def probability(
        cls, dtype: str, channels: int, run: str | None = None, postprocess: PostProcess | None = None
    ) -> RasterTags:
        """The tags of a probability raster of ``dtype`` (uint8: 0–255; float32: 0–1) with ``channels`` bands."""
        names = TARGETS[:channels] if channels <= len(TARGETS) else tuple(f"channel {i}" for i in range(channels))
        return cls(PROBABILITY, probability_scale(dtype), tuple(names), None, run, postprocess)

    @classmethod
    def binary(cls, threshold: float) -> RasterTags:
        return cls(BINARY, 1.0, TARGETS[:1], threshold)

    def to_gdal(self) -> dict[str, str]:
        tags = {CONTENT: self.content}
        if self.content == PROBABILITY:
            tags[SCALE] = f"{self.scale:g}"
            tags[BANDS] = ",".join(self.bands)
        if self.threshold is not None:
            tags[THRESHOLD] = repr(self.threshold)
        if self.run is not None:
            tags[RUN] = self.run
        if self.postprocess is not None:
            tags[POSTPROCESS] = json.dumps(asdict(self.postprocess))
        return tags

    @classmethod
    def from_gdal(cls, tags: Mapping[str, str]) -> RasterTags | None:
        """The tags of a raster roofseg wrote, or None for any other raster."""
        content = tags.get(CONTENT)
        if content is None:
            return None
        return cls(
            content,
            float(tags.get(SCALE, 1)),
            tuple(tags.get(BANDS, TARGETS[0]).split(",")),
            float(tags[THRESHOLD]) if THRESHOLD in tags else None,
            tags.get(RUN),
            PostProcess(**json.loads(tags[POSTPROCESS])) if POSTPROCESS in tags else None,
        )


def read_tags(dataset) -> RasterTags | None:
    """The roofseg tags of an open rasterio dataset, or None for a raster roofseg did not write."""
    return RasterTags.from_gdal(dataset.tags())


def roofseg_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Only roofseg's own of a raster's tags (a mosaic carries them over from its sources)."""
    return {k: v for k, v in tags.items() if k.startswith(PREFIX)}
