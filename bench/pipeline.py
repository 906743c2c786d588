"""Benchmark of the input pipeline (run by hand): `python bench/pipeline.py [--work DIR]`.

On shards made by the tiler from sample scenes, in one run, each in a fresh process:
- tiles/s of the tf.data pipeline (training mode, batch 16) without and with augmentation;
- tiles/s of the usual in-memory recipe on the same tiles as PNG files: load every image and
  mask with cv2 into numpy, then albumentations HorizontalFlip / Rotate(limit=30) /
  RandomBrightnessContrast image by image in a Python loop, batched with np.stack;
- the ratio ours/recipe (goal >= 3x) and the peak RSS of both for N and 4N tiles
  (ours must not grow with the number of tiles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_child, sample_scene  # noqa: E402

BATCH = 16


def child_ours(manifest: str, augment: bool) -> None:
    from roofseg.pipeline.dataset import make_dataset

    ds = make_dataset(manifest, "train", batch_size=BATCH, seed=0, augment_on="host" if augment else "device")
    epochs = []
    for _ in range(2):  # the first epoch also builds the graph; the second is the steady state
        t0 = time.perf_counter()
        n = sum(int(images.shape[0]) for images, _ in ds)
        epochs.append(time.perf_counter() - t0)
    print(json.dumps({"tiles": n, "seconds": epochs}))


def child_recipe(png_dir: str) -> None:
    import albumentations as A
    import cv2
    import numpy as np

    t0 = time.perf_counter()
    names = sorted(p.name for p in (Path(png_dir) / "images").iterdir())
    images = np.stack([cv2.cvtColor(cv2.imread(f"{png_dir}/images/{n}"), cv2.COLOR_BGR2RGB) for n in names])
    masks = np.stack([cv2.imread(f"{png_dir}/masks/{n}", cv2.IMREAD_GRAYSCALE) for n in names])
    images = images.astype(np.float32) / 255.0
    masks = (masks > 0).astype(np.float32)[..., None]
    aug = A.Compose([A.HorizontalFlip(p=0.5), A.Rotate(limit=30, p=1.0), A.RandomBrightnessContrast(p=1.0)])
    epochs = []
    for epoch in range(2):  # the first epoch includes loading the images; the second only augments
        order = np.random.default_rng(epoch).permutation(len(names))
        n = 0
        for start in range(0, len(order) - BATCH + 1, BATCH):
            out = [aug(image=images[i], mask=masks[i]) for i in order[start : start + BATCH]]
            np.stack([o["image"] for o in out]), np.stack([o["mask"] for o in out])
            n += BATCH
        epochs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
    print(json.dumps({"tiles": n, "seconds": epochs}))


def export_pngs(manifest: Path, out: Path) -> int:
    """Write the train tiles of ``manifest`` as images/NAME.png + masks/NAME.png (the recipe's input)."""
    import cv2

    from roofseg.contracts.tile import read_records

    m = json.loads(manifest.read_text())
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    n = 0
    for shard in m["splits"]["train"]["shards"]:
        for r in read_records(str(manifest.parent / shard["path"])):
            name = f"{r['scene_id']}_{r['row']}_{r['col']}.png"
            cv2.imwrite(str(out / "images" / name), r["image"][..., ::-1])
            cv2.imwrite(str(out / "masks" / name), r["mask"] * 255)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench")
    ap.add_argument("--child", choices=["ours", "ours-aug", "recipe"], help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "recipe":
        return child_recipe(args.source)
    if args.child:
        return child_ours(args.source, args.child == "ours-aug")

    from roofseg.tiler.run import tile
    from roofseg.tiler.tile import TileParams

    me = str(Path(__file__).resolve())
    results = {}
    for size in (4096, 8192):  # 8192² has 4x the tiles of 4096²
        scene = sample_scene(args.work, size)
        tiles = args.work / f"pipe{size}"
        pngs = args.work / f"pipe{size}-png"
        if not (tiles / "manifest.json").exists():
            tile([str(scene)], tiles, TileParams(val=0.0, test=0.0, max_nodata=0.5), progress=False)
            shutil.rmtree(pngs, ignore_errors=True)
        if not pngs.exists():
            export_pngs(tiles / "manifest.json", pngs)
        for kind, source in (
            ("ours", tiles / "manifest.json"),
            ("ours-aug", tiles / "manifest.json"),
            ("recipe", pngs),
        ):
            rss, out = run_child(me, "--child", kind, "--source", str(source))
            r = json.loads(out.strip().splitlines()[-1])
            first, steady = (r["tiles"] / s for s in r["seconds"])
            results[(size, kind)] = (steady, rss, r["tiles"], first)
            print(
                f"{size}² scene, {kind:8s}: {r['tiles']:5d} tiles, epoch 1 {first:7.1f} tiles/s, "
                f"epoch 2 {steady:7.1f} tiles/s, peak RSS {rss:6.0f} MB"
            )
    for size in (4096, 8192):
        for label, k in (("epoch 1", 3), ("epoch 2", 0)):
            aug, recipe, plain = (results[(size, kind)][k] for kind in ("ours-aug", "recipe", "ours"))
            print(
                f"{size}², {label}: ours with host augmentation / recipe = {aug / recipe:.2f}x (goal >= 3x); "
                f"ours without (augmenting on the device) / recipe = {plain / recipe:.2f}x"
            )
    for kind in ("ours-aug", "recipe"):
        small, big = results[(4096, kind)], results[(8192, kind)]
        print(
            f"peak RSS {kind}: {small[1]:.0f} MB for {small[2]} tiles, {big[1]:.0f} MB for {big[2]} tiles "
            f"(ratio {big[1] / small[1]:.2f})"
        )


if __name__ == "__main__":
    main()
