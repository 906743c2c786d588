"""Which part limits the separation of touching buildings (run by hand): the model's roof, its
borders, or the post-processing.

    python bench/separation.py MODEL [--scene SCENE.tif:LABELS.geojson ...] [--contact-px 3] [--cuts 0.3,0.5]
        [--thresholds 0.3,0.4]

Each scene (default: Dhaka's three blocks) is predicted once with ``MODEL``; then the prediction's
roof and border bands are swapped for the truth's (roof: the footprints; borders: the outline
targets ``tile --contact-kind outline --contact-px N`` makes of them) and every combination is
scored as ``roofseg evaluate-scene`` scores (object F1 at IoU ≥ 0.5, pooled over the scenes;
``--contact-kind distance`` or ``relative``: the true borders graded as ``tile`` grades them), at
the model card's post-processing and at peaks 0.03–0.3 deep (and at cores below each of
``--cuts``, and the card's seeding at each roof threshold of ``--thresholds``). Truth + truth is
the ceiling of the post-processing on these labels. ``--edges 0.5`` adds the scene's own colour
edges to the model's borders (1 − (1 − border)(1 − W·edge); edge: the Lab gradient, σ 1 px,
scaled by its 90th percentile on the roof), a border drawn from the image and not learnt.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from dhaka import ROOT, scenes_or_dhaka

from roofseg.contracts.targets import CONTACT_KINDS, GRADED_KINDS

DEPTHS = (None, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3)


def truth_bands(prediction: Path, labels: Path, radius: int, kind: str = "outline") -> tuple[np.ndarray, np.ndarray]:
    """The true roof (0/255 uint8) and border of ``kind`` (0–255) on ``prediction``'s grid."""
    from roofseg.raster.labels import open_labels
    from roofseg.raster.scene import Scene
    from roofseg.tiler.targets import contact_target

    with Scene(prediction, bands=(1,)) as grid:
        truth = open_labels(labels, grid)
        instances = truth.instances(0, 0, grid.ds.height, grid.ds.width)
        truth.close()
    border = contact_target(instances, radius, 0, kind)
    return (instances > 0).astype(np.uint8) * 255, border if kind in GRADED_KINDS else border * 255


def colour_edges(scene: Path, prediction: Path, roof: np.ndarray) -> np.ndarray:
    """The scene's colour edges on ``prediction``'s grid, 0–1: the Lab gradient (σ 1 px) over its
    90th percentile where ``roof`` (0–1) is above 0.5."""
    from rasterio.warp import Resampling, reproject
    from scipy import ndimage
    from skimage.color import rgb2lab

    with rasterio.open(prediction) as grid, rasterio.open(scene) as src:
        rgb = np.zeros((3, grid.height, grid.width), np.float32)
        for i in range(3):
            reproject(rasterio.band(src, i + 1), rgb[i], dst_transform=grid.transform, dst_crs=grid.crs,
                      resampling=Resampling.bilinear)  # fmt: skip
    lab = ndimage.gaussian_filter(rgb2lab(np.moveaxis(rgb / 255.0, 0, -1)), (1, 1, 0))
    gradient = np.sqrt(sum(ndimage.sobel(lab[..., c], a) ** 2 for c in range(3) for a in (0, 1)))
    return np.clip(gradient / max(np.percentile(gradient[roof > 0.5], 90), 1e-6), 0, 1)


def scores(raster: Path, labels: Path, post) -> tuple[int, int, int]:
    """(predicted, true, matched) buildings of ``raster`` under ``post``."""
    from roofseg.contracts.tags import read_tags
    from roofseg.prediction.scoring.score import evaluate_scene

    with rasterio.open(raster, "r+") as ds:
        tags = dataclasses.replace(read_tags(ds), postprocess=post)
        ds.update_tags(**tags.to_gdal())
    o = evaluate_scene(raster, labels)["objects"]
    return o["predicted"], o["true"], o["matched"]


def main() -> None:
    from roofseg.contracts.card import PostProcess, read_card
    from roofseg.contracts.tags import read_tags
    from roofseg.sources import model_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--scene", action="append", default=[], help="SCENE:LABELS, instead of Dhaka's blocks")
    ap.add_argument("--contact-px", type=int, default=3)
    ap.add_argument("--contact-kind", choices=CONTACT_KINDS, default=CONTACT_KINDS[0], help="the true borders' kind")
    ap.add_argument("--cuts", default="", help="contact cuts to score cores at too, comma-separated (e.g. 0.3,0.5)")
    ap.add_argument("--thresholds", default="", help="roof thresholds to score the card's seeding at too")
    ap.add_argument("--edges", default="", help="weights of the scene's colour edges added to the model's borders")
    args = ap.parse_args()
    scenes = scenes_or_dhaka(args.scene, [0, 1, 2])
    card = read_card(model_file(args.model))
    tuned = card.postprocess.choice if card and card.postprocess else PostProcess()
    posts = {"the card's": tuned} | {
        f"peaks {d}": dataclasses.replace(tuned, contact_cut=None, seed_depth=d) for d in DEPTHS if d is not None
    }
    cores = {c: dataclasses.replace(tuned, contact_cut=float(c), seed_depth=None) for c in _listed(args.cuts)}
    posts |= {f"cores {c}": post for c, post in cores.items()}
    posts |= {f"threshold {t}": dataclasses.replace(tuned, threshold=float(t)) for t in _listed(args.thresholds)}
    table: dict[tuple[str, str], np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scene, labels in scenes:
            out = Path(tmp) / f"{scene.stem}.tif"
            cmd = [sys.executable, "-m", "roofseg.cli", "predict", args.model, str(scene), str(out), "--quiet"]
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            with rasterio.open(out) as ds:
                model, profile, gdal_tags = ds.read(), ds.profile, ds.tags()
                top = read_tags(ds).scale  # the stored value of probability 1
            roof, border = truth_bands(out, labels, args.contact_px, args.contact_kind)
            mixes = {
                "model roof, model borders": (model[0], model[1]),
                "model roof, true borders": (model[0], border),
                "true roof, model borders": (roof, model[1]),
                "true roof, true borders": (roof, border),
            }
            edges = colour_edges(scene, out, model[0] / top) if args.edges else None
            for w in _listed(args.edges):
                learnt = 1 - (1 - model[1] / top) * (1 - float(w) * edges)
                mixes[f"model roof, model borders or colour edges ×{w}"] = (model[0], learnt * top)
            for bands, (r, b) in mixes.items():
                mixed = Path(tmp) / "mixed.tif"
                with rasterio.open(mixed, "w", **profile) as dst:
                    mixed_bands = np.stack([r, b])
                    if np.dtype(profile["dtype"]).kind in "ui":
                        mixed_bands = np.round(mixed_bands)
                    dst.write(mixed_bands.astype(profile["dtype"]))
                    dst.update_tags(**gdal_tags)
                for name, post in posts.items():
                    key = (bands, name)
                    table[key] = table.get(key, np.zeros(3, int)) + np.array(scores(mixed, labels, post))
    print(
        f"object F1 pooled over {len(scenes)} scene(s) (matched/predicted); "
        f"true borders {args.contact_kind}, {args.contact_px} px"
    )
    print("| roof, borders | " + " | ".join(posts) + " |\n|---|" + "---|" * len(posts))
    for bands in dict.fromkeys(b for b, _ in table):
        cells = []
        for name in posts:
            predicted, true, matched = table[(bands, name)]
            cells.append(f"{2 * matched / max(predicted + true, 1):.3f} ({matched}/{predicted})")
        print(f"| {bands} | " + " | ".join(cells) + " |")


def _listed(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


if __name__ == "__main__":
    main()
