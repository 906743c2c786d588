"""Tiling on Apache Beam: the same jobs as the local runner, spread as parts of scenes.

Elements are parts of scenes — a few rows of the tile grid each — so one huge scene spreads over
many workers. Each part runs :func:`roofseg.tiler.tile.tile_scene` on its rows, the very code the
local runner runs on whole scenes, writes its own shards with roofseg's shard writer, and leaves
its result beside them; the driver merges the parts into job results, and the manifest is built
from them as the local runner builds it, last.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from roofseg.atomic import write_json
from roofseg.errors import RoofsegError
from roofseg.outputs import RemoteFolder
from roofseg.runners import beam_options, pipeline_error
from roofseg.tiler.tile import JobResult, merge_parts, tile_folder, tile_scene

PARTS_DIR = "parts"
#: grid rows of a scene per element: parts small enough to spread a big scene over many workers
PART_ROWS = 8


def parts_of(spec: dict, rows_per_part: int) -> list[dict]:
    """A job's parts: runs of ``rows_per_part`` grid rows of a scene; a folder job is one part."""
    if spec["kind"] != "scene":
        return [{"spec": spec, "index": 0, "rows": None}]
    rows = spec["grid_rows"]
    return [
        {"spec": spec, "index": i, "rows": (a, min(a + rows_per_part, rows))}
        for i, a in enumerate(range(0, rows, rows_per_part))
    ]


def _part_path(out_dir: Path, part: dict) -> Path:
    return out_dir / PARTS_DIR / f"{part['spec']['id']}-{part['index']:05d}.json"


def run_part(part: dict, out_dir: str, remote: RemoteFolder | None = None) -> int:
    """Tile one part into its shards, and write its result (the element's side effect). With an
    object-store output, the worker uploads both: on a cluster its disk is its own."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = part["spec"]
    name = f"{spec['shard_name']}-p{part['index']:05d}"
    if spec["kind"] == "scene":
        result = tile_scene(spec["payload"], spec["split"], spec["params"], out, lambda n: None, name, part["rows"])
    else:
        result = tile_folder(spec["id"], spec["payload"], spec["split"], spec["params"], out, lambda n: None, name)
    write_json(_part_path(out, part), asdict(result))
    if remote is not None:
        for shards in result.shards.values():
            for name, _ in shards:
                remote.upload(name)
        remote.upload(str(_part_path(out, part).relative_to(out)))
    return 1


def run_jobs(
    specs: list[dict], out_dir: Path, options_text: str | None, bar: tqdm, remote: RemoteFolder | None = None
) -> list[JobResult]:
    """Run the jobs ``specs`` as a Beam pipeline of their parts; return one result per job, in order."""
    options = beam_options(options_text)
    # an optional extra, imported where it is used
    import apache_beam as beam

    parts = [p for s in specs for p in parts_of(s, PART_ROWS)]
    (out_dir / PARTS_DIR).mkdir(exist_ok=True)
    for part in parts:
        _part_path(out_dir, part).unlink(missing_ok=True)  # a result is this run's, or none
    done = threading.Event()
    watcher = threading.Thread(target=_follow, args=(parts, out_dir, bar, done), daemon=True)
    watcher.start()
    try:
        with beam.Pipeline(options=options) as pipeline:
            (
                pipeline
                | "parts" >> beam.Create(parts, reshuffle=True)
                | "tile" >> beam.Map(run_part, str(out_dir), remote)
            )
    except Exception as exc:  # a worker's failure comes back wrapped in Beam's own error
        raise pipeline_error(exc) from None
    finally:
        done.set()
        watcher.join()
    results = []
    for part in parts:  # parts tiled on other machines: their results are in the bucket
        local = _part_path(out_dir, part)
        if remote is not None and not local.exists():
            remote.download(str(local.relative_to(out_dir)))
    for spec in specs:
        mine = [p for p in parts if p["spec"] is spec]
        missing = [p for p in mine if not _part_path(out_dir, p).exists()]
        if missing:
            raise RoofsegError(
                spec["payload"].image if spec["kind"] == "scene" else out_dir,
                f"the Beam pipeline ended without {len(missing)} of its {len(mine)} parts",
            )
        results.append(
            merge_parts(spec["id"], [JobResult(**json.loads(_part_path(out_dir, p).read_text())) for p in mine])
        )
    return results


def _follow(parts: list[dict], out_dir: Path, bar: tqdm, done: threading.Event) -> None:
    """Advance the bar as parts finish (their results appear), until the pipeline ends."""
    counted: set[int] = set()

    def windows(part: dict) -> int:
        spec = part["spec"]
        if part["rows"] is None:
            return spec["windows"]
        return spec["windows"] // spec["grid_rows"] * (part["rows"][1] - part["rows"][0])  # whole grid rows

    while True:
        finished = done.wait(0.5)
        for i, part in enumerate(parts):
            if i not in counted and _part_path(out_dir, part).exists():
                counted.add(i)
                bar.update(windows(part))
        if finished:
            return
