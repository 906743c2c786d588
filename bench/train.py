"""Benchmark of training (run by hand): `python bench/train.py [--steps 8] [--budget-minutes 10]`.

In one run, on tiles of a generated sample scene:
- images/s of a training step of the ResNet34 U-Net at 256², batch 8, fed by our streaming
  pipeline with on-device augmentation, vs `model.fit` on the same tiles held in numpy arrays
  (the usual recipe, no augmentation) — ratio ours/in-memory, goal >= 0.95;
- the accuracy figure: IoU on the test split after a fixed budget of CPU training
  (`--budget-minutes`, encoder from random weights since ImageNet cannot be fetched here);
- precision (`--precision-steps N`): s/step of `train --precision float32` and `bfloat16` side by
  side (alternating rounds), and the validation IoU of each after the same N steps from the same
  seed, with the CPU flags that decide `auto`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import sample_scene  # noqa: E402


class StepTimer:
    """Keras callback keeping the wall time of each training batch."""

    def __new__(cls):
        from roofseg._tf import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.t0 = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter() - self.t0)

            def on_train_begin(self, logs=None):
                self.times = []

        return _Timer()


class Budget:
    """Keras callback stopping training once ``minutes`` of wall time have passed."""

    def __new__(cls, minutes: float):
        from roofseg._tf import keras

        class _Budget(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.end = time.perf_counter() + minutes * 60

            def on_epoch_end(self, epoch, logs=None):
                if time.perf_counter() > self.end:
                    self.model.stop_training = True

        return _Budget()


def throughput(manifest: Path, steps: int, batch: int, rounds: int) -> None:
    from roofseg.contracts.augment import AugmentConfig
    from roofseg.pipeline.dataset import make_dataset
    from roofseg.training.model import build_model, compile_model

    model, _ = build_model(None)
    compile_model(model)
    ds = make_dataset(manifest, "train", batch, 256, seed=0, repeat=True)
    images, masks = [], []
    for x, y in make_dataset(manifest, "train", batch, 256, training=False):
        images.append(x.numpy())
        masks.append(y.numpy())
    x, y = np.concatenate(images), np.concatenate(masks)
    warm = 2  # the first steps trace and build the graph
    results = {"ours": [], "in-memory": []}
    for _ in range(rounds):  # alternate, so machine noise hits both alike
        model.augment_config = AugmentConfig()
        timer = StepTimer()
        model.fit(ds, steps_per_epoch=steps + warm, epochs=1, verbose=0, callbacks=[timer])
        results["ours"].append(batch / np.median(timer.times[warm:]))
        model.augment_config = None
        timer = StepTimer()
        n = (steps + warm) * batch
        model.fit(x[:n], y[:n], batch_size=batch, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
        results["in-memory"].append(batch / np.median(timer.times[warm:]))
    ours, mem = max(results["ours"]), max(results["in-memory"])
    print(f"training step, U-Net ResNet34 at 256², batch {batch}, median of {steps} steps, best of {rounds} rounds:")
    print(f"  streaming pipeline + on-device augmentation: {ours:6.2f} images/s")
    print(f"  model.fit on numpy arrays in memory:         {mem:6.2f} images/s")
    print(f"  ratio ours/in-memory: {ours / mem:.3f}   (goal >= 0.95)")


def accuracy(work: Path, minutes: float) -> None:
    from roofseg.tiler.run import tile
    from roofseg.tiler.tile import TileParams
    from roofseg.training.evaluate import evaluate
    from roofseg.training.train import TrainConfig, train

    tiles = work / "acc-tiles"
    if not (tiles / "manifest.json").exists():
        tile([str(sample_scene(work, 2048))], tiles, TileParams(size=128, stride=128), progress=False)
    run = work / "acc-run"
    shutil.rmtree(run, ignore_errors=True)
    cfg = TrainConfig(
        manifest=str(tiles / "manifest.json"),
        out_dir=str(run),
        encoder_weights="none",
        epochs=1000,
        batch_size=8,
        learning_rate=1e-3,
        strategy="default",
        early_stopping_patience=1000,
    )
    t0 = time.perf_counter()
    summary = train(cfg, verbose=0, callbacks=[Budget(minutes)])
    scores = evaluate(run / "best.keras", tiles / "manifest.json", "test")
    print(
        f"accuracy after {(time.perf_counter() - t0) / 60:.1f} min of CPU training ({summary['epochs_run']} epochs, "
        f"128 px tiles of the 2048² sample, lr 1e-3, random encoder):"
    )
    print(
        f"  test split: IoU {scores['iou']:.3f}, F1 {scores['f1']:.3f}, precision {scores['precision']:.3f}, "
        f"recall {scores['recall']:.3f} ({scores['tiles']} tiles)"
    )
    print(json.dumps({"summary": summary, "test": scores}))


def precision(manifest: Path, work: Path, steps: int, batch: int, rounds: int) -> None:
    from roofseg._tf import keras
    from roofseg.training.precision import choose_precision, cpu_flags
    from roofseg.training.train import TrainConfig, train

    flags = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512f")))
    print(f"CPU flags: {', '.join(flags) or 'none of amx_*, avx512_bf16, avx512f'}; auto: {choose_precision('auto')}")
    speed = {"float32": [], "bfloat16": []}
    for _ in range(rounds):  # alternate, so machine noise hits both alike
        for name in speed:
            keras.utils.set_random_seed(0)
            timer = StepTimer()
            run = work / f"precision-speed-{name}"
            shutil.rmtree(run, ignore_errors=True)
            cfg = TrainConfig(
                manifest=str(manifest),
                out_dir=str(run),
                encoder_weights="none",
                epochs=1,
                batch_size=batch,
                steps_per_epoch=8,
                validation_steps=1,
                strategy="default",
                samples=1,
                precision=name,
            )
            train(cfg, verbose=0, callbacks=[timer])
            speed[name].append(float(np.median(timer.times[2:])))
    f32, bf16 = min(speed["float32"]), min(speed["bfloat16"])
    print(f"training step, 256², batch {batch}, median of 6 steps, best of {rounds} rounds:")
    print(f"  float32 {f32:.2f} s/step, bfloat16 {bf16:.2f} s/step: bfloat16 is {f32 / bf16:.2f}x float32")
    scores = {}
    for name in speed:
        run = work / f"precision-iou-{name}"
        shutil.rmtree(run, ignore_errors=True)
        cfg = TrainConfig(
            manifest=str(manifest),
            out_dir=str(run),
            encoder_weights="none",
            epochs=max(1, steps // 20),
            steps_per_epoch=min(20, steps),
            batch_size=batch,
            learning_rate=1e-3,
            strategy="default",
            early_stopping_patience=1000,
            samples=1,
            precision=name,
            seed=0,
        )
        scores[name] = train(cfg, verbose=0)["best_val_iou"]
    print(
        f"  validation IoU after {max(1, steps // 20) * min(20, steps)} steps: float32 {scores['float32']:.3f}, "
        f"bfloat16 {scores['bfloat16']:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget-minutes", type=float, default=10.0, help="0 skips the accuracy run")
    ap.add_argument("--precision-steps", type=int, default=0, help="float32 against bfloat16 (0 skips it)")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    from roofseg.tiler.run import tile
    from roofseg.tiler.tile import TileParams

    tiles = args.work / "train-tiles"
    if not (tiles / "manifest.json").exists():
        tile(
            [str(sample_scene(args.work, 2048))],
            tiles,
            TileParams(size=256, stride=256, val=0.1, test=0.1),
            progress=False,
        )
    if not args.skip_throughput:
        throughput(tiles / "manifest.json", args.steps, args.batch, args.rounds)
    if args.precision_steps:
        precision(tiles / "manifest.json", args.work, args.precision_steps, args.batch, args.rounds)
    if args.budget_minutes > 0:
        accuracy(args.work, args.budget_minutes)


if __name__ == "__main__":
    main()
