"""One scene's job: its outputs predicted, traced and drawn under staged names, then put in place
together. The one implementation that the local many-scene runner (:mod:`roofseg.prediction.many`),
the one-scene command and the Beam runner (:mod:`roofseg.prediction.beam`) all call."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import rasterio
from tqdm import tqdm

from roofseg.atomic import commit_outputs, discard_outputs, parts_of, staged_path
from roofseg.contracts.tags import probability_scale, read_tags
from roofseg.devices import visible_devices
from roofseg.errors import RoofsegError, failure_line, first_line
from roofseg.outputs import RemoteFolder
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.engines import load_predictor
from roofseg.prediction.rasters.inference import Inference
from roofseg.prediction.rasters.predict import binary_path, predict_scene
from roofseg.prediction.rasters.style import binary_style, probability_style, write_style
from roofseg.prediction.scoring.pictures import preview_picture
from roofseg.prediction.vector.vectorize import VectorOptions, write_footprints


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
            tags = read_tags(ds)
    except rasterio.errors.RasterioError:
        return None
    return tags.run if tags else None


def is_roofseg_output(path: str) -> bool:
    """A raster roofseg wrote (a prediction, binary mask or mosaic): never a scene to predict."""
    try:
        with rasterio.open(path) as ds:
            return read_tags(ds) is not None
    except rasterio.errors.RasterioError:
        return False  # opening it as a scene will say what is wrong


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
    scale = probability_scale(options.dtype)
    write_style(staged[job.prediction.with_suffix(".qml")], probability_style(scale, options.threshold or 0.5))
    if job.binary is not None:
        write_style(staged[job.binary.with_suffix(".qml")], binary_style())


def predict_job(
    infer: Inference,
    job: SceneJob,
    options: PredictOptions,
    vectors: VectorOptions | None,
    bar: tqdm | None = None,
    progress: bool = False,
) -> dict:
    """Write one scene's outputs: the prediction (and binary), its vectors and preview, all under
    staged names, then renamed into place together (the prediction last), so a scene has all its
    outputs or none of this run's. The one implementation every runner calls. Returns what
    :func:`predict_scene` returns, with ``polygons`` (how many were written, or None)."""
    staged = staged_outputs(job)
    try:
        prediction = staged[job.prediction]
        result = predict_scene(
            infer,
            job.scene,
            prediction,
            options,
            overwrite=True,
            progress=progress and bar is None,
            bar=bar,
            run=job.stamp,
            postprocess=vectors.postprocess(options.threshold) if vectors and job.vector is not None else None,
        )
        result.update(prediction=str(job.prediction), binary=str(job.binary) if job.binary else None, polygons=None)
        scratch_binary = binary_path(prediction)  # written whenever there is a threshold; kept if asked
        if job.vector is not None:
            result["polygons"] = write_footprints(
                prediction, scratch_binary, staged[job.vector], vectors, options.threshold, layer=job.vector.stem
            )
        if job.binary is None:
            scratch_binary.unlink(missing_ok=True)
        _write_styles(job, staged, options)
        if job.preview is not None:
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


def load_inference(model, options: PredictOptions, progress: bool = False, worker: bool = False) -> Inference:
    """The model a run predicts with, loaded once: a model file through its engine (or a model or
    callable as it is), replicated on the options' devices, with test-time flips where asked. The
    one loader of the single-scene, many-scene and Beam runners; ``worker``: on a worker of a
    distributed runner, whose own GPUs (not the driver's) hold the replicas."""
    if isinstance(model, (str, os.PathLike)):
        model = load_predictor(os.fspath(model), options.engine, options.precision, progress)
    devices = options.devices
    if worker:
        devices = visible_devices("all") if hasattr(model, "predict_on_batch") else None
    return Inference(model, devices, options.tta)
