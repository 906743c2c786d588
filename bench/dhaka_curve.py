"""Dhaka against training steps (run by hand):
`python bench/dhaka_curve.py MODEL [MODEL ...] --png docs/base/dhaka_steps.png [--json OUT.json]`
(`--from-json OUT.json --png ...` draws an earlier run's points again).

Each MODEL (a base at some milestone of its ledger) predicts Dhaka's three blocks as
`bench/dhaka.py` does (`roofseg predict MODEL` with the card's defaults), all in one run so the
figures compare; its x is the steps its card's ledger counts (`trained_on.ledger`, or the steps of
a card of before ledgers). The picture plots pooled pixel IoU and object F1 (IoU >= 0.5) against
steps, a tuned model (one whose card holds `roofseg tune`'s choice) drawn hollow on a dashed line, a
model whose border targets were drawn in metres (card `contact_m`) as a square. Dhaka is never
trained on, and read where it lies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from dhaka import DHAKA, dhaka_blocks, score_model


def plot(points: list[dict], png: Path) -> None:
    """The picture of ``points`` (each model's steps, scores, tuned or not, band in metres) at ``png``."""
    from roofseg.figures import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, colour, name in (("pixel_iou", "tab:blue", "pixel IoU"), ("object_f1", "tab:red", "object F1")):
        for tuned, style in ((False, "-"), (True, "--")):
            series = sorted((p["steps"], p[key], p.get("band_m")) for p in points if p["tuned"] == tuned)
            if not series:
                continue
            label = f"{name}, tuned" if tuned else name
            ax.plot([x for x, _, _ in series], [y for _, y, _ in series], style, color=colour, lw=1)
            for band, marker in ((False, "o"), (True, "s")):  # squares: borders drawn in metres (tile --contact-m)
                mine = [(x, y) for x, y, m in series if bool(m) == band]
                if mine:
                    ax.plot(*zip(*mine), marker, ls="none", color=colour, mfc="none" if tuned else colour,
                            label=f"{label}{', borders 0.9 m' if band else ''}")  # fmt: skip
    ax.axhline(0.65, color="tab:blue", ls=":", lw=1)
    ax.axhline(0.40, color="tab:red", ls=":", lw=1)
    ax.set_xlabel("steps of 8×256² in all (the card's ledger)")
    ax.set_ylim(0, 1)
    ax.set_title("Dhaka, never trained on (dotted: the goals)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)  # above the points: none rises past 0.7
    png.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, png)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--png", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--from-json", type=Path, default=None, help="draw the points of an earlier run's --json only")
    args = ap.parse_args()
    if args.from_json:
        plot(json.loads(args.from_json.read_text()), args.png)
        return
    if not args.models:
        ap.error("give the models to measure (or --from-json)")
    if not DHAKA.exists():
        raise SystemExit(f"{DHAKA} is absent: nothing to measure")
    from roofseg.contracts.card import ledger_of, read_card
    from roofseg.sources import model_file

    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            card = read_card(model_file(model))
            s = score_model(model, dhaka_blocks([0, 1, 2]), Path(tmp))
            point = {"model": model, "steps": ledger_of(card).steps, "tuned": card.postprocess is not None,
                     "band_m": card.contact_m,
                     "pixel_iou": round(s["pixel_iou"], 3), "object_f1": round(s["object_f1"], 3),
                     "matched": s["matched"], "predicted": s["predicted"], "true": s["true"]}  # fmt: skip
            points.append(point)
            tuned = " (tuned)" if point["tuned"] else ""
            print(f"{model}: {point['steps']} steps{tuned}: pixel IoU {point['pixel_iou']:.3f}, object F1 "
                  f"{point['object_f1']:.3f} ({point['matched']} of {point['true']} matched, "
                  f"{point['predicted']} predicted)", flush=True)  # fmt: skip
    plot(points, args.png)
    if args.json:
        args.json.write_text(json.dumps(points, indent=2))


if __name__ == "__main__":
    main()
