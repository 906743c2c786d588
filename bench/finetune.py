"""A base model and its fine-tune in a city it never saw (run by hand):
`python bench/finetune.py [--data ../shared/data] [--base FOLD_BASE.keras] [--steps 20 --epochs 6] [--json OUT]`.

One fold of the shared HOT data: the base learns Dar es Salaam and Kathmandu at every zoom they
have (z19 ≈ 0.3 m, z20 ≈ 0.15 m, z21 ≈ 0.075 m), Kampala is held out. The base is `--base`, or
built here with `make base`'s recipe on the fold's scenes (`--base-steps` × `--base-epochs`
steps of 8×256², resumable). Then, on Kampala:

- (a) the base as it is;
- (b) the base fine-tuned on Kampala block0 (all its zooms) for `--steps` × `--epochs` steps
  (`train --init-from`, its defaults);
- (c) a model from random weights trained on the same tiles for the same steps;

each scored on Kampala block1 at 0.075 m (z21), 0.15 m (z20) and 0.3 m (z20 read at 0.3 m: z19
has no block1): pixel IoU, object F1 and AP at IoU ≥ 0.5 of predict's footprints, before and after
`roofseg tune` on block0 (z20). Every step is a roofseg command, echoed. Imagery © OpenAerialMap
contributors (CC BY 4.0); footprints © OpenStreetMap contributors (ODbL). Nothing is copied out
of the data folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from real import ROOT, roofseg

FOLD = [
    f"{folder}/hot_data{city}_z{zoom}_block{block}"
    for city, zooms in ((1, (19, 20)), (3, (19, 20, 21)))
    for zoom in zooms
    for block in (0, 1)
    for folder in ("scenes" if zoom == 20 else "scenes-other-zooms",)
]
LOCAL = [
    "scenes-other-zooms/hot_data2_z19_block0",
    "scenes/hot_data2_z20_block0",
    "scenes-other-zooms/hot_data2_z21_block0",
]
TUNE_ON = "scenes/hot_data2_z20_block0"
HELD_OUT = {  # what a model is scored on: the scene, and the GSD it is read at (None: as predict chooses)
    "0.075 m": ("scenes-other-zooms/hot_data2_z21_block1", None),
    "0.15 m": ("scenes/hot_data2_z20_block1", None),
    "0.3 m": ("scenes/hot_data2_z20_block1", "0.3"),
}
TILE = ["--tile-size", "256", "--overlap", "128", "--contact-px", "3", "--quiet"]
LICENCE = "imagery (c) OpenAerialMap contributors CC BY 4.0; footprints (c) OpenStreetMap contributors ODbL"


def files(data: Path, name: str) -> tuple[str, str]:
    root = data / "hotosm-ramp-sample"
    return str(root / f"{name}_image.tif"), str(root / f"{name}_labels_3857.geojson")


def postprocess(model: Path) -> dict:
    """The post-processing ``model``'s card carries (`roofseg tune`'s choice), else predict's defaults."""
    from dataclasses import asdict

    from roofseg.contracts.card import PostProcess, read_card

    card = read_card(model)
    return asdict(card.postprocess.choice if card and card.postprocess else PostProcess())


def scores(model: Path, data: Path, work: Path, tag: str, extra: tuple[str, ...] = ()) -> dict:
    """Pixel IoU, object F1 and AP of ``model``'s footprints on Kampala block1 at each GSD
    (``extra``: more predict options, e.g. --match-colours)."""
    from roofseg.prediction.scoring.score import evaluate_scene

    post = postprocess(model)
    out = {}
    for label, (name, gsd) in HELD_OUT.items():
        image, truth = files(data, name)
        raster = work / f"{tag}_{label.replace(' ', '')}.tif"
        if not raster.exists():
            roofseg("predict", str(model), image, str(raster), *(["--gsd", gsd] if gsd else []), *extra, "--quiet")
        s = evaluate_scene(raster, truth, threshold=post["threshold"], min_area=post["min_area"])
        out[label] = {
            "pixel_iou": round(s["pixel"]["iou"], 3),
            "object_f1": round(s["objects"]["f1"], 3),
            "ap": round(s["objects"]["average_precision"], 3),
        }
    return out


def fit(run: Path, manifest: Path, steps: int, epochs: int, *extra: str, seconds: dict) -> Path:
    """Train (resumable: an unfinished run is picked up, a finished one kept)."""
    if not (run / "summary.json").exists():
        t0 = time.perf_counter()
        roofseg(
            "train", str(manifest), "-o", str(run), "--steps-per-epoch", str(steps), "--epochs", str(epochs),
            "--batch", "8", "--patience", "100", "--seed", "0", "--quiet", *extra,
        )  # fmt: skip
        seconds[run.name] = time.perf_counter() - t0
    return run / "best.keras"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "finetune")
    ap.add_argument("--base", type=Path, default=None, help="the fold's base (default: built here)")
    ap.add_argument("--base-steps", type=int, default=100)
    ap.add_argument("--base-epochs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None, help="write the table as JSON (ship-base --measured)")
    args = ap.parse_args()
    if not (args.data / "hotosm-ramp-sample").is_dir():
        raise SystemExit(f"{args.data / 'hotosm-ramp-sample'}: no such folder (the shared data is needed)")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict = {}

    base = args.base
    if base is None:
        tiles = work / "fold_tiles"
        roofseg(
            "tile", *[files(args.data, n)[0] for n in FOLD], "-o", str(tiles), "--split-by", "block",
            "--split-block", "1024", "--val", "0.15", "--test", "0", *TILE,
        )  # fmt: skip
        base = fit(
            work / "fold_base", tiles / "manifest.json", args.base_steps, args.base_epochs, "--encoder-weights",
            "none", "--lr", "1e-3", "--lr-patience", "3", "--data-licence", LICENCE, seconds=seconds,
        )  # fmt: skip
    local = work / "local_tiles"
    roofseg(
        "tile", *[files(args.data, n)[0] for n in LOCAL], "-o", str(local), "--split-by", "block",
        "--split-block", "512", "--val", "0.2", "--test", "0", *TILE,
    )  # fmt: skip
    models = {
        "(a) base, as it is": base,
        "(b) base fine-tuned on block0": fit(
            work / "tuned", local / "manifest.json", args.steps, args.epochs, "--init-from", str(base), seconds=seconds
        ),
        "(c) from random weights, same steps": fit(
            work / "scratch",
            local / "manifest.json",
            args.steps,
            args.epochs,
            "--encoder-weights",
            "none",
            "--lr",
            "1e-3",
            seconds=seconds,
        ),  # fmt: skip
    }
    tune_image, tune_labels = files(args.data, TUNE_ON)
    table = {}
    for k, (name, model) in enumerate(models.items()):
        tuned = work / f"tuned_post_{k}.keras"
        if not tuned.exists():
            roofseg("tune", str(model), tune_image, "--labels", tune_labels, "-o", str(tuned), "--quiet")
        table[name] = {
            "as trained": scores(model, args.data, work, f"m{k}"),
            "after tune": scores(tuned, args.data, work, f"t{k}"),
        }

    print()
    print(
        f"fine-tune and scratch: {args.steps} x {args.epochs} steps of 8x256² on Kampala block0 (z19, z20, z21); "
        f"scored on Kampala block1; tune on {TUNE_ON}"
    )
    print("; ".join(f"{k}: {v / 60:.1f} min" for k, v in seconds.items()))
    gsds = list(HELD_OUT)
    print("| model | " + " | ".join(f"{g}: IoU / F1 / AP" for g in gsds) + " | after tune: " + " | ".join(gsds) + " |")
    print("|---|" + "---|" * (2 * len(gsds)))
    for name, row in table.items():
        cells = [
            f"{s['pixel_iou']:.3f} / {s['object_f1']:.3f} / {s['ap']:.3f}"
            for when in ("as trained", "after tune")
            for s in (row[when][g] for g in gsds)
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"fold": "Dar es Salaam + Kathmandu -> Kampala", "scores": table}, indent=1))


if __name__ == "__main__":
    main()
