"""Label-free adaptation to a city the model never saw (run by hand):
`python bench/adapt.py --base FOLD_BASE.keras [--data ../shared/data] [--steps 100]`.

The fold of bench/finetune.py: a base trained on Dar es Salaam and Kathmandu, Kampala held out.
Kampala's imagery alone (every zoom of both blocks; its labels only score) adapts the base with
`roofseg adapt` (`bn`, `self-train`, `bn,self-train`), and `predict --match-colours` matches each
scene's colours to the training tiles'. Each is scored on Kampala block1 at 0.075, 0.15 and 0.3 m:
pixel IoU and object F1 of predict's footprints. As a sanity check, the same methods adapt the
base to one of its own training blocks (Dar es Salaam z20 block1), scored there: adaptation must
not cost in-domain accuracy. Imagery © OpenAerialMap contributors (CC BY 4.0); footprints ©
OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from finetune import HELD_OUT, files, scores
from real import ROOT, roofseg

KAMPALA = [
    "scenes-other-zooms/hot_data2_z19_block0",
    "scenes/hot_data2_z20_block0",
    "scenes/hot_data2_z20_block1",
    "scenes-other-zooms/hot_data2_z21_block0",
    "scenes-other-zooms/hot_data2_z21_block1",
]
SANITY = "scenes/hot_data1_z20_block1"
VARIANTS = {  # name: (adapt --method or None, adapt with --match-colours, predict with --match-colours)
    "base": (None, False, False),
    "match colours": (None, False, True),
    "bn": ("bn", False, False),
    "bn + match colours": ("bn", True, True),
    "self-train": ("self-train", False, False),
    "bn, self-train": ("bn,self-train", False, False),
    "bn, self-train + match colours": ("bn,self-train", True, True),
}


SANITY_VARIANTS = {"base", "match colours", "bn", "bn, self-train", "bn, self-train + match colours"}


def sanity_score(model: Path, data: Path, work: Path, tag: str, extra: tuple[str, ...]) -> dict:
    from roofseg.prediction.scoring.score import evaluate_scene

    image, truth = files(data, SANITY)
    raster = work / f"{tag}_sanity.tif"
    if not raster.exists():
        roofseg("predict", str(model), image, str(raster), *extra, "--quiet")
    s = evaluate_scene(raster, truth)
    return {"pixel_iou": round(s["pixel"]["iou"], 3), "object_f1": round(s["objects"]["f1"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "adapt")
    ap.add_argument("--base", type=Path, required=True, help="the fold's base (bench/finetune.py builds one)")
    ap.add_argument("--steps", type=int, default=100, help="self-train steps")
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    ap.add_argument("--no-sanity", action="store_true")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    chosen = set(args.only.split(",")) if args.only else None
    table, sanity = {}, {}
    for k, (name, (method, adapt_colours, predict_colours)) in enumerate(VARIANTS.items()):
        if chosen and name not in chosen:
            continue
        extra = ("--match-colours",) if predict_colours else ()
        for target, scenes in (("kampala", KAMPALA), ("sanity", [SANITY])):
            if target == "sanity" and (args.no_sanity or name not in SANITY_VARIANTS):
                continue
            model = args.base
            if method:
                model = work / f"{target}_{k}.keras"
                if not model.exists():
                    roofseg(
                        "adapt", str(args.base), *[files(args.data, n)[0] for n in scenes], "-o", str(model),
                        "--method", method, "--steps", str(args.steps), "--quiet",
                        *(["--match-colours"] if adapt_colours else []),
                    )  # fmt: skip
            if target == "kampala":
                table[name] = scores(model, args.data, work, f"v{k}", extra)
            else:
                sanity[name] = sanity_score(model, args.data, work, f"v{k}", extra)
        (work / "table.json").write_text(json.dumps({"kampala": table, "sanity": sanity}, indent=1))
    gsds = list(HELD_OUT)
    print(f"\nadapted on Kampala's imagery (no labels), self-train {args.steps} steps; scored on Kampala block1")
    print("| variant | " + " | ".join(f"{g}: IoU / F1" for g in gsds) + f" | sanity ({SANITY.split('/')[-1]}): IoU |")
    print("|---|" + "---|" * (len(gsds) + 1))
    for name, row in table.items():
        cells = " | ".join(f"{row[g]['pixel_iou']:.3f} / {row[g]['object_f1']:.3f}" for g in gsds)
        s = sanity.get(name)
        print(f"| {name} | {cells} | {s['pixel_iou']:.3f} |" if s else f"| {name} | {cells} | - |")


if __name__ == "__main__":
    main()
