"""Predicting many scenes in one call: one model load, one progress bar, resumable, with a mosaic."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from roofseg.atomic import check_outputs, ensure_writable_dir, remove_stale_partials, write_json
from roofseg.contracts.card import ModelCard, read_card
from roofseg.contracts.run import RUN_RECORD_FILE, RunRecord, read_run_record, write_run_record
from roofseg.errors import BatchError, RoofsegError
from roofseg.locks import folder_lock
from roofseg.outputs import RemoteFolder, is_object_store
from roofseg.prediction.beam import run_jobs
from roofseg.prediction.job import SceneJob, is_roofseg_output, load_inference, predict_job, scene_failure
from roofseg.prediction.options import RASTER_SUFFIXES, PredictOptions
from roofseg.prediction.rasters.mosaic import write_mosaics
from roofseg.prediction.rasters.predict import binary_path, scene_gsd, warn_if_other_gsd
from roofseg.prediction.request import PredictRequest, Resolved, SceneOutputs, resolve
from roofseg.prediction.vector.vectorize import VectorOptions
from roofseg.raster.scene import Scene
from roofseg.raster.windows import grid_rows, stride_for
from roofseg.runners import quiet_beam
from roofseg.scenes import expand, is_remote, scene_files, suffix_of
from roofseg.stac import StacChoice
from roofseg.terminal import terminal

FAILURES = "failed.json"  # the scenes the last run could not predict, with why
MOSAIC = "mosaic"
#: options that change what is written (batch, pipelining and devices do not)
OUTPUT_OPTIONS = ("tile", "overlap", "dtype", "threshold", "keep_binary", "tta", "cog", "bands", "gsd")


def _inside(path: str, folder: Path) -> bool:
    return not is_remote(path) and Path(path).resolve().is_relative_to(folder.resolve())


def plan(
    entries: Sequence[str],
    out_dir: Path,
    options: PredictOptions,
    vector_suffix: str | None,
    stac: StacChoice = StacChoice(),
    preview: bool = False,
    remote: RemoteFolder | None = None,
    stamp: str = "",
) -> list[SceneJob]:
    """The scenes ``entries`` name, each with its outputs ``<id>.tif``, ``<id>_binary.tif``,
    ``<id><vector_suffix>`` and ``<id>_preview.png``, as asked. Files inside ``out_dir`` and rasters
    roofseg wrote (by their tags) are outputs, not scenes: a glob over the output folder's parent
    does not predict the predictions."""
    jobs = []

    def output(scene: str) -> bool:
        return _inside(scene, out_dir) or (not is_remote(scene) and is_roofseg_output(scene))

    for sid, scene in scene_files(entries, stac, set_aside=output):
        prediction = out_dir / f"{sid}.tif"
        jobs.append(
            SceneJob(
                sid,
                scene,
                prediction,
                binary_path(prediction) if options.writes_binary else None,
                out_dir / f"{sid}{vector_suffix}" if vector_suffix else None,
                out_dir / f"{sid}_preview.png" if preview else None,
                remote,
                stamp,
            )
        )
    if not jobs:
        raise RoofsegError(None, f"no scene to predict: every input is an output of roofseg or lies in {out_dir}")
    return jobs


def run_record(options: PredictOptions, model_id: dict | None, vectors: VectorOptions | None) -> RunRecord:
    """What the folder's predictions were made with; a rerun must match it to resume."""
    opts = {k: v for k, v in asdict(options).items() if k in OUTPUT_OPTIONS}
    opts["bands"] = list(opts["bands"]) if opts["bands"] else None
    if options.precision != "f32":  # float32 engines agree within 1/255; bfloat16 changes the outputs
        opts["precision"] = options.precision
    if options.gsd_range:  # which scenes were resampled, and to what
        opts["gsd_range"] = list(options.gsd_range)
    if options.colour_reference is not None:  # the reference is the model's, whose identity is recorded
        opts["match_colours"] = True
    return RunRecord(model_id, opts, asdict(vectors) if vectors else None)


def model_signature(path: str | os.PathLike) -> dict:
    """A model file's identity for the run record: its path, size and modification time."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def check_folder_output(output: str, inputs: Sequence[str], stac: StacChoice = StacChoice()) -> None:
    """Refuse an OUTPUT that cannot hold the predictions of several scenes: a raster's name (a
    mistyped single scene is said as such first), or a raster in an object store."""
    if is_object_store(output) and suffix_of(output) in RASTER_SUFFIXES:
        raise RoofsegError(
            "OUTPUT", "in an object store, give a folder (s3://BUCKET/preds): each scene's files go there"
        )
    if Path(output).suffix.lower() in RASTER_SUFFIXES and not Path(output).is_dir():
        if len(inputs) == 1:
            expand(inputs[0], stac)  # a mistyped scene is said as such, not taken for several scenes
        raise RoofsegError("OUTPUT", f"{output} names a raster, but several scenes need a folder")


def _card_of(model, card: ModelCard | None) -> ModelCard | None:
    if card is not None or not isinstance(model, (str, os.PathLike)) or not os.path.isfile(model):
        return card
    return read_card(model)


def predict_one(
    model,
    scene: str,
    output: str | os.PathLike,
    resolved: Resolved,
    outputs: SceneOutputs = SceneOutputs(None, None),
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Predict one ``scene`` into ``output`` (and its footprints and quicklook where ``outputs``
    names them), as :func:`predict_scenes` predicts each of many: the same loader and job."""
    options, output = resolved.options, Path(output)
    job = SceneJob(
        output.stem,
        scene,
        output,
        binary_path(output) if options.writes_binary else None,
        outputs.vector,
        outputs.preview,
    )
    check_outputs(job.outputs, [scene, model] if isinstance(model, (str, os.PathLike)) else [scene], overwrite)
    if options.gsd is None and options.gsd_range is None:  # read natively: say where roofs look the wrong size
        warn_if_other_gsd(resolved.trained_range, scene)
    result = predict_job(load_inference(model, options, progress), job, options, resolved.vectors, progress=progress)
    return {**result, "gsd": scene_gsd(scene, options), "vector": outputs.vector, "preview": outputs.preview}


def predict_scenes(
    model,
    entries: Sequence[str],
    out_dir: str | os.PathLike,
    options: PredictOptions | None = None,
    vectors: VectorOptions | None = None,
    overwrite: bool = False,
    progress: bool = True,
    stac: StacChoice = StacChoice(),
    runner: str = "local",
    beam_options: str | None = None,
    preview: bool = False,
    card: ModelCard | None = None,
    request: PredictRequest | None = None,
) -> dict:
    """Predict every scene ``entries`` name (files, folders, .txt lists, globs, URLs, STAC) into ``out_dir``.

    ``model`` is a model file (loaded once, and only if a scene is left to do) or a model or
    callable as :func:`predict_scene` takes. A scene is done when all its outputs are there and its
    prediction carries the stamp of this run's record (model and output options), so a rerun
    resumes and never keeps a scene of another run; a rerun with another model or other output
    options is refused unless ``overwrite`` (then every scene is redone). A scene that fails is
    recorded in ``failed.json`` and the others go on; the call then raises a
    :class:`~roofseg.errors.BatchError` naming each. After the scenes, ``mosaic.vrt`` (and
    ``mosaic_binary.vrt``) join all the folder's predictions of these scenes. ``runner="beam"``:
    the scenes are the elements of an Apache Beam pipeline (``beam_options`` as on Beam's command
    line), the model loaded once per worker; ``model`` must then be a file. ``out_dir`` may be in an
    object store (s3://, gs://): see :mod:`roofseg.outputs`.

    Without ``options``, every default is decided from the model's card by
    :func:`roofseg.prediction.request.resolve` for ``request`` (what the command line decides
    too: tune's post-processing, the colour matching the model's history chose); ``card``, where
    the caller has read it, saves a second read.
    """
    card = _card_of(model, card)
    if options is None:
        resolved = resolve(card, request or PredictRequest(), model)
        options, vectors = resolved.options, vectors or resolved.vectors
    remote = RemoteFolder(str(out_dir)) if is_object_store(out_dir) else None
    out_dir = ensure_writable_dir(remote.staging if remote else out_dir)
    if vectors and options.threshold is None:
        raise RoofsegError(None, "vectors need a threshold")
    model_id = model_signature(model) if isinstance(model, (str, os.PathLike)) else None
    record = run_record(options, model_id, vectors)
    jobs = plan(entries, out_dir, options, vectors.suffix if vectors else None, stac, preview, remote, record.stamp)
    with folder_lock(out_dir):
        remove_stale_partials(out_dir)
        if remote:
            remote.download(RUN_RECORD_FILE)
        _check_record(out_dir / RUN_RECORD_FILE, record, overwrite)
        todo = [j for j in jobs if overwrite or not j.done]
        failures: dict[str, str] = {}
        if todo:
            write_run_record(out_dir / RUN_RECORD_FILE, record)
            if remote:
                remote.upload(RUN_RECORD_FILE)
            if runner == "beam":
                with quiet_beam() as terminal:
                    failures = run_jobs(model, todo, options, vectors, beam_options, progress, terminal)
            else:
                failures = _predict_jobs(model, todo, options, vectors, progress, card)
        _record_failures(out_dir, jobs, failures, remote)
        mosaics = _mosaics([j for j in jobs if j.id not in failures], out_dir, options, remote)
    if failures:
        raise BatchError(
            remote.url + "/" + FAILURES if remote else out_dir / FAILURES,
            [f"{next(j.scene for j in jobs if j.id == sid)}: {line}" for sid, line in failures.items()],
            len(jobs),
        )
    return {
        "scenes": len(jobs),
        "predicted": len(todo),
        "skipped": len(jobs) - len(todo),
        "mosaics": mosaics,
        "folder": remote.url if remote else str(out_dir),
    }


def _record_failures(
    out_dir: Path, jobs: list[SceneJob], failures: dict[str, str], remote: RemoteFolder | None
) -> None:
    """``failed.json``: the scenes that failed this time, with why; gone when none did."""
    path = out_dir / FAILURES
    if failures:
        write_json(path, [{"id": j.id, "scene": j.scene, "error": failures[j.id]} for j in jobs if j.id in failures])
        if remote:
            remote.upload(FAILURES)
    else:
        path.unlink(missing_ok=True)
        if remote and remote.exists(FAILURES):
            remote.remove(FAILURES)


def _mosaics(jobs: list[SceneJob], out_dir: Path, options: PredictOptions, remote: RemoteFolder | None) -> list[str]:
    """mosaic.vrt (and mosaic_binary.vrt) over the jobs' rasters, uploaded beside them in an object store."""
    if not jobs:
        return []
    kinds = [(MOSAIC, [j.prediction for j in jobs])]
    if options.writes_binary:
        kinds.append((f"{MOSAIC}_binary", [j.binary for j in jobs]))
    written = []
    for stem, paths in kinds:
        if remote is None:
            written += [str(m) for m in write_mosaics(paths, out_dir / stem)]
            continue
        sources = [remote.gdal_path(p.name) for p in paths]
        for vrt in write_mosaics(sources, out_dir / stem, relative_to=remote.url):
            remote.upload(vrt.name)
            written.append(remote.gdal_path(vrt.name))
    return written


def _check_record(path: Path, record: RunRecord, overwrite: bool) -> None:
    if overwrite or not path.exists():
        return
    differ = read_run_record(path).differences(record)
    if differ:
        raise RoofsegError(
            path,
            f"this folder holds predictions made with another {' and '.join(differ)}; "
            "use --overwrite to redo them, or another output folder",
        )


def _windows_of(job: SceneJob, options: PredictOptions) -> int:
    with Scene(job.scene, options.bands, scene_gsd(job.scene, options)) as scene:  # the grid predicted on
        rows = list(grid_rows(scene.height, scene.width, options.tile, stride_for(options.tile, options.overlap)))
    return sum(len(r) for r in rows)


def _predict_jobs(
    model,
    jobs: list[SceneJob],
    options: PredictOptions,
    vectors: VectorOptions | None,
    progress: bool,
    card: ModelCard | None = None,
) -> dict[str, str]:
    """Predict each job in turn; return {scene id: the one line saying why} of those that failed."""
    failures: dict[str, str] = {}
    windows = {}
    for job in jobs:
        try:
            windows[job.id] = _windows_of(job, options)
        except Exception as exc:  # noqa: BLE001 — one bad scene never costs the others
            failures[job.id] = scene_failure(exc)
    jobs = [j for j in jobs if j.id not in failures]
    if not jobs:
        return failures
    if options.gsd is None and options.gsd_range is None:  # read natively: say where roofs look the wrong size
        for job in jobs:
            warn_if_other_gsd(card.gsd_range if card else None, job.scene)
    infer = load_inference(model, options, progress)
    with tqdm(
        total=sum(windows.values()),
        desc=f"predicting {len(jobs)} scenes",
        unit="window",
        disable=not progress,
        file=terminal(),
    ) as bar:
        for job in jobs:
            bar.set_postfix_str(job.id, refresh=False)
            start = bar.n
            try:
                predict_job(infer, job, options, vectors, bar)
            except Exception as exc:  # noqa: BLE001
                failures[job.id] = scene_failure(exc)
                bar.update(start + windows[job.id] - bar.n)
    return failures
