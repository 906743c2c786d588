"""STAC inputs: an Item, ItemCollection, Catalog or Collection (a local file or a URL) as scenes.

Each item gives one scene: its imagery asset (``--stac-asset``, default ``visual``, else the
first GeoTIFF/COG asset) and, for tiling, its labels asset (``--stac-labels``, else an asset
with the label extension's role ``labels``). The item's id becomes the scene's id.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from urllib.parse import urljoin

import pystac

from roofseg.errors import RoofsegError

STAC_TYPES = {"Feature", "FeatureCollection", "Catalog", "Collection"}
GEOTIFF = "image/tiff"
RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class StacChoice:
    """Which assets of a STAC item are the scene and its labels."""

    asset: str = "visual"
    labels: str | None = None


@dataclass(frozen=True)
class StacScene:
    id: str
    image: str
    labels: str | None


def looks_like_stac(entry: str) -> bool:
    """A ``.json`` (or ``.geojson``) input that holds a STAC object rather than footprints."""
    lower = entry.split("?", 1)[0].lower()
    if not lower.endswith((".json", ".geojson")):
        return False
    try:
        doc = _read_json(entry)
    except (OSError, ValueError):
        return False
    if doc.get("type") == "FeatureCollection":
        return any("stac_version" in f for f in doc.get("features", [])[:1])
    return doc.get("type") in STAC_TYPES and "stac_version" in doc


def _read_json(href: str) -> dict:
    if "://" in href:
        with urllib.request.urlopen(href, timeout=60) as r:
            return json.loads(r.read())
    with open(href) as f:
        return json.load(f)


def stac_scenes(href: str, choice: StacChoice = StacChoice()) -> list[StacScene]:
    """The scenes of the STAC object at ``href``, one per item, in the catalog's order."""

    try:
        doc = _read_json(href)
        if doc.get("type") == "FeatureCollection":
            items = list(pystac.ItemCollection.from_file(href))
        elif doc.get("type") == "Feature":
            items = [pystac.Item.from_file(href)]
        else:
            catalog = pystac.read_file(href)
            items = list(catalog.get_items(recursive=True))
    except (OSError, ValueError, pystac.STACError) as exc:
        raise RoofsegError(href, f"cannot read as STAC ({str(exc).splitlines()[0]})") from None
    if not items:
        raise RoofsegError(href, "the STAC object holds no item")
    return [_scene(item, choice, href) for item in items]


def _scene(item, choice: StacChoice, source: str) -> StacScene:
    assets = item.assets
    if choice.asset in assets:
        image = assets[choice.asset]
    else:
        rasters = [
            a
            for a in assets.values()
            if (a.media_type or "").startswith(GEOTIFF) or a.href.split("?", 1)[0].lower().endswith(RASTER_SUFFIXES)
        ]
        rasters = [a for a in rasters if "labels" not in (a.roles or [])]
        if not rasters:
            raise RoofsegError(
                source,
                f"item {item.id} has no asset {choice.asset!r} and no GeoTIFF asset "
                f"(it has {', '.join(assets) or 'none'}); choose one with --stac-asset",
            )
        image = rasters[0]
    labels = None
    if choice.labels:
        if choice.labels not in assets:
            raise RoofsegError(source, f"item {item.id} has no asset {choice.labels!r} (--stac-labels)")
        labels = assets[choice.labels]
    else:
        labelled = [a for a in assets.values() if "labels" in (a.roles or [])]
        labels = labelled[0] if labelled else None
    return StacScene(item.id, _href(image, source), _href(labels, source) if labels is not None else None)


def _href(asset, source: str) -> str:
    """The asset's href, absolute: a relative one is relative to the file that holds the item
    (an item read from an ItemCollection has no location of its own), never to this process's folder."""
    href = asset.get_absolute_href() or asset.href
    if "://" in href or href.startswith("/vsi"):
        return href
    if not os.path.isabs(href):
        href = (
            urljoin(source, href) if "://" in source else os.path.join(os.path.dirname(os.path.abspath(source)), href)
        )
    return href if "://" in href else os.path.normpath(href)
