"""Tiling many jobs in parallel, resuming finished ones, and writing the manifest last."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from roofseg.atomic import ensure_writable_dir, remove_stale_partials, write_json
from roofseg.contracts.manifest import MANIFEST_FILE, Job, Manifest, Shard, Split, write_manifest
from roofseg.contracts.targets import TARGETS
from roofseg.errors import RoofsegError
from roofseg.locks import folder_lock
from roofseg.outputs import RemoteFolder, is_object_store
from roofseg.raster.ground import ground_pixel_size
from roofseg.raster.labels import open_labels
from roofseg.raster.scene import Scene
from roofseg.raster.windows import tile_grid
from roofseg.runners import quiet_beam
from roofseg.scenes import file_signature
from roofseg.stac import StacChoice
from roofseg.tiler import beam
from roofseg.tiler import inputs as inp
from roofseg.tiler.beam import PARTS_DIR
from roofseg.tiler.split import SPLITS, scene_splits
from roofseg.tiler.tile import JobResult, TileParams, grid_row_count, tile_folder, tile_scene

JOBS_DIR = "jobs"
FOLDER_CHUNK = 256  # folder images per job: the unit of parallel work and of resuming


def _job_spec(kind: str, job_id: str, payload, split, params: TileParams, windows: int) -> dict:
    spec = {"kind": kind, "id": job_id, "payload": payload, "split": split, "params": params, "windows": windows}
    spec["fingerprint"] = _fingerprint(spec)
    # Shards are named by what made them, so a job redone with other inputs or parameters writes
    # new files beside the old ones, which the manifest keeps pointing at until the run succeeds.
    digest = hashlib.sha256(json.dumps(spec["fingerprint"], sort_keys=True).encode()).hexdigest()[:8]
    spec["shard_name"] = f"{job_id}-{digest}"
    return spec


def _run_job(spec: dict, out_dir: Path, progress) -> JobResult:
    if spec["kind"] == "scene":
        return tile_scene(spec["payload"], spec["split"], spec["params"], out_dir, progress, spec["shard_name"])
    return tile_folder(
        spec["id"], spec["payload"], spec["split"], spec["params"], out_dir, progress, spec["shard_name"]
    )


def _fingerprint(spec: dict) -> dict:
    payload = spec["payload"]
    items = payload if isinstance(payload, list) else [payload]
    files = [
        f
        for item in items
        for f in ((item.image, item.mask) if spec["kind"] == "folder" else (item.image, item.labels))
    ]
    payload = [asdict(i) for i in payload] if isinstance(payload, list) else asdict(payload)
    return {
        "kind": spec["kind"],
        "payload": payload,
        "split": spec["split"],
        "params": spec["params"].fingerprint(),
        "inputs": {f: file_signature(f) for f in files},
    }


def _done_path(out_dir: Path, job_id: str) -> Path:
    return out_dir / JOBS_DIR / f"{job_id}.json"


def _load_done(out_dir: Path, spec: dict) -> JobResult | None:
    """The result of an earlier run of this very job (same inputs, same parameters), if every shard is there."""
    path = _done_path(out_dir, spec["id"])
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if done.get("fingerprint") != spec["fingerprint"]:
        return None
    result = JobResult(**done["result"])
    if not all((out_dir / f).is_file() for shards in result.shards.values() for f, _ in shards):
        return None
    return result


def _remove_unlisted(out_dir: Path, manifest: Manifest, job_ids: set[str]) -> None:
    """After a manifest is written: delete the shards and job markers it no longer refers to."""
    listed = {Path(out_dir / p).resolve() for p in manifest.shard_paths()}
    for split in SPLITS:
        for f in (out_dir / split).glob("*.tfrecord*"):
            if f.resolve() not in listed and not f.name.startswith("."):
                f.unlink(missing_ok=True)
    for marker in (out_dir / JOBS_DIR).glob("*.json"):
        if marker.stem not in job_ids:
            marker.unlink(missing_ok=True)


_queue = None


def _init_worker(queue) -> None:
    global _queue
    _queue = queue


def _worker(spec: dict, out_dir: Path) -> JobResult:
    pending = 0

    def progress(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= 16:
            _queue.put(pending)
            pending = 0

    result = _run_job(spec, out_dir, progress)
    _queue.put(pending)
    return result


def _execute(
    specs: list[dict],
    out_dir: Path,
    workers: int,
    bar: tqdm,
    runner: str = "local",
    beam_options: str | None = None,
    remote: RemoteFolder | None = None,
    progress: bool = True,
) -> list[JobResult]:
    def finish(spec: dict, result: JobResult) -> JobResult:
        write_json(_done_path(out_dir, spec["id"]), {"fingerprint": spec["fingerprint"], "result": asdict(result)})
        return result

    if runner == "beam":
        # Beam's workers write to the terminal's stderr, which quiet_beam diverts: the bar goes
        # to the terminal itself, in place of the caller's (created hidden)
        with (
            quiet_beam() as terminal,
            tqdm(
                total=bar.total, initial=bar.n, desc="tiling (beam)", unit="tile", disable=not progress, file=terminal
            ) as beam_bar,
        ):
            done = beam.run_jobs(specs, out_dir, beam_options, beam_bar, remote)
        results = [finish(s, r) for s, r in zip(specs, done)]
        shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)
        return results
    if workers <= 1 or len(specs) <= 1:
        return [finish(s, _run_job(s, out_dir, bar.update)) for s in specs]
    ctx = multiprocessing.get_context("spawn")  # TensorFlow and GDAL are not fork-safe
    queue = ctx.Queue()

    def drain() -> None:
        for n in iter(queue.get, None):  # None, put below, ends the drain
            bar.update(n)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        with ProcessPoolExecutor(
            min(workers, len(specs)), mp_context=ctx, initializer=_init_worker, initargs=(queue,)
        ) as pool:
            futures = {pool.submit(_worker, s, out_dir): s for s in specs}
            results = []
            for future in as_completed(futures):  # a job's marker is written as soon as it is done
                if future.exception() is not None:
                    pool.shutdown(cancel_futures=True)
                    raise future.exception()
                results.append(finish(futures[future], future.result()))
            return results
    finally:
        queue.put(None)
        drainer.join()


def _plan_scenes(scenes: list[inp.SceneInput], params: TileParams, split_by: str) -> list[dict]:
    """Check every scene and its labels before anything is written; return the job specs: one per
    scene, or one per scene and GSD of ``params.gsds`` (ids ``SCENE@0.3m``)."""
    by_scene = split_by == "scene" or (split_by == "auto" and len(scenes) >= 3)
    splits = scene_splits([s.id for s in scenes], params.val, params.test, params.seed) if by_scene else {}
    specs = []
    without = []  # vector labels that hold no building
    caught: list[warnings.WarningMessage] = []
    for s in scenes:
        for job_id, job_params in per_gsd(s.id, params):
            with Scene(s.image, job_params.bands, job_params.gsd, job_params.pixel_size, job_params.nodata) as scene:
                with warnings.catch_warnings(record=True) as said:  # said below, unless the run is refused
                    warnings.simplefilter("always")
                    labels = open_labels(s.labels, scene, job_params.labels_crs, job_params.ignore_non_polygons)
                caught.extend(said)
                if not getattr(labels, "geoms", True):
                    without.append(s.labels)
                labels.close()
                # a band in metres needs the scene's ground pixel size: refused here, before any tile is written
                job_params.at_gsd(ground_pixel_size(scene.crs, scene.transform, scene.height, scene.width), s.image)
                windows = len(tile_grid(scene.height, scene.width, job_params.size, job_params.stride))
                rows = grid_row_count(scene.height, job_params)
            job = s if job_id == s.id else replace(s, id=job_id)
            spec = _job_spec("scene", job_id, job, splits.get(s.id), job_params, windows)
            spec["grid_rows"] = rows  # how a distributed runner cuts the scene into parts
            specs.append(spec)
    if without and len(without) == len(specs):  # a scene without buildings teaches ground; all of them, nothing
        raise RoofsegError(
            without[0],
            "holds no building"
            + (f", nor do the labels of the other {len(set(without)) - 1} scenes" if len(set(without)) > 1 else "")
            + ": tiles of such labels teach no roof. Check the file (an OSM extract cut short, or one without "
            "building=* ways); scenes truly without buildings go with others that have some",
        )
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return specs


def per_gsd(scene_id: str, params: TileParams) -> list[tuple[str, TileParams]]:
    """The jobs of one scene: itself, or one per GSD of ``params.gsds``. Split blocks lie on the
    scene's own grid, ``split_block`` px of the finest GSD wide, the same at every GSD (see
    :func:`roofseg.tiler.tile.block_split`), so one place falls in one split whatever its resolution."""
    if not params.gsds:
        return [(scene_id, params)]
    finest = min(params.gsds)
    return [(f"{scene_id}@{g:g}m", replace(params, gsd=g, gsds=(), split_gsd=finest)) for g in params.gsds]


def _plan_folder(folder: Path, params: TileParams) -> list[dict]:
    items = inp.folder_items(folder)
    splits = scene_splits([i.id for i in items], params.val, params.test, params.seed)
    specs = []
    for k in range(0, len(items), FOLDER_CHUNK):
        chunk = items[k : k + FOLDER_CHUNK]
        job_id = f"{folder.name}-{k // FOLDER_CHUNK:04d}"
        specs.append(_job_spec("folder", job_id, chunk, {i.id: splits[i.id] for i in chunk}, params, len(chunk)))
    return specs


def tile(
    entries: Sequence[str],
    out_dir: str | Path,
    params: TileParams,
    labels: Sequence[str] = (),
    prefer: str = "vector",
    split_by: str = "auto",
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    stac: StacChoice = StacChoice(),
    runner: str = "local",
    beam_options: str | None = None,
) -> Manifest:
    """Tile scenes (or one images/+masks/ folder) into ``out_dir``; return the manifest written.

    ``runner``: "local" (``workers`` processes, a scene each) or "beam" (an Apache Beam pipeline
    whose elements are parts of scenes; ``beam_options`` as on Beam's command line). ``out_dir``
    may be in an object store (s3://, gs://): the tiles are made in a local staging folder, then
    uploaded, the manifest last (see :mod:`roofseg.outputs`).
    """
    if not entries:
        raise RoofsegError(None, "no input given")
    if len(entries) == 1 and inp.is_folder_pair(entries[0]):
        if params.gsd or params.gsds:
            raise RoofsegError(
                entries[0], "--gsd resamples georeferenced scenes; an images/ + masks/ folder has no ground pixel size"
            )
        specs = _plan_folder(Path(entries[0]), params)
        split_mode = "image"
    else:
        specs = _plan_scenes(inp.scene_inputs(entries, labels, prefer, stac), params, split_by)
        split_mode = "scene" if specs[0]["split"] else "block"
    remote = RemoteFolder(str(out_dir)) if is_object_store(out_dir) else None
    out = ensure_writable_dir(remote.staging if remote else out_dir)
    with folder_lock(out):
        manifest = _tile_locked(
            specs, out, split_mode, entries, params, workers, overwrite, progress, runner, beam_options, remote
        )
        if remote:
            publish(manifest, out, remote)
    return manifest


def publish(manifest: Manifest, staging: Path, remote: RemoteFolder) -> None:
    """Upload the shards ``manifest`` lists that the bucket lacks (a shard's name says what made
    it), then the manifest; then delete the shards the new manifest no longer lists."""
    listed = manifest.shard_paths()
    present = set(remote.listing("")) if listed else set()
    for name in listed:
        if name not in present:
            remote.upload(name)
    remote.upload(MANIFEST_FILE)
    for name in present:
        top = name.split("/", 1)[0]
        if (top in SPLITS and name not in listed) or top == PARTS_DIR:  # old shards; Beam workers' part results
            remote.remove(name)


def _tile_locked(
    specs: list[dict],
    out: Path,
    split_mode: str,
    entries: Sequence[str],
    params: TileParams,
    workers: int,
    overwrite: bool,
    progress: bool,
    runner: str = "local",
    beam_options: str | None = None,
    remote: RemoteFolder | None = None,
) -> Manifest:
    """Run the jobs not done yet, then write the manifest; until then the previous manifest stands."""
    (out / JOBS_DIR).mkdir(exist_ok=True)
    for folder in [out, out / JOBS_DIR, *(out / s for s in SPLITS)]:
        if folder.is_dir():
            remove_stale_partials(folder)

    results: dict[str, JobResult] = {}
    todo = []
    for spec in specs:
        earlier = None if overwrite else _load_done(out, spec)
        if earlier is None:
            todo.append(spec)
        else:
            results[spec["id"]] = earlier
    total = sum(s["windows"] for s in specs)
    with tqdm(total=total, desc="tiling", unit="tile", disable=not progress or runner == "beam") as bar:
        bar.update(total - sum(s["windows"] for s in todo))
        for r in _execute(todo, out, workers, bar, runner, beam_options, remote, progress):
            results[r.id] = r
    ordered = [results[s["id"]] for s in specs]
    if sum(sum(r.tiles.values()) for r in ordered) == 0:
        raise RoofsegError(
            entries[0] if len(entries) == 1 else None,
            f"0 tiles produced (skipped: {_sum_skipped(ordered)}); check --max-nodata, --keep-empty and the tile size",
        )
    manifest = build_manifest(ordered, params, split_mode)
    write_manifest(out / MANIFEST_FILE, manifest)
    _remove_unlisted(out, manifest, {s["id"] for s in specs})
    return manifest


def _sum_skipped(results: list[JobResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        for k, v in r.skipped.items():
            out[k] = out.get(k, 0) + v
    return out


def training_gsd(results: list[JobResult]) -> float | None:
    """The ground pixel size the training tiles have: the median over training tiles of their
    scene's GSD in metres (None when no training scene is georeferenced)."""
    sizes = sorted(
        (r.info["gsd_m"], r.tiles.get("train", 0)) for r in results if r.info.get("gsd_m") and r.tiles.get("train")
    )
    total = sum(n for _, n in sizes)
    seen = 0
    for gsd, n in sizes:
        seen += n
        if 2 * seen >= total:
            return gsd
    return None


def build_manifest(results: list[JobResult], params: TileParams, split_mode: str) -> Manifest:
    """The manifest: shards and tile counts per split, roof fractions, and what each job did."""
    area = params.size * params.size
    splits = {}
    for split in SPLITS:
        shards = tuple(Shard(f, n) for r in results for f, n in r.shards.get(split, []))
        tiles = sum(r.tiles.get(split, 0) for r in results)
        roof = sum(r.roof_pixels.get(split, 0) for r in results)
        splits[split] = Split(tiles, roof / (tiles * area) if tiles else 0.0, shards)
    all_tiles = sum(s.tiles for s in splits.values())
    all_roof = sum(r.roof_pixels.get(s, 0) for r in results for s in SPLITS)
    return Manifest(
        splits=splits,
        tile_size=params.size,
        channels=3,
        compression=params.compression,
        split_mode=split_mode,
        tiles=all_tiles,
        roof_fraction=all_roof / (all_tiles * area) if all_tiles else 0.0,
        gsd_m=training_gsd(results),
        # each tile's targets: "roof" (its mask), and "contact", its border band (tile --contact-m, --contact-px)
        targets=TARGETS if params.has_contact else TARGETS[:1],
        contact_px=(params.contact_px or 0) if params.has_contact else 0,  # 0: the band is in metres on every scene
        contact_m=params.contact_m if params.has_contact else None,
        contact_kind=params.contact_kind if params.has_contact else None,
        known=any("review" in r.info for r in results),
        jobs=tuple(Job.from_dict({"id": r.id, **r.info, "tiles": r.tiles, "skipped": r.skipped}) for r in results),
        params=params.fingerprint(),
    )
