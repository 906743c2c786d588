"""Dhaka against training steps (run by hand):
`python bench/dhaka_curve.py MODEL [MODEL ...] --png docs/base/dhaka_steps.png [--json OUT.json]`.

Each MODEL (a base at some milestone of its ledger) predicts Dhaka's three blocks as
`bench/dhaka.py` does (`roofseg predict MODEL` with the card's defaults), all in one run so the
figures compare; its x is the steps its card's ledger counts (`trained_on.ledger`, or the steps of
a card of before ledgers). The picture plots pooled pixel IoU and object F1 (IoU >= 0.5) against
steps, a tuned model (one whose card holds `roofseg tune`'s choice) drawn hollow. Dhaka is never
trained on, and read where it lies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from dhaka import DHAKA, dhaka_blocks, score_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--png", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not DHAKA.exists():
        raise SystemExit(f"{DHAKA} is absent: nothing to measure")
    from roofseg.contracts.card import ledger_of, read_card
    from roofseg.figures import pyplot, save_png
    from roofseg.sources import model_file

    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            card = read_card(model_file(model))
            s = score_model(model, dhaka_blocks([0, 1, 2]), Path(tmp))
            point = {"model": model, "steps": ledger_of(card).steps, "tuned": card.postprocess is not None,
                     "pixel_iou": round(s["pixel_iou"], 3), "object_f1": round(s["object_f1"], 3),
                     "matched": s["matched"], "predicted": s["predicted"], "true": s["true"]}  # fmt: skip
            points.append(point)
            tuned = " (tuned)" if point["tuned"] else ""
            print(f"{model}: {point['steps']} steps{tuned}: pixel IoU {point['pixel_iou']:.3f}, object F1 "
                  f"{point['object_f1']:.3f} ({point['matched']} of {point['true']} matched, "
                  f"{point['predicted']} predicted)", flush=True)  # fmt: skip
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, colour, name in (("pixel_iou", "tab:blue", "pixel IoU"), ("object_f1", "tab:red", "object F1")):
        raw = sorted((p["steps"], p[key]) for p in points if not p["tuned"])
        if raw:
            ax.plot(*zip(*raw), "o-", color=colour, label=name)
        tuned = [(p["steps"], p[key]) for p in points if p["tuned"]]
        if tuned:
            ax.plot(*zip(*tuned), "o", mfc="none", color=colour, label=f"{name}, tuned")
    ax.axhline(0.65, color="tab:blue", ls=":", lw=1)
    ax.axhline(0.40, color="tab:red", ls=":", lw=1)
    ax.set_xlabel("steps of 8×256² in all (the card's ledger)")
    ax.set_ylim(0, 1)
    ax.set_title("Dhaka, never trained on (dotted: the goals)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    args.png.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, args.png)
    if args.json:
        args.json.write_text(json.dumps(points, indent=2))


if __name__ == "__main__":
    main()
