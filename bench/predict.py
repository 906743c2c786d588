"""Benchmark of whole-scene prediction (run by hand): `python bench/predict.py [--size 4096]`.

In one run:
- megapixels/s of `predict_scene` (read, pad, predict, blend, write) with the ResNet34 U-Net
  (random weights) on a generated scene, vs the model's bare `predict` on the same number of
  windows already cut and held in memory — goal: ours >= 0.85 of the bare model;
- peak RSS of `roofseg predict` in a fresh process on a 4096² and an 8192² scene — goal ratio
  <= 1.2;
- with a model that costs nothing (`--free-size`, default 8192²; tile 256, overlap 64, batch
  32): `predict_scene` pipelined and sequential vs the I/O floor — a plain loop that reads the
  same overlapping windows and writes a DEFLATE-tiled uint8 raster of the scene's size. On a GPU
  the host work is what limits prediction; goal: pipelined >= 1.0 of the floor. (`--rss-model small` uses a one-layer model there, so the 8192² run takes seconds
  rather than many minutes on a CPU; memory growth is about the streaming, not the model.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_peak_rss_mb, sample_scene  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="scene size for the throughput ratio")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rss-model", choices=["small", "unet"], default="small")
    ap.add_argument("--free-size", type=int, default=8192, help="scene size for the free-model vs I/O floor ratio")
    ap.add_argument("--only-free", action="store_true", help="run the free-model comparison alone")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    free_model_vs_io_floor(sample_scene(args.work, args.free_size), args.work)
    if args.only_free:
        return

    from roofseg._tf import keras
    from roofseg.prediction.predict import PredictOptions, pad_reflect, predict_scene
    from roofseg.raster.scene import Scene
    from roofseg.raster.windows import stride_for, tile_grid
    from roofseg.training.model import build_model

    args.work.mkdir(parents=True, exist_ok=True)
    scene_path = sample_scene(args.work, args.size)
    model, _ = build_model(None)
    opts = PredictOptions(tile=args.tile, overlap=args.overlap, batch=args.batch)

    with Scene(scene_path) as scene:
        tiles = tile_grid(scene.height, scene.width, args.tile, stride_for(args.tile, args.overlap))
        windows = np.stack([pad_reflect(scene.read(t.row, t.col, t.height, t.width)[0], args.tile) for t in tiles])
        megapixels = scene.height * scene.width / 1e6
    x = windows.astype(np.float32) / 255.0
    del windows
    model.predict(x[: args.batch], batch_size=args.batch, verbose=0)  # build the predict function once
    t0 = time.perf_counter()
    model.predict(x, batch_size=args.batch, verbose=0)
    bare = time.perf_counter() - t0
    del x
    out = args.work / "pred.tif"
    t0 = time.perf_counter()
    predict_scene(model, scene_path, out, opts, overwrite=True, progress=False)
    ours = time.perf_counter() - t0
    print(f"scene {args.size}² ({megapixels:.1f} MP), {len(tiles)} windows of {args.tile} px, overlap {args.overlap}, batch {args.batch}")
    print(f"  bare model.predict on windows in memory: {megapixels / bare:6.3f} MP/s ({bare:.1f} s)")
    print(f"  roofseg predict_scene (read+blend+write): {megapixels / ours:6.3f} MP/s ({ours:.1f} s)")
    print(f"  ratio ours/bare: {bare / ours:.3f}   (goal >= 0.85)")

    if args.rss_model == "small":
        inp = keras.Input((None, None, 3))
        model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inp))
    model_path = args.work / f"rss-{args.rss_model}.keras"
    model.save(model_path)
    rss = {}
    for size in (4096, 8192):
        scene = sample_scene(args.work, size)
        rss[size] = child_peak_rss_mb("roofseg.cli", "predict", str(model_path), str(scene), str(args.work / f"rss{size}.tif"),
                                      "--overwrite", "--quiet", "--tile", str(args.tile), "--overlap", str(args.overlap))
        print(f"  peak RSS roofseg predict {size}² ({args.rss_model} model): {rss[size]:.0f} MB")
    print(f"  peak RSS ratio 8192/4096: {rss[8192] / rss[4096]:.2f}   (goal <= 1.2)")


def io_floor(scene_path: Path, out: Path, tile: int, overlap: int) -> None:
    """The I/O floor: read every overlapping window, and write what they show (band 1) as a
    DEFLATE-tiled uint8 raster of the scene's size, one after the other on one thread."""
    import rasterio
    from rasterio.windows import Window

    from roofseg.raster.scene import Scene, band_cache
    from roofseg.raster.windows import grid_rows, stride_for

    with Scene(scene_path) as scene, band_cache(scene, tile):
        profile = dict(driver="GTiff", width=scene.width, height=scene.height, count=1, dtype="uint8", crs=scene.crs,
                       transform=scene.transform, tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2)
        rows = list(grid_rows(scene.height, scene.width, tile, stride_for(tile, overlap)))
        with rasterio.open(out, "w", **profile) as dst:
            for k, row in enumerate(rows):
                top = row[0].row
                end = rows[k + 1][0].row if k + 1 < len(rows) else scene.height
                band = np.zeros((end - top, scene.width), np.uint8)
                for t in row:
                    image, _ = scene.read(t.row, t.col, t.height, t.width)
                    n = min(t.height, end - top)
                    band[:n, t.col:t.col + t.width] = image[:n, :, 0]
                dst.write(band, 1, window=Window(0, top, scene.width, end - top))


def free_model_vs_io_floor(scene_path: Path, work: Path, rounds: int = 2) -> None:
    from roofseg.prediction.predict import PredictOptions, predict_scene

    def free(batch):
        return batch[..., :1]

    best = {"floor": np.inf, "sequential": np.inf, "pipelined": np.inf}
    for _ in range(rounds):  # alternating, best of each: the machine is noisy
        t0 = time.perf_counter()
        io_floor(scene_path, work / "floor.tif", 256, 64)
        best["floor"] = min(best["floor"], time.perf_counter() - t0)
        for name, pipelined in (("sequential", False), ("pipelined", True)):
            opts = PredictOptions(tile=256, overlap=64, batch=32, pipelined=pipelined)
            t0 = time.perf_counter()
            predict_scene(free, scene_path, work / f"free-{name}.tif", opts, overwrite=True, progress=False)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"free model on {scene_path.parent.name} (tile 256, overlap 64, batch 32), best of {rounds}:")
    for name, t in best.items():
        print(f"  {name:10s} {t:7.1f} s   ratio to the I/O floor {best['floor'] / t:.2f}")


if __name__ == "__main__":
    main()
