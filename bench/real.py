"""Real cities (run by hand): `python bench/real.py [--data ../shared/data] [--steps 40 --epochs 8]`.

Trains on HOT/OpenAerialMap scenes of Dar es Salaam and Kathmandu with their OSM footprints and
scores Kampala, a city the runs never saw (its dense block first). Imagery © OpenAerialMap
contributors (CC BY 4.0); footprints © OpenStreetMap contributors (ODbL).

Settings (documented, fixed): scenes resampled to 0.3 m (`tile --gsd 0.3`; prediction follows the
model's card), 128 px tiles split by 512 px blocks (15 % validation), contact targets at 3 px,
a ResNet34 U-Net from random weights (`--encoder-weights none`), Adam 1e-3, batch 8, `--steps`
steps × `--epochs` epochs, seed 0. Two models train on the same tiles in the same order: one on
the roof alone (`--no-contact`), one with the contact output. Each Kampala scene is then scored:
pixel IoU/F1, and object F1 at IoU ≥ 0.5 of the footprints from (a) the roof-only model, (b) the
contact model without splitting, (c) split along its contact band, (d) split and regularized.
The error picture of (c) is drawn for each scene. Nothing is copied out of the data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["hot_data1_z20_block0", "hot_data1_z20_block1", "hot_data3_z20_block0", "hot_data3_z20_block1"]
TEST = ["hot_data2_z20_block1", "hot_data2_z20_block0"]  # Kampala: the dense block, then the larger one


def roofseg(*args: str) -> None:
    """Run one roofseg command as a user would, echoing it."""
    cmd = [str(Path(sys.executable).with_name("roofseg")), *args]
    print("$ roofseg " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def hot_scenes(data: Path) -> Path:
    """The folder of HOT scenes in the shared data folder ``data``, or exit saying it is needed."""
    scenes = data / "hotosm-ramp-sample" / "scenes"
    if not scenes.is_dir():
        raise SystemExit(f"{scenes}: no such folder (the shared data is needed)")
    return scenes


def scene_files(scenes: Path, name: str) -> tuple[str, str]:
    return str(scenes / f"{name}_image.tif"), str(scenes / f"{name}_labels_3857.geojson")


def score(prediction: Path, binary: Path, labels: str, regularize: bool, separate: bool) -> dict:
    """Pixel scores and object scores of the footprints predict --vector would write."""
    import fiona
    from shapely.geometry import shape

    from roofseg.prediction.scoring.score import evaluate_scene, object_scores
    from roofseg.prediction.vector.vectorize import VectorOptions, write_footprints
    from roofseg.raster.labels import VectorLabels
    from roofseg.raster.scene import Scene

    scores = evaluate_scene(prediction, labels, min_area=5.0, separate=separate)
    if regularize:
        out = prediction.with_name(prediction.stem + "_regular.gpkg")
        write_footprints(prediction, binary, out, VectorOptions(".gpkg", 5.0, True, separate))
        with fiona.open(out) as src:
            predicted = [shape(f.geometry) for f in src]
        with Scene(prediction, bands=(1,)) as grid:
            truth = VectorLabels(labels, grid)
            scores["objects"] = object_scores(predicted, truth.geoms, grid.ds, 5.0)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "real")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    scenes = hot_scenes(args.data)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)

    images, labels = zip(*(scene_files(scenes, n) for n in TRAIN))
    tiles = work / "tiles"
    if not (tiles / "manifest.json").exists():
        roofseg(
            "tile",
            *images,
            *[a for lab in labels for a in ("--labels", lab)],
            "-o",
            str(tiles),
            "--gsd",
            "0.3",
            "--tile-size",
            "128",
            "--split-by",
            "block",
            "--test",
            "0",
            "--contact-px",
            "3",
            "--quiet",
        )
    runs = {"roof only": work / "run_roof", "roof + contact": work / "run_contact"}
    seconds = {}
    for name, run in runs.items():
        if not (run / "summary.json").exists():
            t0 = time.perf_counter()
            roofseg(
                "train",
                str(tiles / "manifest.json"),
                "-o",
                str(run),
                "--encoder-weights",
                "none",
                "--lr",
                "1e-3",
                "--batch",
                "8",
                "--steps-per-epoch",
                str(args.steps),
                "--epochs",
                str(args.epochs),
                "--patience",
                "100",
                "--seed",
                "0",
                "--quiet",
                *(["--no-contact"] if name == "roof only" else []),
            )
            seconds[name] = time.perf_counter() - t0

    rows = []
    for test in TEST:
        image, truth = scene_files(scenes, test)
        for name, run in runs.items():
            out = work / f"{test}_{'roof' if name == 'roof only' else 'contact'}.tif"
            roofseg("predict", str(run / "best.keras"), image, str(out), "--threshold", "0.5", "--overwrite", "--quiet")
            binary = out.with_name(out.stem + "_binary.tif")
            variants = (
                [("roof only", False, False)]
                if name == "roof only"
                else [
                    ("contact model, not split", False, False),
                    ("contact model, split", True, False),
                    ("split + regularized", True, True),
                ]
            )
            for label, separate, regular in variants:
                s = score(out, binary, truth, regular, separate)
                rows.append((test, label, s["pixel"]["iou"], s["pixel"]["f1"], s["objects"]))
            if name != "roof only":
                picture = work / f"{test}_errors.png"
                roofseg("evaluate-scene", str(out), truth, "--picture", str(picture), "--scene", image)

    print()
    print(
        f"trained {args.steps} steps x {args.epochs} epochs, batch 8, 128 px at 0.3 m on {', '.join(TRAIN)}; "
        + "; ".join(f"{k}: {v / 60:.1f} min" for k, v in seconds.items())
    )
    print("| Kampala scene | footprints from | pixel IoU | pixel F1 | objects predicted / true | matched | object F1 |")
    print("|---|---|---|---|---|---|---|")
    for test, label, iou, f1, ob in rows:
        print(
            f"| {test} | {label} | {iou:.3f} | {f1:.3f} | {ob['predicted']} / {ob['true']} | {ob['matched']} | "
            f"{ob['f1']:.3f} |"
        )
    print(f"pictures: {', '.join(str(work / f'{t}_errors.png') for t in TEST)}")
    (work / "table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
