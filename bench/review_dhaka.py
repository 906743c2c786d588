"""A reviewer who knows the truth, on Dhaka (run by hand):
`python bench/review_dhaka.py [--model base] [--decisions 50,100,200] [--steps 25 --epochs 4] [--json OUT]`.

The model predicts `more-places/dhaka_z19_block0` as `roofseg predict MODEL SCENE OUT.tif --vector
OUT.gpkg` does, and its buildings are reviewed in the order the review page puts them (doubtful
first): a prediction that matches a true building at IoU >= 0.5 is accepted, any other rejected.
`--reviewer careful` is a mapper who rejects only what is not a building (a prediction lying less
than half on true buildings) and skips a prediction that lies on roofs but outlines no single
building (merged houses): a rejection teaches ground, which a merged block of roofs is not.
After each number of decisions the store is what `roofseg review` would have written; then

    roofseg tile block0.tif --labels STORE -o tiles ...       # accepted roof, rejected ground, the rest unknown
    roofseg train tiles/manifest.json -o run --init-from MODEL ...

and the fine-tuned model is scored on `dhaka_z19_block1` (pixel IoU, object F1 at IoU >= 0.5, as
`bench/dhaka.py` scores). The same is done with all of block0's labels (the full-label gain) at
the same steps, and the model as it is is scored too. Every arm tiles block0 the same way (256 px,
overlap 128, contact targets as the base's, 512 px blocks with half of them for validation: the
larger part trains) and trains the same steps in the same order (seed 0). Recovery of the gain:
(F1 after N decisions - F1 as it is) / (F1 with every label - F1 as it is). Dhaka is read where it
lies, never copied.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from dhaka import score_model, train_and_held_out
from real import roofseg

TILE = ["--tile-size", "256", "--overlap", "128", "--contact-px", "3", "--contact-kind", "outline",
        "--split-by", "block", "--split-block", "512", "--val", "0.5", "--test", "0", "--quiet"]  # fmt: skip
TRAIN = ["--batch", "8", "--lr", "3e-4", "--schedule", "cosine", "--warmup-steps", "10", "--loss", "bce_dice",
         "--patience", "100", "--seed", "0", "--quiet"]  # fmt: skip


def simulated_review(
    model: str, scene: Path, labels: Path, work: Path, reviewer: str = "strict"
) -> tuple[Path, list[tuple[str, str]]]:
    """The model's footprints on ``scene`` and a truthful reviewer's decisions in the page's order:
    (footprints file, [(building key, accept|reject|skip), ...])."""
    import shapely
    import shapely.geometry
    from pyproj import CRS

    from roofseg.raster.labels import read_footprints
    from roofseg.review.queue import Pair, ordered, read_pairs

    raster = work / "predicted.tif"
    footprints = work / "predicted.gpkg"
    if not footprints.exists():
        roofseg("predict", model, str(scene), str(raster), "--vector", str(footprints), "--quiet")
    buildings = ordered(read_pairs([Pair(str(scene), str(footprints))]), "confidence")
    crs = CRS.from_wkt(buildings[0].crs)
    truth = [shapely.geometry.shape(g) for g in read_footprints(str(labels), crs)]
    tree = shapely.STRtree(truth)
    decisions = []
    roofs = shapely.union_all(truth)
    for b in buildings:
        best = 0.0
        on_roofs = shapely.area(shapely.intersection(b.geometry, roofs)) / max(shapely.area(b.geometry), 1e-9)
        for k in tree.query(b.geometry, predicate="intersects"):
            t = truth[k]
            best = max(
                best, shapely.area(shapely.intersection(b.geometry, t)) / shapely.area(shapely.union(b.geometry, t))
            )
        if best >= 0.5:
            decisions.append((b.key, "accept"))
        elif reviewer == "careful" and on_roofs >= 0.5:
            decisions.append((b.key, "skip"))  # roofs, but not one building: neither roof nor ground to teach
        else:
            decisions.append((b.key, "reject"))
    return footprints, decisions


def write_store(path: Path, footprints: Path, decisions: list[tuple[str, str]]) -> Path:
    from roofseg.review.store import DecisionStore

    path.unlink(missing_ok=True)
    store = DecisionStore(path, [str(footprints)])
    for key, decision in decisions:
        store.decide(key, decision)
    store.close()
    return path


def fine_tune(
    model: str, scene: Path, labels: Path, work: Path, name: str, steps: int, epochs: int
) -> tuple[Path, dict]:
    """Tile ``scene`` with ``labels`` and train from ``model``; (best.keras, the manifest's counts)."""
    tiles, run = work / f"{name}_tiles", work / f"{name}_run"
    if not (tiles / "manifest.json").exists():
        roofseg("tile", str(scene), "--labels", str(labels), "-o", str(tiles), *TILE)
    manifest = json.loads((tiles / "manifest.json").read_text())
    counts = {s: manifest["splits"][s]["tiles"] for s in ("train", "val")}
    if not (run / "summary.json").exists():
        roofseg("train", str(tiles / "manifest.json"), "-o", str(run), "--init-from", model,
                "--steps-per-epoch", str(steps), "--epochs", str(epochs), *TRAIN)  # fmt: skip
    return run / "best.keras", counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base")
    ap.add_argument("--decisions", default="50,100,200")
    ap.add_argument("--reviewer", choices=("strict", "careful"), default="strict")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "review-dhaka")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    (scene, labels), held_out = train_and_held_out()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    footprints, decisions = simulated_review(args.model, scene, labels, work, args.reviewer)
    accepted = sum(d == "accept" for _, d in decisions)
    skipped = sum(d == "skip" for _, d in decisions)
    print(f"block0: {len(decisions)} predicted buildings, {accepted} of them match a true one, {skipped} skipped "
          f"({args.reviewer} reviewer)", flush=True)  # fmt: skip
    tag = "review" if args.reviewer == "strict" else "careful"

    rows = {"as it is": {"model": args.model, "decisions": 0}}
    # a queue shorter than a number asked: its every decision, once
    for n in sorted({min(int(k), len(decisions)) for k in args.decisions.split(",")}):
        chosen = decisions[:n]
        store = write_store(work / f"{tag}{n}.review.sqlite", footprints, chosen)
        model, tiles = fine_tune(args.model, scene, store, work, f"{tag}{n}", args.steps, args.epochs)
        rows[f"{n} decisions"] = {"model": str(model), "decisions": len(chosen),
                                  "accepted": sum(d == "accept" for _, d in chosen), "tiles": tiles}  # fmt: skip
    model, tiles = fine_tune(args.model, scene, labels, work, "full", args.steps, args.epochs)
    rows["every label of block0"] = {"model": str(model), "decisions": None, "tiles": tiles}

    for name, row in rows.items():
        s = score_model(row["model"], held_out, work)
        row.update(pixel_iou=round(s["pixel_iou"], 3), object_f1=round(s["object_f1"], 3),
                   matched=s["matched"], predicted=s["predicted"], true=s["true"])  # fmt: skip
    base, full = rows["as it is"], rows["every label of block0"]
    for row in rows.values():
        gain = full["object_f1"] - base["object_f1"]
        row["f1_recovered"] = round((row["object_f1"] - base["object_f1"]) / gain, 2) if gain > 0 else None
        pgain = full["pixel_iou"] - base["pixel_iou"]
        row["iou_recovered"] = round((row["pixel_iou"] - base["pixel_iou"]) / pgain, 2) if pgain > 0 else None
    print(f"\nscored on dhaka_z19_block1; {args.steps * args.epochs} steps of 8x256 px per fine-tune "
          f"({time.perf_counter() - t0:.0f} s in all)")  # fmt: skip
    print("| trained on | decisions (accepted) | train/val tiles | pixel IoU | object F1 (matched/true/predicted) "
          "| share of the full-label gain (F1; IoU) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        dec = "" if row["decisions"] in (None, 0) else f"{row['decisions']} ({row['accepted']})"
        tiles = f"{row['tiles']['train']}/{row['tiles']['val']}" if "tiles" in row else ""
        recovered = f"{row['f1_recovered']}; {row['iou_recovered']}"
        print(f"| {name} | {dec} | {tiles} | {row['pixel_iou']:.3f} | {row['object_f1']:.3f} "
              f"({row['matched']}/{row['true']}/{row['predicted']}) | {recovered} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
