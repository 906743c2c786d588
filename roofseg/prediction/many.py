"""Predicting many scenes in one call: one model load, one progress bar, resumable, with a mosaic."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import rasterio
from tqdm import tqdm

from roofseg.atomic import (commit_outputs, discard_outputs, ensure_writable_dir, parts_of, remove_stale_partials,
                            staged_path, write_json)
from roofseg.errors import BatchError, RoofsegError, failure_line, first_line
from roofseg.locks import folder_lock
from roofseg.outputs import RemoteFolder, is_object_store
from roofseg.prediction.inference import Inference
from roofseg.prediction.mosaic import write_mosaics
from roofseg.prediction.predict import PredictOptions, binary_path, predict_scene
from roofseg.prediction.vectorize import VectorOptions, write_footprints
from roofseg.raster.gdal_errors import terminal
from roofseg.raster.scene import Scene
from roofseg.raster.windows import grid_rows, stride_for
from roofseg.scenes import is_remote, scene_files
from roofseg.stac import StacChoice

RUN_RECORD = "predict.json"
FAILURES = "failed.json"  # the scenes the last run could not predict, with why
RUN_FORMAT = "roofseg-predictions/1"
MOSAIC = "mosaic"
RUN_TAG = "ROOFSEG_RUN"  # on each prediction raster: the digest of the run record it was made under
#: options that change what is written (batch, pipelining and devices do not)
OUTPUT_OPTIONS = ("tile", "overlap", "dtype", "threshold", "keep_binary", "tta", "cog", "bands", "gsd")


@dataclass(frozen=True)
class SceneJob:
    """One scene and the files it gets in the output folder."""

    id: str
    scene: str  # a file, URL or GDAL path
    prediction: Path
    binary: Path | None
    vector: Path | None
    preview: Path | None = None
    remote: RemoteFolder | None = None  # the object-store folder the outputs go to; the paths above stage them
    stamp: str = ""  # the run record's digest: outputs made under another record are not this job's

    @property
    def styles(self) -> list[Path]:
        """The QGIS styles beside the rasters (``NAME.qml``), which QGIS loads with them."""
        return [p.with_suffix(".qml") for p in (self.binary, self.prediction) if p is not None]

    @property
    def outputs(self) -> list[Path]:
        """The job's outputs, the prediction last: it is renamed (or uploaded) last, so a scene whose
        prediction carries the run's stamp has all its outputs."""
        return [p for p in (self.binary, self.vector, self.preview, *self.styles, self.prediction) if p is not None]

    @property
    def files(self) -> list[Path]:
        """Every file of the outputs, a shapefile's side-car files included."""
        return [part for p in self.outputs for part in parts_of(p)]

    @property
    def done(self) -> bool:
        """Every output is there, and the prediction was made under this run's record."""
        required = [p for p in self.files if p.suffix.lower() not in (".prj", ".cpg")]
        if self.remote is not None:
            if not all(self.remote.exists(p.name) for p in required):
                return False
            return run_stamp_of(self.remote.gdal_path(self.prediction.name)) == self.stamp
        return all(p.exists() for p in required) and run_stamp_of(self.prediction) == self.stamp


def run_stamp_of(prediction: str | os.PathLike) -> str | None:
    """The run stamp a prediction raster carries, or None (unreadable, or not one of roofseg's)."""
    try:
        with rasterio.open(prediction) as ds:
            return ds.tags().get(RUN_TAG)
    except rasterio.errors.RasterioError:
        return None


def is_roofseg_output(path: str) -> bool:
    """A raster roofseg wrote (a prediction, binary mask or mosaic): never a scene to predict."""
    from roofseg.prediction.predict import CONTENT_TAG

    try:
        with rasterio.open(path) as ds:
            return CONTENT_TAG in ds.tags()
    except rasterio.errors.RasterioError:
        return False  # opening it as a scene will say what is wrong


def _inside(path: str, folder: Path) -> bool:
    return not is_remote(path) and Path(path).resolve().is_relative_to(folder.resolve())


def plan(entries: Sequence[str], out_dir: Path, options: PredictOptions, vector_suffix: str | None,
         stac: StacChoice = StacChoice(), preview: bool = False, remote: RemoteFolder | None = None,
         stamp: str = "") -> list[SceneJob]:
    """The scenes ``entries`` name, each with its outputs ``<id>.tif``, ``<id>_binary.tif``,
    ``<id><vector_suffix>`` and ``<id>_preview.png``, as asked. Files inside ``out_dir`` and rasters
    roofseg wrote (by their tags) are outputs, not scenes: a glob over the output folder's parent
    does not predict the predictions."""
    jobs = []
    for sid, scene in scene_files(entries, stac):
        if _inside(scene, out_dir) or (not is_remote(scene) and is_roofseg_output(scene)):
            continue
        prediction = out_dir / f"{sid}.tif"
        jobs.append(SceneJob(sid, scene, prediction, binary_path(prediction) if options.writes_binary else None,
                             out_dir / f"{sid}{vector_suffix}" if vector_suffix else None,
                             out_dir / f"{sid}_preview.png" if preview else None, remote, stamp))
    if not jobs:
        raise RoofsegError(None, f"no scene to predict: every input is an output of roofseg or lies in {out_dir}")
    return jobs


def run_record(options: PredictOptions, model_id: dict | None, vectors: VectorOptions | None) -> dict:
    """What the folder's predictions were made with; a rerun must match it to resume."""
    opts = {k: v for k, v in asdict(options).items() if k in OUTPUT_OPTIONS}
    opts["bands"] = list(opts["bands"]) if opts["bands"] else None
    if options.precision != "f32":  # float32 engines agree within 1/255; bfloat16 changes the outputs
        opts["precision"] = options.precision
    return {"format": RUN_FORMAT, "model": model_id, "options": opts, "vector": asdict(vectors) if vectors else None}


def record_stamp(record: dict) -> str:
    """The digest of a run record that each of its prediction rasters carries."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def model_signature(path: str | os.PathLike) -> dict:
    """A model file's identity for the run record: its path, size and modification time."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def predict_scenes(model, entries: Sequence[str], out_dir: str | os.PathLike, options: PredictOptions = PredictOptions(),
                   vectors: VectorOptions | None = None, overwrite: bool = False,
                   progress: bool = True, stac: StacChoice = StacChoice(), runner: str = "local",
                   beam_options: str | None = None, preview: bool = False) -> dict:
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
    """
    remote = RemoteFolder(str(out_dir)) if is_object_store(out_dir) else None
    out_dir = ensure_writable_dir(remote.staging if remote else out_dir)
    if vectors and options.threshold is None:
        raise RoofsegError(None, "vectors need a threshold")
    model_id = model_signature(model) if isinstance(model, (str, os.PathLike)) else None
    record = run_record(options, model_id, vectors)
    jobs = plan(entries, out_dir, options, vectors.suffix if vectors else None, stac, preview, remote, record_stamp(record))
    with folder_lock(out_dir):
        remove_stale_partials(out_dir)
        if remote:
            remote.download(RUN_RECORD)
        _check_record(out_dir / RUN_RECORD, record, overwrite)
        todo = [j for j in jobs if overwrite or not j.done]
        failures: dict[str, str] = {}
        if todo:
            write_json(out_dir / RUN_RECORD, record)
            if remote:
                remote.upload(RUN_RECORD)
            if runner == "beam":
                from roofseg.prediction.beam import run_jobs
                from roofseg.runners import quiet_beam

                with quiet_beam() as terminal:
                    failures = run_jobs(model, todo, options, vectors, beam_options, progress, terminal)
            else:
                failures = _predict_jobs(model, todo, options, vectors, progress)
        _record_failures(out_dir, jobs, failures, remote)
        mosaics = _mosaics([j for j in jobs if j.id not in failures], out_dir, options, remote)
    if failures:
        raise BatchError(remote.url + "/" + FAILURES if remote else out_dir / FAILURES,
                         [f"{next(j.scene for j in jobs if j.id == sid)}: {line}" for sid, line in failures.items()],
                         len(jobs))
    return {"scenes": len(jobs), "predicted": len(todo), "skipped": len(jobs) - len(todo),
            "mosaics": mosaics, "folder": remote.url if remote else str(out_dir)}


def _record_failures(out_dir: Path, jobs: list[SceneJob], failures: dict[str, str], remote: RemoteFolder | None) -> None:
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


def _check_record(path: Path, record: dict, overwrite: bool) -> None:
    if overwrite or not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RoofsegError(path, f"cannot read the run record ({exc}); use --overwrite to start the folder afresh") from None
    differ = [k for k in ("model", "options", "vector") if old.get(k) != record[k]]
    if differ:
        raise RoofsegError(path, f"this folder holds predictions made with another {' and '.join(differ)}; "
                                 "use --overwrite to redo them, or another output folder")


def _windows_of(job: SceneJob, options: PredictOptions) -> int:
    with Scene(job.scene, options.bands, options.gsd) as scene:  # the grid predicted on
        rows = list(grid_rows(scene.height, scene.width, options.tile, stride_for(options.tile, options.overlap)))
    return sum(len(r) for r in rows)


def _predict_jobs(model, jobs: list[SceneJob], options: PredictOptions, vectors: VectorOptions | None,
                  progress: bool) -> dict[str, str]:
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
    if isinstance(model, (str, os.PathLike)):
        from roofseg.prediction.engines import load_predictor
        from roofseg.prediction.predict import warn_if_other_gsd
        from roofseg.training.model import read_model_card

        if options.gsd is None:  # read natively: say where the model sees roofs at the wrong size
            trained = (read_model_card(model) or {}).get("gsd_m")
            for job in jobs:
                warn_if_other_gsd(trained, job.scene)
        model = load_predictor(model, options.engine, options.precision, progress)
    infer = Inference(model, options.devices, options.tta)
    with tqdm(total=sum(windows.values()), desc=f"predicting {len(jobs)} scenes", unit="window", disable=not progress,
              file=terminal()) as bar:
        for job in jobs:
            bar.set_postfix_str(job.id, refresh=False)
            start = bar.n
            try:
                predict_job(infer, job, options, vectors, bar)
            except Exception as exc:  # noqa: BLE001
                failures[job.id] = scene_failure(exc)
                bar.update(start + windows[job.id] - bar.n)
    return failures


def scene_failure(exc: BaseException) -> str:
    """The line a failed scene is reported with: roofseg's own words, or the library's first line."""
    line = failure_line(exc)
    if line is None:
        line = f"{type(exc).__name__}: {first_line(exc)} (a bug in roofseg: please report it)"
    return line.removeprefix(f"{getattr(exc, 'path', None)}: ")


def staged_outputs(job: SceneJob) -> dict[Path, Path]:
    """final → staged name of each of the job's outputs, the prediction last. The binary raster's
    staged name is the one :func:`predict_scene` gives beside the staged prediction."""
    prediction = staged_path(job.prediction)
    staged = {p: staged_path(p) for p in job.outputs if p not in (job.prediction, job.binary)}
    if job.binary is not None:
        staged = {job.binary: binary_path(prediction), **staged}
    staged[job.prediction] = prediction
    return staged


def _write_styles(job: SceneJob, staged: dict[Path, Path], options: PredictOptions) -> None:
    from roofseg.prediction.style import binary_style, probability_style, write_style

    scale = 255.0 if options.dtype == "uint8" else 1.0
    write_style(staged[job.prediction.with_suffix(".qml")], probability_style(scale, options.threshold or 0.5))
    if job.binary is not None:
        write_style(staged[job.binary.with_suffix(".qml")], binary_style())


def predict_job(infer: Inference, job: SceneJob, options: PredictOptions, vectors: VectorOptions | None,
                bar: tqdm | None = None, progress: bool = False) -> dict:
    """Write one scene's outputs: the prediction (and binary), its vectors and preview, all under
    staged names, then renamed into place together (the prediction last), so a scene has all its
    outputs or none of this run's. The one implementation every runner calls. Returns what
    :func:`predict_scene` returns, with ``polygons`` (how many were written, or None)."""
    staged = staged_outputs(job)
    try:
        prediction = staged[job.prediction]
        result = predict_scene(infer, job.scene, prediction, options, overwrite=True, progress=progress and bar is None,
                               bar=bar, tags={RUN_TAG: job.stamp})
        result.update(prediction=str(job.prediction), binary=str(job.binary) if job.binary else None, polygons=None)
        scratch_binary = binary_path(prediction)  # written whenever there is a threshold; kept if asked
        if job.vector is not None:
            result["polygons"] = write_footprints(prediction, scratch_binary, staged[job.vector], vectors,
                                                  options.threshold, layer=job.vector.stem)
        if job.binary is None:
            scratch_binary.unlink(missing_ok=True)
        _write_styles(job, staged, options)
        if job.preview is not None:
            from roofseg.prediction.pictures import preview_picture

            preview_picture(prediction, job.scene, staged[job.preview], options.bands, options.threshold or 0.5)
        commit_outputs(staged)
    except RoofsegError as exc:  # named by its staged file: say the output's own name
        discard_outputs(staged)
        binary_path(staged[job.prediction]).unlink(missing_ok=True)
        finals = {str(tmp): final for final, tmp in staged.items()}
        if exc.path in finals:
            raise type(exc)(finals[exc.path], exc.problem) from None
        raise
    except BaseException:
        discard_outputs(staged)
        binary_path(staged[job.prediction]).unlink(missing_ok=True)
        raise
    if job.remote is not None:  # each object appears whole, the prediction last; the staged copies go
        for path in job.files:
            if path.exists():
                job.remote.upload(path.name)
                path.unlink()
    return result
