"""Each new part of the base model's recipe, measured alone against the step before it (run by hand):
`python bench/parts.py [--data ../shared/data] [--steps 30 --epochs 5] [--only NAME,...]`.

On the fold of bench/finetune.py (train on Dar es Salaam and Kathmandu, score on Kampala block1,
a city no run saw, at 0.075, 0.15 and 0.3 m), models from random weights train for the same steps
of 8 tiles of 128 px, from the same seed, each adding one part to the one before:

0. the old recipe: z20 scenes only (one GSD), flips, rotation ±30°, brightness, contrast;
1. + several GSDs: the z19, z20 and z21 scenes;
2. + scale: the GSD drawn within ±30 %;
3. + colour: hue, saturation, per-band gain, gamma;
4. + randomized histogram matching;
5. + blur and JPEG artefacts (every default on).

Pixel IoU and object F1 of predict's footprints at each GSD are printed side by side, with their
mean. bfloat16 against float32 is measured by bench/train.py --precision-steps. Imagery ©
OpenAerialMap contributors (CC BY 4.0); footprints © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from finetune import FOLD, files, scores
from real import ROOT, roofseg

SCALE = ["--scale", "0.3"]
COLOUR = ["--hue", "0.03", "--saturation", "0.3", "--gain", "0.1", "--gamma", "0.3"]
HISTOGRAM = ["--histogram-match", "0.5"]
NOISE = ["--blur", "0.2", "--jpeg", "0.2"]
PARTS = {  # which tiles, and the augmentation options on top of the defaults (flips, rotation, brightness, contrast)
    "0 old recipe, one GSD": ("z20", []),
    "1 + several GSDs": ("all", []),
    "2 + scale": ("all", SCALE),
    "3 + colour": ("all", SCALE + COLOUR),
    "4 + histogram matching": ("all", SCALE + COLOUR + HISTOGRAM),
    "5 + blur, JPEG (every part)": ("all", SCALE + COLOUR + HISTOGRAM + NOISE),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "parts")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated numbers of the parts to run")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    common = ["--tile-size", "128", "--split-by", "block", "--split-block", "512", "--val", "0.15", "--test", "0"]
    common += ["--contact-px", "3", "--quiet"]
    tiles = {
        "z20": [n for n in FOLD if "_z20_" in n],
        "all": FOLD,
    }
    for key, names in tiles.items():
        roofseg("tile", *[files(args.data, n)[0] for n in names], "-o", str(work / f"tiles_{key}"), *common)
    chosen = set(args.only.split(",")) if args.only else None
    table = {}
    for name, (which, flags) in PARTS.items():
        if chosen and name.split()[0] not in chosen:
            continue
        run = work / f"run{name.split()[0]}"
        if not (run / "summary.json").exists():
            roofseg(
                "train", str(work / f"tiles_{which}" / "manifest.json"), "-o", str(run), "--encoder-weights", "none",
                "--lr", "1e-3", "--batch", "8", "--steps-per-epoch", str(args.steps), "--epochs", str(args.epochs),
                "--patience", "100", "--seed", "0", "--quiet", *flags,
            )  # fmt: skip
        table[name] = scores(run / "best.keras", args.data, work, f"p{name.split()[0]}")
        (work / "table.json").write_text(json.dumps(table, indent=1))
    gsds = list(next(iter(table.values())))
    print(f"\n{args.steps * args.epochs} steps of 8x128² each, random weights, seed 0; scored on Kampala block1")
    print("| recipe | " + " | ".join(f"{g}: IoU / F1" for g in gsds) + " | mean IoU |")
    print("|---|" + "---|" * (len(gsds) + 1))
    for name, row in table.items():
        mean = sum(row[g]["pixel_iou"] for g in gsds) / len(gsds)
        print(
            f"| {name} | "
            + " | ".join(f"{row[g]['pixel_iou']:.3f} / {row[g]['object_f1']:.3f}" for g in gsds)
            + f" | {mean:.3f} |"
        )


if __name__ == "__main__":
    main()
