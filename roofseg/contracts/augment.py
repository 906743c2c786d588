"""The augmentation a run trains with: ranges and chances, saved in its config.json (no TensorFlow here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and chances of the random augmentations; 0 (or False) turns one off.

    The defaults are what measured best in bench/parts.py (150 steps of 8×128² from random weights,
    trained on Dar es Salaam and Kathmandu, scored on Kampala at 0.075, 0.15 and 0.3 m): each of
    scale, colour, histogram matching, blur and JPEG lowered the mean pixel IoU there (0.631 →
    0.604 → 0.600 → 0.570 → 0.516, each added to the one before), so they are off unless asked for.
    :data:`CITIES` holds them all on, as the shipped base was trained.
    """

    flip: bool = True
    max_angle: float = 30.0  # degrees, rotation drawn from [-max_angle, max_angle]
    brightness: float = 0.1  # added to [0, 1] images, drawn from [-brightness, brightness]
    contrast: float = 0.2  # contrast factor drawn from [1 - contrast, 1 + contrast]
    scale: float = 0.0  # zoom drawn log-uniformly from [1 / (1 + scale), 1 + scale]: 0.3 is the GSD within ±30 %
    hue: float = 0.0  # hue turned by up to this fraction of a full turn (0.03 in CITIES)
    saturation: float = 0.0  # saturation scaled by 1 ± this (0.3)
    gain: float = 0.0  # each band scaled by its own 1 ± this (0.1)
    gamma: float = 0.0  # gamma drawn log-uniformly from [1 / (1 + gamma), 1 + gamma] (0.3)
    histogram_match: float = 0.0  # chance that a tile takes another tile's band histograms, blended (0.5)
    blur: float = 0.0  # chance of a Gaussian blur, blended (0.2)
    jpeg: float = 0.0  # chance of recompression as a JPEG of quality 30-90 (0.2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> AugmentConfig:
        """The config saved in a run's config.json; settings it lacks (an older run) are off."""
        if data is None:
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**cls.off().to_dict(), **known})

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(
            flip=False,
            max_angle=0.0,
            brightness=0.0,
            contrast=0.0,
            scale=0.0,
            hue=0.0,
            saturation=0.0,
            gain=0.0,
            gamma=0.0,
            histogram_match=0.0,
            blur=0.0,
            jpeg=0.0,
        )


#: the recipe the shipped base was trained with (``make base`` takes it as BASE_AUGMENT): every part
#: on but histogram matching, which counted nodata and padding as dark pixels until this release
#: (a Massachusetts tile is up to 72 % white nodata) and is to be measured again before it returns
CITIES = AugmentConfig(
    scale=0.3, hue=0.03, saturation=0.3, gain=0.1, gamma=0.3, histogram_match=0.0, blur=0.2, jpeg=0.2
)
