"""Score models on Dhaka, the place the shipped base never trains on (or on other scenes): pooled pixel
IoU and object F1, and the longest outline an .osm gets.

    python bench/dhaka.py MODEL [MODEL ...] [--blocks 0,1,2] [--json OUT.json]
    python bench/dhaka.py MODEL --scene SCENE.tif:LABELS.geojson [--scene ...]   # other scenes alike
    python bench/dhaka.py MODEL --gsds card,native,0.15,0.1                       # read at each GSD
    python bench/dhaka.py A.keras B.keras --choice-of base      # each with base's tuned choice and reading

Each model predicts every block as ``roofseg predict MODEL SCENE OUT.tif --vector OUT.gpkg`` does
(the card's defaults, tune's choice where it has one), and the footprints are scored as
``roofseg evaluate-scene`` scores them; the counts are pooled over the blocks (pixels: true and
false positives and negatives; buildings: predicted, true, matched at IoU >= 0.5). Models are
measured one after the other in one run, so their figures compare. ``MODEL`` is a .keras file or
``base``. ``--gsds``: each model once per reading (``card``: as its card says, ``native``: every
scene at its own GSD, a number: every scene at that GSD).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DHAKA = ROOT.parent / "shared" / "data" / "more-places"


def dhaka_blocks(blocks: list[int]) -> list[tuple[Path, Path]]:
    return [
        (DHAKA / f"dhaka_z19_block{b}_image.tif", DHAKA / f"dhaka_z19_block{b}_labels_3857.geojson") for b in blocks
    ]


def train_and_held_out() -> tuple[tuple[Path, Path], list[tuple[Path, Path]]]:
    """Block0 (the block a fine-tune learns from) and [block1] (the block it is scored on), or exit
    saying the data is absent."""
    if not DHAKA.exists():
        raise SystemExit(f"{DHAKA} is absent: nothing to measure")
    return dhaka_blocks([0])[0], dhaka_blocks([1])


def scenes_or_dhaka(specs: list[str], blocks: list[int]) -> list[tuple[Path, Path]]:
    """The scenes ``SCENE:LABELS`` of ``specs``, else Dhaka's ``blocks`` (or exit saying Dhaka is absent)."""
    if specs:
        return [tuple(Path(p) for p in s.split(":", 1)) for s in specs]
    if not DHAKA.exists():
        raise SystemExit(f"{DHAKA} is absent: nothing to measure")
    return dhaka_blocks(blocks)


def score_model(model: str, scenes: list[tuple[Path, Path]], work: Path, extra: list[str] = ()) -> dict:
    """Predict and score ``scenes`` (scene, labels) with ``model``; return pooled and per-scene scores
    and the longest outline written (nodes of the .osm's longest way)."""
    import xml.etree.ElementTree as ET

    from roofseg.prediction.scoring.score import evaluate_scene

    rows, pixel, objects, longest = {}, [0, 0, 0], [0, 0, 0], 0
    for scene, labels in scenes:
        b = scene.stem.removesuffix("_image")
        out = work / f"{Path(model).stem}_{b}.tif"
        cmd = [sys.executable, "-m", "roofseg.cli", "predict", model, str(scene), str(out)]
        cmd += ["--vector", str(out.with_suffix(".osm")), "--overwrite", "--quiet", *extra]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        ways = [len(list(w.iter("nd"))) for w in ET.parse(out.with_suffix(".osm")).getroot().iter("way")]
        longest = max([longest, *ways])
        result = evaluate_scene(out, labels)
        c, o = result["pixel"]["counts"], result["objects"]
        pixel = [pixel[0] + c["tp"], pixel[1] + c["fp"], pixel[2] + c["fn"]]
        objects = [objects[0] + o["predicted"], objects[1] + o["true"], objects[2] + o["matched"]]
        rows[b] = {"pixel_iou": result["pixel"]["iou"], "object_f1": o["f1"], **_counts(o)}
    tp, fp, fn = pixel
    predicted, true, matched = objects
    f1 = 2 * matched / (predicted + true) if predicted + true else 0.0
    return {"pixel_iou": tp / max(tp + fp + fn, 1), "object_f1": f1, "predicted": predicted, "true": true,
            "matched": matched, "longest_way": longest, "scenes": rows}  # fmt: skip


def with_choice_of(model: str, source: str, work: Path) -> str:
    """A copy of ``model`` in ``work`` whose card has ``source``'s tuned choice, its reading included."""
    import shutil

    from roofseg.contracts.card import read_card, write_card
    from roofseg.sources import model_file

    path = Path(model_file(model))
    out = work / f"{path.parent.name}-{path.stem}.keras"
    shutil.copy(path, out)
    write_card(out, read_card(out).with_tuning(read_card(model_file(source)).postprocess))
    return str(out)


def _counts(o: dict) -> dict:
    return {k: o[k] for k in ("predicted", "true", "matched")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--blocks", default="0,1,2")
    ap.add_argument("--json", default=None)
    ap.add_argument("--predict-args", default="", help="more options for roofseg predict, as one string")
    ap.add_argument("--scene", action="append", default=[], help="SCENE:LABELS, instead of Dhaka's blocks")
    ap.add_argument("--gsds", default="card", help="readings, comma-separated: card, native, or a GSD in metres")
    ap.add_argument("--choice-of", default=None, help="score each model with this model's tuned choice (and reading)")
    args = ap.parse_args()
    scenes = scenes_or_dhaka(args.scene, [int(b) for b in args.blocks.split(",")])
    readings = {"card": [], "native": ["--native"]}
    runs = [(m, g) for m in args.models for g in args.gsds.split(",")]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, gsd in runs:
            name = model if args.gsds == "card" else f"{model} @ {gsd}"
            extra = [*args.predict_args.split(), *readings.get(gsd, ["--gsd", gsd])]
            scored = with_choice_of(model, args.choice_of, Path(tmp)) if args.choice_of else model
            out[name] = score_model(scored, scenes, Path(tmp), extra)
            s = out[name]
            line = f"{name}: pixel IoU {s['pixel_iou']:.3f}, object F1 {s['object_f1']:.3f} "
            line += f"({s['matched']} of {s['true']} buildings matched, {s['predicted']} predicted; "
            line += f"longest .osm way {s['longest_way']} nodes)"
            print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
