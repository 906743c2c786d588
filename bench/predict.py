"""Benchmark of whole-scene prediction (run by hand):
`python bench/predict.py [--only free,unet,engines,rss,huge,many]`.

In one run, each figure a ratio of two things measured side by side:
- free: with a model that costs nothing (it takes the uint8 windows and returns one channel as
  the probability, as a model whose work is on a GPU), `predict_scene` pipelined and sequential
  vs the raw I/O floor — a plain loop of rasterio reads of the same overlapping windows and a
  DEFLATE-tiled uint8 write of the scene's size (8192², tile 256, overlap 64, batch 32); and a
  free Keras model (uint8 in, one channel out) through the same path as a real model. On a
  GPU the host work is what limits prediction; goal: pipelined >= 1.0 of the floor.
- engines: megapixels/s of `predict_scene` on a 4096² scene with the U-Net on TensorFlow, ONNX
  Runtime and OpenVINO (each installed one; OpenVINO in bfloat16 too where the CPU has it), as
  ratios to TensorFlow, and the GFLOP/s of convolutions each sustains. bench/precision.py measures
  what bfloat16 and INT8 change on real scenes.
- unet: megapixels/s of `predict_scene` with the ResNet34 U-Net (random weights) vs the model's
  bare `predict` on the same windows already cut and held in memory; goal >= 0.95.
- rss: peak RSS of `roofseg predict` in a fresh process on a 4096² and an 8192² scene; goal ratio
  <= 1.2 (`--rss-model small`, the default, uses a one-layer model so the 8192² run takes seconds
  rather than many minutes on a CPU; memory growth is about the streaming, not the model).
- huge: one 20000² scene with the free model in a fresh process: wall time and peak RSS (goal < 2 GB).
- many: ten 2048² scenes in one `roofseg predict` call vs ten calls, each a fresh process
  (`--many-model small` by default: a one-layer model, so the figure shows what one model load and
  one process per call cost; `unet` for the U-Net).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import ROOT, child_peak_rss_mb, run_child, sample_scene, timed  # noqa: E402

PARTS = ("free", "unet", "engines", "rss", "huge", "many")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench")
    ap.add_argument("--size", type=int, default=4096, help="scene size for the U-Net throughput ratio")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--free-size", type=int, default=8192, help="scene size for the free-model vs I/O floor ratio")
    ap.add_argument("--huge-size", type=int, default=20000)
    ap.add_argument("--rss-model", choices=["small", "unet"], default="small")
    ap.add_argument("--many-model", choices=["small", "unet"], default="small")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    parts = args.only.split(",")
    if "free" in parts:
        free_model_vs_io_floor(sample_scene(args.work, args.free_size), args.work)
    if "unet" in parts:
        unet_vs_bare_predict(args)
    if "engines" in parts:
        engines(args)
    if "rss" in parts:
        rss_4096_vs_8192(args)
    if "huge" in parts:
        huge_scene(args)
    if "many" in parts:
        many_scenes(args)


def free_model(batch: np.ndarray) -> np.ndarray:
    """Costs nothing: one channel of the uint8 windows as the probability (the float copy of one
    channel stands for the device → host copy of a real model's output)."""
    return batch[..., :1] * np.float32(1 / 255)


free_model.takes_uint8 = True


def io_floor(scene_path: Path, out: Path, tile: int, overlap: int) -> None:
    """The raw I/O floor: rasterio reads of every overlapping window (no roofseg reader: no
    validity, stretch or strips), and a DEFLATE-tiled uint8 write of what they show (band 1) at the
    scene's size, one after the other on one thread, with GDAL's default block cache."""
    import rasterio
    from rasterio.windows import Window

    from roofseg.raster.windows import grid_rows, stride_for

    with rasterio.open(scene_path) as src:
        profile = dict(
            driver="GTiff",
            width=src.width,
            height=src.height,
            count=1,
            dtype="uint8",
            crs=src.crs,
            transform=src.transform,
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
            predictor=2,
        )
        rows = list(grid_rows(src.height, src.width, tile, stride_for(tile, overlap)))
        with rasterio.open(out, "w", **profile) as dst:
            for k, row in enumerate(rows):
                top = row[0].row
                end = rows[k + 1][0].row if k + 1 < len(rows) else src.height
                band = np.zeros((end - top, src.width), np.uint8)
                for t in row:
                    image = src.read(window=Window(t.col, t.row, t.width, t.height))
                    n = min(t.height, end - top)
                    band[:n, t.col : t.col + t.width] = image[0, :n]
                dst.write(band, 1, window=Window(0, top, src.width, end - top))


def free_keras():
    """A Keras model that costs nothing: uint8 windows in (scaled in the graph as every Keras model
    is), one channel out: the path a real model takes, less its arithmetic."""
    from roofseg._tf import keras

    inp = keras.Input((None, None, 3))
    return keras.Model(inp, keras.layers.Lambda(lambda x: x[..., :1])(inp))


def free_model_vs_io_floor(scene_path: Path, work: Path, rounds: int = 3) -> None:
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene

    best = {"floor": np.inf, "sequential": np.inf, "pipelined": np.inf, "keras": np.inf}
    keras_model = free_keras()
    for _ in range(rounds):  # alternating, best of each: the machine is noisy
        t0 = time.perf_counter()
        io_floor(scene_path, work / "floor.tif", 256, 64)
        best["floor"] = min(best["floor"], time.perf_counter() - t0)
        for name, pipelined, model in (
            ("sequential", False, free_model),
            ("pipelined", True, free_model),
            ("keras", True, keras_model),
        ):
            opts = PredictOptions(tile=256, overlap=64, batch=32, pipelined=pipelined)
            t0 = time.perf_counter()
            predict_scene(model, scene_path, work / f"free-{name}.tif", opts, overwrite=True, progress=False)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(
        f"free model on {scene_path.parent.name} (tile 256, overlap 64, batch 32), best of {rounds} "
        "(keras: a free Keras model, uint8 in, one channel out, through Inference's graph):"
    )
    for name, t in best.items():
        print(f"  {name:10s} {t:7.2f} s   ratio to the I/O floor {best['floor'] / t:.2f}")


def unet_vs_bare_predict(args) -> None:
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import pad_reflect, predict_scene
    from roofseg.raster.scene import Scene
    from roofseg.raster.windows import stride_for, tile_grid
    from roofseg.training.model import build_model

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
    predict_scene(model, scene_path, args.work / "pred.tif", opts, overwrite=True, progress=False)  # and ours
    t0 = time.perf_counter()
    model.predict(x, batch_size=args.batch, verbose=0)
    bare = time.perf_counter() - t0
    del x
    t0 = time.perf_counter()
    predict_scene(model, scene_path, args.work / "pred.tif", opts, overwrite=True, progress=False)
    ours = time.perf_counter() - t0
    print(
        f"U-Net on {args.size}² ({megapixels:.1f} MP), {len(tiles)} windows of {args.tile} px, overlap "
        f"{args.overlap}, batch {args.batch}"
    )
    print(f"  bare model.predict on windows in memory: {megapixels / bare:6.3f} MP/s ({bare:.1f} s)")
    print(f"  roofseg predict_scene (read+blend+write): {megapixels / ours:6.3f} MP/s ({ours:.1f} s)")
    print(f"  ratio ours/bare: {bare / ours:.3f}   (goal >= 0.95)")


def engines(args) -> None:
    """MP/s of `predict_scene` with the ResNet34 U-Net on each installed engine, as ratios to
    TensorFlow's, measured side by side (the ONNX export made once before the clock starts); and
    the arithmetic each sustains (the convolutions' GFLOP of a window, counted in the ONNX graph,
    times the windows, over the seconds), to set against what the CPU can do at most."""
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.engines import OpenVinoModel, converted, installed, load_predictor, native_bf16
    from roofseg.prediction.rasters.inference import Inference
    from roofseg.prediction.rasters.predict import predict_scene

    scene_path = sample_scene(args.work, args.size)
    model = unet_file(args.work / "unet.keras")
    opts = PredictOptions(tile=args.tile, overlap=args.overlap, batch=args.batch)
    nets = {e: Inference(load_predictor(model, e)) for e in ("tf", "onnx", "openvino") if installed(e)}
    if installed("openvino") and native_bf16():
        nets["openvino bf16"] = Inference(OpenVinoModel(converted(model), "bf16"))
    gflop = conv_gflop(converted(model), args.tile) if installed("onnx") else None
    seconds = {}
    for name, infer in nets.items():
        infer(np.zeros((args.batch, args.tile, args.tile, 3), np.uint8))  # warm up: graphs built, memory planned
        t0 = time.perf_counter()
        windows = predict_scene(
            infer, scene_path, args.work / f"engine-{name.replace(' ', '-')}.tif", opts, overwrite=True, progress=False
        )["windows"]
        seconds[name] = time.perf_counter() - t0
    megapixels = args.size * args.size / 1e6
    print(
        f"engines: U-Net (random weights) on {args.size}² ({megapixels:.1f} MP), {windows} windows of {args.tile} px, "
        f"overlap {args.overlap}, batch {args.batch}"
        + (f"; {gflop:.1f} GFLOP of convolutions a window" if gflop else "")
    )
    for name, t in seconds.items():
        rate = f"   {gflop * windows / t:5.0f} GFLOP/s" if gflop else ""
        print(f"  {name:14s} {megapixels / t:6.3f} MP/s ({t:.1f} s)   ratio to tf {seconds['tf'] / t:.2f}{rate}")
    print(f"  the CPU's float32 ceiling, a 4096² matrix product in numpy's BLAS: {gemm_gflops():.0f} GFLOP/s")


def gemm_gflops(n: int = 4096, rounds: int = 5) -> float:
    """GFLOP/s of numpy's float32 matrix product (its BLAS, every core): about what the CPU can do at most."""
    a = np.random.default_rng(0).random((n, n), np.float32)
    a @ a
    best = min(timed(np.matmul, a, a)[0] for _ in range(rounds))
    return 2 * n**3 / best / 1e9


def conv_gflop(onnx_path: Path, tile: int) -> float:
    """GFLOP (two per multiply-add) of the convolutions of one ``tile``² window of an ONNX model."""
    import onnx
    from onnx import shape_inference

    proto = onnx.load(str(onnx_path))
    for dim, size in zip(proto.graph.input[0].type.tensor_type.shape.dim, (1, tile, tile, 3)):
        dim.dim_value = size
    proto = shape_inference.infer_shapes(proto)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(proto.graph.value_info) + list(proto.graph.output)
    }
    kernels = {t.name: list(t.dims) for t in proto.graph.initializer}
    total = 0
    for node in proto.graph.node:
        kernel, out = kernels.get(node.input[1]) if node.op_type == "Conv" else None, shapes.get(node.output[0])
        if kernel and out and all(out):
            total += 2 * int(np.prod(out)) * int(np.prod(kernel[1:]))
    return total / 1e9


def small_model(path: Path) -> Path:
    from roofseg._tf import keras

    if not path.exists():
        inp = keras.Input((None, None, 3))
        keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inp)).save(path)
    return path


def unet_file(path: Path) -> Path:
    from roofseg.training.model import build_model

    if not path.exists():
        build_model(None)[0].save(path)
    return path


def model_file(kind: str, work: Path) -> Path:
    return small_model(work / "small.keras") if kind == "small" else unet_file(work / "unet.keras")


def rss_4096_vs_8192(args) -> None:
    model = model_file(args.rss_model, args.work)
    rss = {}
    for size in (4096, 8192):
        scene = sample_scene(args.work, size)
        rss[size] = child_peak_rss_mb(
            "roofseg.cli",
            "predict",
            str(model),
            str(scene),
            str(args.work / f"rss{size}.tif"),
            "--overwrite",
            "--quiet",
            "--tile",
            str(args.tile),
            "--overlap",
            str(args.overlap),
        )
        print(f"  peak RSS roofseg predict {size}² ({args.rss_model} model): {rss[size]:.0f} MB")
    print(f"  peak RSS ratio 8192/4096: {rss[8192] / rss[4096]:.2f}   (goal <= 1.2)")


HUGE_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
from predict import free_model
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
t0 = time.perf_counter()
options = PredictOptions(tile=256, overlap=64, batch=32)
predict_scene(free_model, sys.argv[1], sys.argv[2], options, overwrite=True, progress=False)
print(f"{{time.perf_counter() - t0:.1f}}")
"""


def huge_scene(args) -> None:
    scene = sample_scene(args.work, args.huge_size)
    script = args.work / "huge_child.py"
    script.write_text(HUGE_CHILD.format(bench=str(Path(__file__).resolve().parent)))
    rss, out = run_child(str(script), str(scene), str(args.work / "huge.tif"))
    print(
        f"free model on {args.huge_size}² ({args.huge_size**2 / 1e6:.0f} MP): {out.strip()} s, peak RSS {rss:.0f} MB "
        "  (goal < 2048 MB)"
    )


def many_scenes(args, count: int = 10, size: int = 2048) -> None:
    model = model_file(args.many_model, args.work)
    folder = args.work / f"many{size}"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        target = folder / f"scene{i:02d}.tif"
        if not target.exists():
            shutil.copy(sample_scene(args.work, size, seed=0), target)
    roofseg = [sys.executable, "-m", "roofseg.cli", "predict", str(model)]
    common = ["--quiet", "--overwrite", "--tile", str(args.tile), "--overlap", str(args.overlap)]
    best = {"one call": np.inf, "ten calls": np.inf}
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run(
            roofseg + [str(folder), str(args.work / "many-one")] + common,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        best["one call"] = min(best["one call"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        for scene in sorted(folder.glob("*.tif")):
            subprocess.run(
                roofseg + [str(scene), str(args.work / f"many-{scene.name}")] + common,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        best["ten calls"] = min(best["ten calls"], time.perf_counter() - t0)
    print(f"{count} scenes of {size}² ({args.many_model} model), best of 2:")
    print(
        f"  one call {best['one call']:.1f} s, {count} calls {best['ten calls']:.1f} s: ratio "
        f"{best['ten calls'] / best['one call']:.2f}"
    )


if __name__ == "__main__":
    main()
