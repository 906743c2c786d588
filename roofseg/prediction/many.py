"""Predicting many scenes in one call: one model load, one progress bar, resumable, with a mosaic."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from roofseg.atomic import ensure_writable_dir, write_json
from roofseg.errors import RoofsegError
from roofseg.locks import folder_lock
from roofseg.outputs import RemoteFolder, is_object_store
from roofseg.prediction.inference import Inference
from roofseg.prediction.mosaic import write_mosaics
from roofseg.prediction.predict import PredictOptions, binary_path, predict_scene
from roofseg.prediction.vectorize import VectorOptions, write_footprints
from roofseg.raster.gdal_errors import terminal
from roofseg.raster.scene import Scene
from roofseg.raster.windows import grid_rows, stride_for
from roofseg.scenes import scene_files
from roofseg.stac import StacChoice

RUN_RECORD = "predict.json"
RUN_FORMAT = "roofseg-predictions/1"
MOSAIC = "mosaic"
#: options that change what is written (batch, pipelining and devices do not)
OUTPUT_OPTIONS = ("tile", "overlap", "dtype", "threshold", "tta", "cog", "bands", "gsd")


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

    @property
    def outputs(self) -> list[Path]:
        return [p for p in (self.prediction, self.binary, self.vector, self.preview) if p is not None]

    @property
    def done(self) -> bool:
        """Every output exists: each is renamed into place (or uploaded) only once complete."""
        if self.remote is not None:
            return all(self.remote.exists(p.name) for p in self.outputs)
        return all(p.exists() for p in self.outputs)


def plan(entries: Sequence[str], out_dir: Path, options: PredictOptions, vector_suffix: str | None,
         stac: StacChoice = StacChoice(), preview: bool = False, remote: RemoteFolder | None = None) -> list[SceneJob]:
    """The scenes ``entries`` name, each with its outputs ``<id>.tif``, ``<id>_binary.tif``,
    ``<id><vector_suffix>`` and ``<id>_preview.png``, as asked."""
    jobs = []
    for sid, scene in scene_files(entries, stac):
        prediction = out_dir / f"{sid}.tif"
        jobs.append(SceneJob(sid, scene, prediction, binary_path(prediction) if options.threshold is not None else None,
                             out_dir / f"{sid}{vector_suffix}" if vector_suffix else None,
                             out_dir / f"{sid}_preview.png" if preview else None, remote))
    return jobs


def run_record(options: PredictOptions, model_id: dict | None, vectors: VectorOptions | None) -> dict:
    """What the folder's predictions were made with; a rerun must match it to resume."""
    opts = {k: v for k, v in asdict(options).items() if k in OUTPUT_OPTIONS}
    opts["bands"] = list(opts["bands"]) if opts["bands"] else None
    return {"format": RUN_FORMAT, "model": model_id, "options": opts, "vector": asdict(vectors) if vectors else None}


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
    callable as :func:`predict_scene` takes. A scene whose outputs all exist is skipped, so a rerun
    resumes; a rerun with another model or other output options is refused unless ``overwrite``
    (then every scene is redone). After the scenes, ``mosaic.vrt`` (and ``mosaic_binary.vrt``)
    join all the folder's predictions of these scenes. ``runner="beam"``: the scenes are the
    elements of an Apache Beam pipeline (``beam_options`` as on Beam's command line), the model
    loaded once per worker; ``model`` must then be a file. ``out_dir`` may be in an object store
    (s3://, gs://): see :mod:`roofseg.outputs`.
    """
    remote = RemoteFolder(str(out_dir)) if is_object_store(out_dir) else None
    out_dir = ensure_writable_dir(remote.staging if remote else out_dir)
    if vectors and options.threshold is None:
        raise RoofsegError(None, "vectors need a threshold")
    jobs = plan(entries, out_dir, options, vectors.suffix if vectors else None, stac, preview, remote)
    model_id = model_signature(model) if isinstance(model, (str, os.PathLike)) else None
    record = run_record(options, model_id, vectors)
    with folder_lock(out_dir):
        if remote:
            remote.download(RUN_RECORD)
        _check_record(out_dir / RUN_RECORD, record, overwrite)
        todo = [j for j in jobs if overwrite or not j.done]
        if todo:
            write_json(out_dir / RUN_RECORD, record)
            if remote:
                remote.upload(RUN_RECORD)
            if runner == "beam":
                from roofseg.prediction.beam import run_jobs
                from roofseg.runners import quiet_beam

                with quiet_beam() as terminal:
                    run_jobs(model, todo, options, vectors, beam_options, progress, terminal)
            else:
                _predict_jobs(model, todo, options, vectors, progress)
        mosaics = _mosaics(jobs, out_dir, options, remote)
    return {"scenes": len(jobs), "predicted": len(todo), "skipped": len(jobs) - len(todo),
            "mosaics": mosaics, "folder": remote.url if remote else str(out_dir)}


def _mosaics(jobs: list[SceneJob], out_dir: Path, options: PredictOptions, remote: RemoteFolder | None) -> list[str]:
    """mosaic.vrt (and mosaic_binary.vrt) over the jobs' rasters, uploaded beside them in an object store."""
    kinds = [(MOSAIC, [j.prediction for j in jobs])]
    if options.threshold is not None:
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


def _predict_jobs(model, jobs: list[SceneJob], options: PredictOptions, vectors: VectorOptions | None, progress: bool) -> None:
    total = sum(_windows_of(j, options) for j in jobs)
    if isinstance(model, (str, os.PathLike)):
        from roofseg.prediction.predict import warn_if_other_gsd
        from roofseg.training.model import load_model, read_model_card

        if options.gsd is None:  # read natively: say where the model sees roofs at the wrong size
            trained = (read_model_card(model) or {}).get("gsd_m")
            for job in jobs:
                warn_if_other_gsd(trained, job.scene)
        model = load_model(model, compile=False)
    infer = Inference(model, options.devices, options.tta)
    with tqdm(total=total, desc=f"predicting {len(jobs)} scenes", unit="window", disable=not progress,
              file=terminal()) as bar:
        for job in jobs:
            bar.set_postfix_str(job.id, refresh=False)
            predict_job(infer, job, options, vectors, bar)


def predict_job(infer: Inference, job: SceneJob, options: PredictOptions, vectors: VectorOptions | None,
                bar: tqdm | None = None) -> None:
    """Write one scene's outputs: the prediction (and binary), then its vectors. The one
    implementation every runner calls."""
    predict_scene(infer, job.scene, job.prediction, options, overwrite=True, progress=False, bar=bar)
    if job.vector is not None:
        write_footprints(job.prediction, job.binary, job.vector, vectors, options.threshold)
    if job.preview is not None:
        from roofseg.prediction.pictures import preview_picture

        preview_picture(job.prediction, job.scene, job.preview, options.bands, options.threshold or 0.5)
    if job.remote is not None:  # each object appears whole; the staged copies go
        for path in job.outputs:
            job.remote.upload(path.name)
            path.unlink()
