"""Helpers shared by the benchmarks: peak RSS of a child process, sample scenes, timing."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_peak_rss_mb(module: str, *args: str) -> float:
    """Run ``python -m MODULE ARGS`` in a fresh process; return its peak resident set size in MB."""
    return run_child(module, *args)[0]


def run_child(module: str, *args: str) -> tuple[float, str]:
    """Run ``python -m MODULE ARGS`` (or a script path) fresh; return (peak RSS in MB, its stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        cmd = [sys.executable, str(Path(__file__).with_name("_peak.py")), out.name, module, *args]
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"child {' '.join(cmd)} failed with status {proc.returncode}")
        return int(Path(out.name).read_text()) / 1024, proc.stdout


def sample_scene(folder: Path, size: int, seed: int = 0) -> Path:
    """The sample scene of ``size`` px in ``folder`` (made once, reused by later runs)."""
    from roofseg.sample import write_sample

    image = folder / f"s{size}" / "sample_image.tif"
    if not image.exists():
        write_sample(image.parent, size=size, seed=seed, progress=False)
    return image


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out
