"""Arithmetic precision on real scenes (run by hand):
`python bench/precision.py [--data ../shared/data] [--models A.keras,B.keras]`.

Trained models (by default the base and the from-scratch model that bench/finetune.py leaves in
its work folder) predict every HOT scene of the data folder (Dar es Salaam, Kampala, Kathmandu;
read at the model's GSD, in windows of its tile size) on OpenVINO in float32, in bfloat16 where the
CPU has it, and in INT8 where nncf is installed (post-training quantisation calibrated on
`--calibration` windows of the same scenes: a measurement only, roofseg does not offer INT8).

For each precision, side by side in one run: seconds to predict all scenes and the ratio to
float32; the largest and mean difference of its probabilities from float32's; the share of
pixels more than 1/255 off; and pixel IoU and object F1 pooled over the scenes, and AP@0.5
averaged over them, against the OSM footprints. Imagery © OpenAerialMap contributors (CC BY 4.0);
footprints © OpenStreetMap contributors (ODbL). Nothing is copied out of the data folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
from finetune import postprocess
from real import ROOT, hot_scenes, scene_files

SCENES = [f"hot_data{d}_z20_block{b}" for d in (1, 2, 3) for b in (0, 1)]
FINETUNE = Path(tempfile.gettempdir()) / "roofseg-bench" / "finetune"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--models", default=",".join(str(FINETUNE / r / "best.keras") for r in ("base", "scratch")))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "precision")
    ap.add_argument("--calibration", type=int, default=300, help="windows INT8 is calibrated on")
    args = ap.parse_args()
    scenes = hot_scenes(args.data)
    models = [Path(m) for m in args.models.split(",")]
    missing = [m for m in models if not m.is_file()]
    if missing:
        raise SystemExit(f"{missing[0]}: no such model (run bench/finetune.py, or give --models)")
    args.work.mkdir(parents=True, exist_ok=True)
    for model in models:
        compare(model, [scene_files(scenes, name) for name in SCENES], args.work / model.parent.name, args.calibration)


def compare(model: Path, scenes: list[tuple[str, str]], work: Path, calibration: int) -> None:
    from roofseg.contracts.card import read_card
    from roofseg.prediction.options import card_options
    from roofseg.prediction.rasters.engines import OpenVinoModel, converted, native_bf16
    from roofseg.prediction.rasters.inference import Inference

    post = postprocess(model)
    options = card_options(read_card(model), batch=8, dtype="float32")
    tile = options.tile
    work.mkdir(parents=True, exist_ok=True)
    nets = {"f32": OpenVinoModel(converted(model), "f32")}
    if native_bf16():
        nets["bf16"] = OpenVinoModel(converted(model), "bf16")
    if importlib.util.find_spec("nncf"):
        nets["int8"] = OpenVinoModel(int8_model(converted(model), scenes, options, calibration, work), "f32")
    rows = {}
    for name, net in nets.items():
        infer = Inference(net)
        infer(np.zeros((options.batch, tile, tile, 3), np.uint8))  # warm up: memory planned
        rows[name] = predict_all(infer, scenes, options, work / name, post)
    f32 = rows["f32"]
    print(
        f"\n{model} (tile {tile}, GSD {options.gsd:.3g} m; {len(scenes)} scenes, {f32['megapixels']:.1f} MP predicted)"
    )
    print(
        "| precision | seconds | speed vs f32 | max diff | mean diff | pixels > 1/255 off | pixel IoU | object F1 | "
        "AP@0.5 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        diff = [np.abs(a - b) for a, b in zip(row["probs"], f32["probs"])]
        off = sum(int((d > 1 / 255).sum()) for d in diff) / sum(d.size for d in diff)
        print(
            f"| {name} | {row['seconds']:.1f} | {f32['seconds'] / row['seconds']:.2f}x | "
            f"{max(d.max() for d in diff):.3f} "
            f"| {np.mean([d.mean() for d in diff]):.4f} | {off:.1%} | {row['iou']:.4f} | {row['f1']:.4f} | "
            f"{row['ap']:.4f} |"
        )


def predict_all(infer, scenes: list[tuple[str, str]], options, work: Path, post: dict) -> dict:
    """Predict and score every scene with ``infer``; the seconds count the predictions only."""
    import rasterio

    from roofseg.prediction.rasters.predict import predict_scene
    from roofseg.prediction.scoring.score import evaluate_scene

    work.mkdir(parents=True, exist_ok=True)
    seconds, probs, counts, objects, aps, megapixels = 0.0, [], np.zeros(3), np.zeros(3), [], 0.0
    for image, labels in scenes:
        out = work / f"{Path(image).stem}.tif"
        t0 = time.perf_counter()
        result = predict_scene(infer, image, out, options, overwrite=True, progress=False)
        seconds += time.perf_counter() - t0
        megapixels += result["width"] * result["height"] / 1e6
        with rasterio.open(out) as ds:
            probs.append(ds.read(1))
        s = evaluate_scene(out, labels, threshold=post["threshold"], min_area=post["min_area"])
        c = s["pixel"]["counts"]
        counts += [c["tp"], c["fp"], c["fn"]]
        objects += [s["objects"]["matched"], s["objects"]["predicted"], s["objects"]["true"]]
        aps.append(s["objects"]["average_precision"])
    tp, fp, fn = counts
    matched, predicted, true = objects
    return {
        "seconds": seconds,
        "probs": probs,
        "megapixels": megapixels,
        "iou": tp / (tp + fp + fn),
        "f1": 2 * matched / (predicted + true),
        "ap": float(np.mean(aps)),
    }


def int8_model(onnx_path: Path, scenes: list[tuple[str, str]], options, count: int, work: Path) -> Path:
    """The ONNX model quantised to INT8 by nncf, calibrated on ``count`` windows spread over the scenes."""
    import nncf
    import openvino as ov

    from roofseg.raster.scene import Scene
    from roofseg.raster.windows import stride_for, tile_grid

    windows = []
    per_scene = -(-count // len(scenes))
    for image, _ in scenes:
        with Scene(image, None, options.gsd) as scene:
            tiles = [
                t
                for t in tile_grid(scene.height, scene.width, options.tile, stride_for(options.tile, options.overlap))
                if t.height == t.width == options.tile
            ]
            for t in tiles[:: max(1, len(tiles) // per_scene)][:per_scene]:
                windows.append(scene.read(t.row, t.col, t.height, t.width)[0][None])
    quantized = nncf.quantize(ov.Core().read_model(str(onnx_path)), nncf.Dataset(windows), subset_size=len(windows))
    path = work / "int8.xml"
    ov.save_model(quantized, str(path))
    return path


if __name__ == "__main__":
    main()
