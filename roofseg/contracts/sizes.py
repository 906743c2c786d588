"""Tile sizes and ground resolutions: the one rule, default and formula of each, for every stage."""

from __future__ import annotations

from roofseg.errors import RoofsegError

#: the U-Net halves its input five times, so a tile's side must be a multiple of this
TILE_MULTIPLE = 32
#: the tile size of a model or tiling run that states none
DEFAULT_TILE_SIZE = 256
#: a scene whose ground pixel size is more than this share off the model's shows roofs at the wrong size
GSD_TOLERANCE = 0.25
#: overlapping windows at prediction share at most this many pixels, and at most a quarter of a window
MAX_OVERLAP = 64


def check_tile_size(size: int, source: object = None) -> int:
    """``size`` if it is a tile size the U-Net takes, else a RoofsegError naming ``source``."""
    if size <= 0 or size % TILE_MULTIPLE:
        raise RoofsegError(
            source,
            f"tile size must be a positive multiple of {TILE_MULTIPLE} px (the U-Net "
            f"halves it five times), got {size}; use --tile-size "
            f"{max(TILE_MULTIPLE, round(size / TILE_MULTIPLE) * TILE_MULTIPLE)}",
        )
    return size


def default_overlap(tile: int) -> int:
    """The overlap of prediction windows of ``tile`` px: a quarter of the window, at most 64 px."""
    return min(MAX_OVERLAP, tile // 4)


def model_gsd(tile_gsd: float | None, tile_size: int | None, model_size: int | None) -> float | None:
    """The ground pixel size a model whose input is ``model_size`` px sees of tiles of
    ``tile_size`` px at ``tile_gsd`` m: tiles resized to the model's input look coarser (or finer)."""
    if not tile_gsd:
        return None
    if tile_size and model_size and model_size != tile_size:
        return tile_gsd * tile_size / model_size
    return tile_gsd


def gsd_ratio(gsd: float, trained_gsd: float) -> float:
    """How many times their trained size roofs look to a model trained at ``trained_gsd`` m."""
    return gsd / trained_gsd


def gsd_is_off(gsd: float | None, trained_gsd: float | None) -> bool:
    """Whether ``gsd`` is more than :data:`GSD_TOLERANCE` off ``trained_gsd`` (False where either is unknown)."""
    return bool(gsd and trained_gsd) and abs(gsd_ratio(gsd, trained_gsd) - 1) > GSD_TOLERANCE


#: a scene this close to a model's GSD range counts as inside it: resampling by a percent gains nothing
GSD_SAME = 0.01


def nearest_end(gsd: float, span: tuple[float, float]) -> float:
    """The end of ``span`` (finest, coarsest) nearest ``gsd``, or ``gsd`` itself inside it."""
    return min(max(gsd, span[0]), span[1])


def capped_range(span: tuple[float, float], coarsest: float | None) -> tuple[float, float]:
    """``span`` (finest, coarsest) with its coarse end lowered to ``coarsest`` (None: as it is); a
    ``coarsest`` finer than the whole span leaves one GSD, ``coarsest`` itself."""
    if coarsest is None:
        return span
    return (min(span[0], coarsest), min(span[1], coarsest))


def reading_gsd(gsd: float | None, span: tuple[float, float] | None) -> float | None:
    """The ground pixel size a scene of ``gsd`` m is read at for a model trained on ``span``: None
    (its own) inside the range, else the nearest end (None where either is unknown)."""
    if not gsd or not span:
        return None
    lo, hi = span
    if lo * (1 - GSD_SAME) <= gsd <= hi * (1 + GSD_SAME):
        return None
    return nearest_end(gsd, span)


def off_range(gsd: float | None, span: tuple[float, float] | None) -> bool:
    """Whether ``gsd`` lies more than :data:`GSD_TOLERANCE` outside ``span`` (False where either is unknown)."""
    return bool(gsd and span) and gsd_is_off(gsd, nearest_end(gsd, span))


def describe_range(span: tuple[float, float]) -> str:
    """'0.3 m' for a model of one GSD, '0.075-0.3 m' for a range."""
    lo, hi = span
    return f"{lo:.3g} m" if abs(hi / lo - 1) <= GSD_SAME else f"{lo:.3g}-{hi:.3g} m"
