"""Benchmark of the tiler (run by hand): `python bench/tile.py [--size 8192] [--work DIR]`.

Prints, from one run on this machine:
- throughput of `roofseg tile` as a ratio of a plain rasterio windowed read of the same scene
  (same 256 px windows, all bands, nothing else done) — goal >= 0.5;
- peak RSS of the tiler in a fresh process on a 4096² and an 8192² scene — goal ratio <= 1.2;
- the Apache Beam runner (DirectRunner, a process per core, the default of `--runner beam`) on
  the same scene: tiles/s and its ratio to the local runner;
- the HTTP path: tiles/s reading the scene from a local HTTP server with range requests
  (tests/range_server.py) vs from the file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rasterio  # noqa: E402
from _common import ROOT, child_peak_rss_mb, sample_scene, timed  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from roofseg.raster.windows import tile_grid  # noqa: E402
from roofseg.tiler.run import tile  # noqa: E402
from roofseg.tiler.tile import TileParams  # noqa: E402


def plain_read(path: Path, size: int) -> int:
    with rasterio.open(path) as ds:
        n = 0
        for t in tile_grid(ds.height, ds.width, size, size):
            ds.read(window=Window(t.col, t.row, t.width, t.height))
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192, help="scene size for the throughput ratio")
    ap.add_argument("--work", type=Path, default=None, help="folder for scenes (kept) and outputs")
    ap.add_argument("--repeat", type=int, default=2, help="alternating timed runs of each")
    args = ap.parse_args()
    work = args.work or Path(tempfile.gettempdir()) / "roofseg-bench"
    work.mkdir(parents=True, exist_ok=True)
    big = sample_scene(work, args.size)
    params = TileParams(size=256, stride=256, max_nodata=1.0)

    plain_read(big, 256)  # warm the page cache so both read the same cached file
    reads, tiles = [], []
    for _ in range(args.repeat):  # alternate, so machine noise hits both alike
        t, n = timed(plain_read, big, 256)
        reads.append(t)
        out = work / "tiles"
        shutil.rmtree(out, ignore_errors=True)
        t, manifest = timed(tile, [str(big)], out, params, progress=False)
        tiles.append(t)
    read_t, tile_t = min(reads), min(tiles)
    print(f"scene {args.size}x{args.size}: {n} windows of 256 px")
    print(f"  plain rasterio windowed read : {n / read_t:8.1f} windows/s ({read_t:.2f} s)")
    print(f"  roofseg tile (read+labels+shards): {manifest['tiles'] / tile_t:8.1f} tiles/s ({tile_t:.2f} s)")
    print(f"  throughput ratio tile/read   : {read_t / tile_t:.2f}   (goal >= 0.5)")

    rss = {}
    for size in (4096, 8192):
        scene = sample_scene(work, size)
        out = work / f"rss{size}"
        shutil.rmtree(out, ignore_errors=True)
        rss[size] = child_peak_rss_mb("roofseg.cli", "tile", str(scene), "-o", str(out), "--quiet", "--max-nodata", "1")
        print(f"  peak RSS tiling {size}x{size}: {rss[size]:.0f} MB")
    print(f"  peak RSS ratio 8192/4096     : {rss[8192] / rss[4096]:.2f}   (goal <= 1.2)")

    labels = big.with_name("sample_labels.geojson")
    beam_t = []
    for _ in range(args.repeat):
        out = work / "tiles-beam"
        shutil.rmtree(out, ignore_errors=True)
        t, beam_manifest = timed(tile, [str(big)], out, params, progress=False, runner="beam")
        beam_t.append(t)
    print(
        f"  Beam DirectRunner (multi-processing): {beam_manifest['tiles'] / min(beam_t):8.1f} tiles/s "
        f"({min(beam_t):.2f} s)"
        f"   ratio to the local runner {tile_t / min(beam_t):.2f}"
    )

    served = work / "served"
    served.mkdir(exist_ok=True)
    if not (served / big.name).exists():
        (served / big.name).hardlink_to(big)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "range_server.py"), str(served), str(work / "requests.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"{server.stdout.readline().strip()}/{big.name}"
        http_t, file_t = [], []
        for _ in range(args.repeat):
            for times, source in ((http_t, url), (file_t, str(big))):
                out = work / "tiles-http"
                shutil.rmtree(out, ignore_errors=True)
                t, m = timed(tile, [source], out, params, labels=[str(labels)], progress=False)
                times.append(t)
        print(
            f"  from HTTP (range requests): {m['tiles'] / min(http_t):8.1f} tiles/s, from the file "
            f"{m['tiles'] / min(file_t):8.1f}"
            f" tiles/s: ratio {min(file_t) / min(http_t):.2f}"
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
