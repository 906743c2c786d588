"""Fine-tuning for a new city (run by hand): `python bench/finetune.py [--data ../shared/data] [--steps 20 --epochs 6]`.

A base model trained on Dar es Salaam and Kathmandu (`bench/real.py`'s scenes and settings:
0.3 m, 128 px tiles, contact targets, random encoder, Adam 1e-3, batch 8, `--base-steps` ×
`--base-epochs`) is taken to Kampala, which it never saw. On Kampala block0 (the local labels):
(b) the base fine-tuned with `train --init-from` for `--steps` × `--epochs` steps, in each variant
of `--variants` (learning rate, a frozen-encoder start); (c) a model from random weights trained
for the same steps on the same tiles. Then (a) the base as it is, (b) and (c) are scored on Kampala
block1: pixel IoU, object F1 and AP at IoU ≥ 0.5, before and after `roofseg tune` on block0.
Every step is a roofseg command, echoed. Imagery © OpenAerialMap contributors (CC BY 4.0);
footprints © OpenStreetMap contributors (ODbL). Nothing is copied out of the data folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from real import ROOT, TRAIN, hot_scenes, roofseg, scene_files

LOCAL, HELD_OUT = "hot_data2_z20_block0", "hot_data2_z20_block1"
VARIANTS = {
    "lr1e-4": ["--lr", "1e-4"],
    "lr1e-3": ["--lr", "1e-3"],
    "freeze2+lr1e-4": ["--lr", "1e-4", "--freeze-encoder-epochs", "2"],
}


def scores(model: Path, image: str, truth: str, work: Path, name: str) -> dict:
    """Pixel IoU, object F1 and AP of ``model``'s footprints on the held-out scene."""
    from roofseg.prediction.scoring.score import evaluate_scene

    out = work / f"{name}.tif"
    roofseg("predict", str(model), image, str(out), "--overwrite", "--quiet")
    post = postprocess(model)
    s = evaluate_scene(out, truth, threshold=post["threshold"], min_area=post["min_area"])
    return {
        "pixel_iou": s["pixel"]["iou"],
        "object_f1": s["objects"]["f1"],
        "ap": s["objects"]["average_precision"],
        "matched": s["objects"]["matched"],
        "predicted": s["objects"]["predicted"],
        "true": s["objects"]["true"],
    }


def postprocess(model: Path) -> dict:
    """The post-processing ``model``'s card carries (`roofseg tune`'s choice), else predict's defaults."""
    from dataclasses import asdict

    from roofseg.contracts.card import PostProcess, read_card

    card = read_card(model)
    return asdict(card.postprocess.choice if card and card.postprocess else PostProcess())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "finetune")
    ap.add_argument("--base-steps", type=int, default=40)
    ap.add_argument("--base-epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    scenes = hot_scenes(args.data)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    common = ["--tile-size", "128", "--gsd", "0.3", "--contact-px", "3", "--quiet"]

    base_tiles, local_tiles = work / "base_tiles", work / "local_tiles"
    if not (base_tiles / "manifest.json").exists():
        images, labels = zip(*(scene_files(scenes, n) for n in TRAIN))
        roofseg(
            "tile",
            *images,
            *[a for lab in labels for a in ("--labels", lab)],
            "-o",
            str(base_tiles),
            "--split-by",
            "block",
            "--test",
            "0",
            *common,
        )
    if not (local_tiles / "manifest.json").exists():
        image, labels = scene_files(scenes, LOCAL)
        roofseg(
            "tile",
            image,
            "--labels",
            labels,
            "-o",
            str(local_tiles),
            "--split-by",
            "block",
            "--split-block",
            "128",
            "--val",
            "0.2",
            "--test",
            "0",
            *common,
        )
    train = ["--batch", "8", "--patience", "100", "--seed", "0", "--quiet"]
    seconds = {}

    def fit(run: Path, manifest: Path, steps: int, epochs: int, *extra: str) -> Path:
        if not (run / "summary.json").exists():
            t0 = time.perf_counter()
            roofseg(
                "train",
                str(manifest / "manifest.json"),
                "-o",
                str(run),
                "--steps-per-epoch",
                str(steps),
                "--epochs",
                str(epochs),
                "--overwrite",
                *train,
                *extra,
            )
            seconds[run.name] = time.perf_counter() - t0
        return run / "best.keras"

    models = {
        "(a) base, as it is": fit(
            work / "base", base_tiles, args.base_steps, args.base_epochs, "--encoder-weights", "none", "--lr", "1e-3"
        )
    }
    for variant in args.variants.split(","):
        models[f"(b) fine-tuned, {variant}"] = fit(
            work / f"tuned_{variant}",
            local_tiles,
            args.steps,
            args.epochs,
            "--init-from",
            str(models["(a) base, as it is"]),
            *VARIANTS[variant],
        )
    models["(c) from random weights"] = fit(
        work / "scratch", local_tiles, args.steps, args.epochs, "--encoder-weights", "none", "--lr", "1e-3"
    )

    held_image, held_truth = scene_files(scenes, HELD_OUT)
    local_image, local_labels = scene_files(scenes, LOCAL)
    rows = []
    for k, (name, model) in enumerate(models.items()):
        tuned = model.with_name("tuned.keras")
        if not tuned.exists():
            roofseg("tune", str(model), local_image, "--labels", local_labels, "-o", str(tuned), "--quiet")
        rows.append(
            (
                name,
                scores(model, held_image, held_truth, work, f"m{k}"),
                scores(tuned, held_image, held_truth, work, f"m{k}_tuned"),
                postprocess(tuned),
            )
        )

    print()
    print(
        f"base: {args.base_steps} x {args.base_epochs} steps on {', '.join(TRAIN)}; fine-tune and scratch: "
        f"{args.steps} x "
        f"{args.epochs} steps on {LOCAL}; scored on {HELD_OUT} (batch 8, 128 px at 0.3 m)"
    )
    print("; ".join(f"{k}: {v / 60:.1f} min" for k, v in seconds.items()))
    print(
        "| model | pixel IoU | object F1 | AP@0.5 | after tune: pixel IoU | object F1 | AP@0.5 | tuned threshold / "
        "min area |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, before, after, post in rows:
        print(
            f"| {name} | {before['pixel_iou']:.3f} | {before['object_f1']:.3f} | {before['ap']:.3f} | "
            f"{after['pixel_iou']:.3f} "
            f"| {after['object_f1']:.3f} | {after['ap']:.3f} | {post['threshold']:g} / {post['min_area']:g} m² |"
        )
    (work / "table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
