"""Predicting at the model's GSD (run by hand, after `make demo`): `python bench/gsd.py [--model demo/run/best.keras]`.

The demo model is trained on the sample at 0.3 m. The same area is rendered at 0.15 m and at
0.6 m (the sample's layout is in metres, so the same seed and extent give the same roofs), each
predicted natively and at the model's 0.3 m (read resampled, written back on the scene's grid),
and scored against its footprints. Goal: at the model's GSD, pixel IoU within 0.05 of 0.3 m.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "demo" / "run" / "best.keras")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "gsd")
    args = ap.parse_args()
    if not args.model.exists():
        raise SystemExit(f"{args.model}: no model; run `make demo` first")
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene
    from roofseg.prediction.scoring.score import evaluate_scene
    from roofseg.sample import write_sample
    from roofseg.training.model import load_model

    model = load_model(args.model, compile=False)
    rows = []
    for pixel in (0.3, 0.15, 0.6):
        folder = args.work / f"s{pixel}"
        if not (folder / "sample_image.tif").exists():
            write_sample(folder, size=round(2048 * 0.3 / pixel), pixel=pixel, seed=0, progress=False)
        for mode, gsd in (("native", None), ("at 0.3 m", 0.3)):
            if pixel == 0.3 and gsd:
                continue
            out = args.work / f"p{pixel}-{'native' if gsd is None else 'gsd'}.tif"
            predict_scene(
                model, folder / "sample_image.tif", out, PredictOptions(gsd=gsd), overwrite=True, progress=False
            )
            scores = evaluate_scene(out, folder / "sample_labels.geojson")
            rows.append((pixel, mode, scores["pixel"]["iou"], scores["objects"]["f1"]))
    base = rows[0][2]
    print(f"model {args.model} (trained at 0.3 m); pixel IoU and object F1 against each rendering's footprints")
    for pixel, mode, iou, f1 in rows:
        print(
            f"  scene {pixel:4} m, predicted {mode:9s}: pixel IoU {iou:.4f} (vs 0.3 m {iou - base:+.4f})  object F1 "
            f"{f1:.4f}"
        )


if __name__ == "__main__":
    main()
