"""Pictures for looking rather than reading: a prediction's errors, and a quicklook over the imagery.

Every raster is read decimated (the longest side at most ``longest`` px, GDAL picking overviews
where the file has them), so memory is bounded whatever the scene's size.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import rasterio
import shapely.geometry
from affine import Affine
from rasterio.enums import Resampling
from rasterio.features import rasterize

from roofseg.atomic import atomic_output
from roofseg.errors import RoofsegError
from roofseg.figures import pyplot, save_png
from roofseg.prediction.vector.vectorize import roof_cut
from roofseg.raster import scaling
from roofseg.raster.labels import VectorLabels, open_labels
from roofseg.raster.scene import Scene, open_raster

LONGEST = 2048
#: BGR colours (OpenCV order) from the Okabe-Ito palette, told apart with any colour vision and
#: from vegetation: hits blue, false alarms orange, misses reddish purple, true outlines yellow
HIT, FALSE_ALARM, MISS, OUTLINE = (178, 114, 0), (0, 159, 230), (167, 121, 204), (66, 228, 240)
LEGEND_BOX = (32, 32, 32)


def read_decimated(ds: rasterio.DatasetReader, longest: int = LONGEST) -> tuple[int, int, Affine]:
    """(height, width, transform) of ``ds`` read with its longest side at most ``longest`` px."""
    h, w = scaling.decimation(ds.height, ds.width, longest)
    return h, w, ds.transform @ Affine.scale(ds.width / w, ds.height / h)


def background(scene_path: str | os.PathLike | None, shape: tuple[int, int], bands=None) -> np.ndarray:
    """The scene as BGR uint8 at ``shape`` (read as the tiler and predictor read it), or dark grey without one."""
    if scene_path is None:
        return np.full(shape + (3,), 64, np.uint8)
    with Scene(scene_path, bands) as scene:
        image, _ = scene.overview(*shape)
    return np.ascontiguousarray(image[..., ::-1])


def _write_png(image: np.ndarray, out: str | os.PathLike) -> None:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise RoofsegError(out, "pictures are written as .png")
    with atomic_output(out) as tmp:
        ok, data = cv2.imencode(".png", image)
        if not ok:
            raise RoofsegError(out, "could not encode the picture")
        tmp.write_bytes(data.tobytes())


def _legend(image: np.ndarray, entries: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """``image`` with its legend in an opaque strip below it: readable over any imagery, and
    hiding none of it. Entries run left to right, wrapping to more lines where needed."""
    font, scale, line = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 22
    places, x, y = [], 8, 0
    for text, colour in entries:
        width = 26 + cv2.getTextSize(text, font, scale, 1)[0][0] + 16
        if x > 8 and x + width > image.shape[1]:
            x, y = 8, y + line
        places.append((text, colour, x, y))
        x += width
    strip = np.full((y + line + 4, image.shape[1], 3), LEGEND_BOX, np.uint8)
    for text, colour, x, y in places:
        cv2.rectangle(strip, (x, y + 5), (x + 18, y + 19), colour, -1)
        cv2.putText(strip, text, (x + 24, y + 17), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([image, strip])


def error_picture(
    prediction: str | os.PathLike,
    labels: str | os.PathLike,
    out_png: str | os.PathLike,
    threshold: float = 0.5,
    scene: str | os.PathLike | None = None,
    labels_crs: str | None = None,
    longest: int = LONGEST,
) -> Path:
    """Draw hits, false alarms and misses of ``prediction`` against ``labels`` over the scene (or
    grey), the true footprints outlined, into ``out_png``."""

    with Scene(prediction, bands=(1,)) as grid:
        ds = grid.ds
        h, w, transform = read_decimated(ds, longest)
        cut = roof_cut(ds, threshold)
        valid = ds.read_masks(1, out_shape=(h, w), resampling=Resampling.nearest) > 0
        predicted = (ds.read(1, out_shape=(h, w), resampling=Resampling.nearest) >= cut) & valid
        truth_labels = open_labels(labels, grid, crs=labels_crs)
        try:
            if isinstance(truth_labels, VectorLabels):
                geoms = list(truth_labels.geoms)
                truth = (
                    rasterize(geoms, out_shape=(h, w), transform=transform).astype(bool)
                    if geoms
                    else np.zeros((h, w), bool)
                )
            else:
                geoms = []
                truth = truth_labels.overview(h, w).astype(bool)
        finally:
            truth_labels.close()
    truth &= valid
    image = background(scene, (h, w))
    overlay = image.copy()
    overlay[predicted & truth] = HIT
    overlay[predicted & ~truth] = FALSE_ALARM
    overlay[~predicted & truth] = MISS
    image = cv2.addWeighted(overlay, 0.55, image, 0.45, 0)
    inverse = ~transform
    for geom in map(shapely.geometry.shape, geoms):
        for poly in getattr(geom, "geoms", [geom]):
            for ring in [poly.exterior, *poly.interiors]:
                pts = np.array([inverse @ xy for xy in ring.coords], np.float64)
                cv2.polylines(image, [np.round(pts).astype(np.int32)], True, OUTLINE, 1, cv2.LINE_AA)
    image = _legend(image, [("hit", HIT), ("false alarm", FALSE_ALARM), ("miss", MISS), ("true footprint", OUTLINE)])
    _write_png(image, out_png)
    return Path(out_png)


def preview_picture(
    prediction: str | os.PathLike,
    scene: str | os.PathLike,
    out_png: str | os.PathLike,
    bands=None,
    threshold: float = 0.5,
    longest: int = LONGEST,
) -> Path:
    """A quicklook of ``prediction`` over ``scene``: roof probability in red, the roofs at
    ``threshold`` outlined."""

    with open_raster(prediction, "a prediction") as ds:
        h, w, _ = read_decimated(ds, longest)
        scale = 255.0 if ds.dtypes[0] == "uint8" and roof_cut(ds, 0.5) > 1 else 1.0
        probability = ds.read(1, out_shape=(h, w), resampling=Resampling.average).astype(np.float32) / scale
        valid = ds.read_masks(1, out_shape=(h, w), resampling=Resampling.nearest) > 0
    probability[~valid] = 0
    image = background(scene, (h, w), bands)
    alpha = (0.6 * np.clip(probability, 0, 1))[..., None]
    red = np.zeros_like(image)
    red[..., 2] = 255
    image = (image * (1 - alpha) + red * alpha).astype(np.uint8)
    roofs = ((probability >= threshold) & valid).astype(np.uint8)
    contours, _ = cv2.findContours(roofs, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    image = _legend(image, [("roof probability", (0, 0, 255)), (f"roofs at {threshold:g}", (255, 255, 255))])
    _write_png(image, out_png)
    return Path(out_png)


def pr_curve_picture(curve: dict, average_precision: float, out_png: str | os.PathLike) -> None:
    """The precision–recall curve of buildings ranked by confidence, the confidence marked along it."""

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    recall, precision, confidence = (np.asarray(curve[k], float) for k in ("recall", "precision", "confidence"))
    ax.plot(recall, precision, color="#21918c", lw=2, label=f"AP@0.5 = {average_precision:.3f}")
    marked = set()
    for c, offset in ((0.9, (6, 8)), (0.7, (6, -14)), (0.5, (6, -30))):  # staggered: near points stay legible
        k = np.flatnonzero(confidence >= c)
        place = (round(float(recall[k[-1]]), 2), round(float(precision[k[-1]]), 2)) if len(k) else None
        if place is not None and place not in marked:  # one label a point: coinciding labels are unreadable
            marked.add(place)
            ax.plot(recall[k[-1]], precision[k[-1]], "o", color="#440154")
            ax.annotate(
                f"confidence ≥ {c:g}",
                (recall[k[-1]], precision[k[-1]]),
                textcoords="offset points",
                xytext=offset,
                fontsize=8,
            )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.12),
        yticks=np.linspace(0, 1, 6),
        xlabel="recall (buildings found)",
        ylabel="precision (predicted that are right)",
        title="Buildings ranked by confidence",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", frameon=True, facecolor="white", framealpha=1.0)
    save_png(fig, out_png)
