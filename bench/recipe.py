"""The base's recipe, part by part, at a real budget (run by hand; resumable, across sessions):

    python bench/recipe.py --tiles BASE_TILES [--work DIR] [--steps 1500] [--only today,plateau] [--score-only]

Every arm continues the same start (``--start``, default the shipped base) with ``make base``'s
recipe (``make base-train``, its seed, batch 8 of 256 px, tiles drawn in equal shares per place and
GSD) for the same number of steps, changing one part:

- today: the recipe as ``make base`` runs it (warm-up and cosine decay, BCE + Dice, border weight 4,
  flips, rotation, brightness, contrast, scale, colour, blur and JPEG);
- plateau: the rate cut on plateaus of the validation loss instead of the schedule;
- dice: Dice alone; borders1: the border loss weighted 1 (``make base``'s until 4 won this bench);
- focal: the borders' cross-entropy replaced by focal loss (``--contact-loss focal_dice``);
- gaps: the roof's cross-entropy on the ground between nearly touching buildings weighed 10 (the
  U-Net paper's w0, ``--gap-weight 10``);
- distance: borders graded by the distance to each building's edge (``tile --contact-kind
  distance``: a distance head in the border channel), cut once into ``DIR/distance-tiles``;
- histogram: + randomized histogram matching (the one augmentation part the recipe leaves off);
- no-scale, no-colour, no-noise: each augmentation part taken off again;
- tiles512: tiles of 512 px (overlap 256), 2 a step (the same pixels as 8 of 256 px): more context
  around each roof; cut once from the scenes ``--tiles`` was made of into ``DIR/tiles512-tiles``.

An arm's run lives in ``DIR/ARM`` (a killed arm resumes where it stopped; a finished one is not run
again). Each arm's latest epoch (``last.keras``: every arm at the same steps) is then scored side by
side in one run with the start itself, with the start's post-processing and reading
(``bench/dhaka.py --choice-of``), on Dhaka (never trained on) and on dense Kampala (a training
place). ``--tiles``: the folder ``make base-tiles`` made. The start's SHA-256 and ``make
base-train``'s command are kept in ``DIR``: arms of another start or recipe are refused. Arms
compared are trained at one precision (bfloat16 with AMX, else float32, as ``auto`` chose on the
folder's first run and kept in ``DIR/precision``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from dhaka import ROOT, scenes_or_dhaka, score_model, with_choice_of

HOT = ROOT.parent / "shared" / "data" / "hotosm-ramp-sample" / "scenes"
KAMPALA = (HOT / "hot_data2_z20_block1_image.tif", HOT / "hot_data2_z20_block1_labels_3857.geojson")
ARMS = {  # options appended to make base's (click keeps an option's last value)
    "today": "",
    "histogram": "--histogram-match 0.5",
    "plateau": "--schedule plateau",
    "dice": "--loss dice",
    "borders1": "--contact-weight 1",
    "focal": "--contact-loss focal_dice",  # the borders' cross-entropy replaced by focal loss
    "gaps": "--gap-weight 10",  # the U-Net paper's w0: the ground between nearly touching buildings
    "distance": "",  # make base's training on tiles of graded borders (TILE_ARMS)
    "no-scale": "--scale 0",
    "no-colour": "--hue 0 --saturation 0 --gain 0 --gamma 0",
    "no-noise": "--blur 0 --jpeg 0",
    "tiles512": "--batch 2",  # the same pixels a step as 8 of 256 px
}
TILE_ARMS = {  # arms trained on tiles of their own, cut by make base-tiles with these options
    "tiles512": "--tile-size 512 --overlap 256",
    "distance": "--contact-kind distance",
}
EPOCH_STEPS = 100


def pin(path: Path, value: str, what: str) -> None:
    """Write ``value`` to ``path`` on the first run; exit if a later run's differs (arms compare
    only if they share it)."""
    if path.exists() and path.read_text() != value:
        raise SystemExit(f"{path}: the arms in {path.parent} had {what}; use another --work")
    path.write_text(value)


def pin_start(start: str, work: Path) -> str:
    """The start's SHA-256, pinned in ``work``: the digest a model trained from it records
    (``read_base``: ``base`` by the file that ships, not by its float32 copy in the cache)."""
    from roofseg.sources import model_file
    from roofseg.training.finetune import read_base

    digest = read_base(model_file(start)).sha256
    pin(work / "start.sha256", f"{digest}  {start}\n", "another start")
    return digest


def pin_recipe(work: Path, start: str, epochs: int, precision: str) -> None:
    """``make base-train``'s command (``make -n``, the arm's options left out), pinned in ``work``:
    a change to ``make base``'s recipe makes the arms already trained another experiment."""
    cmd = arm_command("today", Path("TILES"), Path("RUN"), start, epochs, precision)
    # the venv's stamp assumed up to date: else -n would print the install too, whenever setup.cfg is newer
    cmd += ["-n", "--assume-old", ".venv/.installed-stamp"]
    recipe = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    pin(work / "recipe", recipe, "another recipe (make base-train has changed since)")


def pin_precision(work: Path) -> str:
    """The precision every arm in ``work`` trains in: the one ``auto`` chose on the first run (bfloat16
    with AMX, else float32), kept so that arms trained on another kind of machine still compare."""
    from roofseg.training.precision import choose_precision

    path = work / "precision"
    if not path.exists():
        precision, why = choose_precision("auto")
        path.write_text(f"{precision}\n# {why}\n")
    return path.read_text().split()[0]


def finished(run: Path, epochs: int) -> bool:
    history = run / "history.csv"
    return history.exists() and len(history.read_text().splitlines()) - 1 >= epochs


def arm_command(name: str, tiles: Path, run: Path, start: str, epochs: int, precision: str) -> list[str]:
    """``make base-train`` with the arm's options."""
    cmd = ["make", "-s", "base-train", f"BASE_TILES={tiles}", f"BASE_RUN={run}", f"BASE_INIT={start}"]
    cmd += [f"BASE_STEPS={EPOCH_STEPS}", f"BASE_EPOCHS={epochs}"]
    return cmd + [f"BASE_TRAIN_ARGS=--quiet --precision {precision} {ARMS[name]}"]


def arm_tiles(name: str, tiles: Path, work: Path) -> Path:
    """The tiles ``name`` trains on: ``tiles``, or its own cut by ``make base-tiles`` from the scenes
    ``tiles`` was made of (its folder's ``scenes.txt``), once."""
    if name not in TILE_ARMS:
        return tiles
    own = (work / f"{name}-tiles").resolve()
    if not (own / "manifest.json").exists():
        if not (tiles.parent / "scenes.txt").exists():
            raise SystemExit(f"arm {name}: {tiles.parent / 'scenes.txt'} is absent: which scenes to cut?")
        cmd = ["make", "-s", "base-tiles", f"BASE_WORK={tiles.parent}", f"BASE_TILES={own}"]
        cmd += [f"BASE_TILE_ARGS={TILE_ARMS[name]}"]
        print(f"{name}: {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            raise SystemExit(f"arm {name}: its tiles could not be cut (above)")
    return own


def train_arm(name: str, tiles: Path, run: Path, start: str, epochs: int, precision: str) -> None:
    """Train one arm (``make base-train`` resumes a killed run by itself)."""
    cmd = arm_command(name, tiles, run, start, epochs, precision)
    print(f"{name}: {' '.join(cmd)}", flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:  # train has said why, in one line
        raise SystemExit(f"arm {name} stopped; its run {run} resumes when this command is run again")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=Path, required=True, help="the folder of make base-tiles (manifest.json)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "recipe")
    ap.add_argument("--start", default="base", help="the model every arm continues (.keras or base)")
    ap.add_argument("--steps", type=int, default=1500, help="steps of 8 tiles of 256 px per arm")
    ap.add_argument("--only", default=",".join(ARMS), help="comma-separated arms, run in this order")
    ap.add_argument("--score-only", action="store_true", help="score the arms already finished; train none")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    names = args.only.split(",")
    if unknown := [n for n in names if n not in ARMS]:
        raise SystemExit(f"unknown arms {unknown}; the arms: {', '.join(ARMS)}")
    epochs = -(-args.steps // EPOCH_STEPS)
    dhaka = scenes_or_dhaka([], [0, 1, 2])  # before hours of training: exit now if Dhaka is absent
    args.work.mkdir(parents=True, exist_ok=True)
    digest = pin_start(args.start, args.work)
    precision = pin_precision(args.work)
    pin_recipe(args.work, args.start, epochs, precision)
    if not args.score_only:
        for name in names:
            if not finished(args.work / name, epochs):
                run = (args.work / name).resolve()
                tiles = arm_tiles(name, args.tiles.resolve(), args.work)
                train_arm(name, tiles, run, args.start, epochs, precision)
    done = [n for n in names if finished(args.work / n, epochs)]
    print(f"start {args.start} (sha256 {digest[:12]}), {epochs * EPOCH_STEPS} steps per arm in {precision}")
    print(f"scored: the start and {done}", flush=True)
    # the start is scored in the same run as its arms: figures of one run only are compared
    models = {"start": args.start, **{n: str(args.work / n / "last.keras") for n in done}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in models.items():
            model = with_choice_of(path, args.start, Path(tmp))
            d = score_model(model, dhaka, Path(tmp))
            k = score_model(model, [KAMPALA], Path(tmp))
            options = ARMS.get(name, f"(the start, {args.start})")
            out[name] = {"options": options, "dhaka": d, "kampala": k}
            row = f"| {name} | {options or '(make base)'} | {d['pixel_iou']:.3f} | {d['object_f1']:.3f} "
            row += f"({d['matched']} / {d['predicted']}) | {k['pixel_iou']:.3f} / {k['object_f1']:.3f} |"
            print(row, flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
