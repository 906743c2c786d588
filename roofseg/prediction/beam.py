"""Predicting many scenes on Apache Beam: one element per scene, the model loaded once per worker.

Each element runs :func:`roofseg.prediction.job.predict_job`, the function the local runner
calls, so outputs, resuming and the mosaic are the same whichever runner wrote them.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from roofseg.atomic import write_json
from roofseg.errors import RoofsegError
from roofseg.prediction.job import SceneJob, load_inference, predict_job, scene_failure
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.vector.vectorize import VectorOptions
from roofseg.runners import beam_options, pipeline_error


def run_jobs(
    model: str | os.PathLike,
    jobs: list[SceneJob],
    options: PredictOptions,
    vectors: VectorOptions | None,
    options_text: str | None,
    progress: bool,
    terminal=None,
) -> dict[str, str]:
    """Predict ``jobs`` in a Beam pipeline; the bar counts scenes as their outputs appear. Returns
    {scene id: why} of the scenes that failed (the others are predicted all the same)."""
    if not isinstance(model, (str, os.PathLike)):
        raise RoofsegError(None, "--runner beam loads the model on each worker: give it as a file")
    beam_opts = beam_options(options_text)
    # an optional extra, imported where it is used
    import apache_beam as beam

    class PredictScene(beam.DoFn):
        def setup(self):  # once per worker, not per scene

            # the worker's own engine and GPUs: the driver's may not exist there
            self.infer = load_inference(model, options, worker=True)

        def process(self, job: SceneJob):
            marker = failure_marker(job)
            marker.unlink(missing_ok=True)
            try:
                predict_job(self.infer, job, replace(options, devices=None), vectors)
            except Exception as exc:  # noqa: BLE001 — one bad scene never costs the others
                write_json(marker, {"id": job.id, "error": scene_failure(exc)})
            yield job.id

    done = threading.Event()
    with tqdm(
        total=len(jobs), desc=f"predicting {len(jobs)} scenes (beam)", unit="scene", disable=not progress, file=terminal
    ) as bar:
        watcher = threading.Thread(target=_follow, args=(jobs, bar, done), daemon=True)
        watcher.start()
        try:
            with beam.Pipeline(options=beam_opts) as pipeline:
                pipeline | "scenes" >> beam.Create(jobs, reshuffle=True) | "predict" >> beam.ParDo(PredictScene())
        except Exception as exc:  # a worker's failure comes back wrapped in Beam's own error
            raise pipeline_error(exc) from None
        finally:
            done.set()
            watcher.join()
    failures = {}
    for job in jobs:
        marker = failure_marker(job)
        if marker.exists():
            failures[job.id] = json.loads(marker.read_text())["error"]
            marker.unlink()
        elif not job.done:
            failures[job.id] = "the Beam pipeline ended without its outputs"
    return failures


def failure_marker(job: SceneJob) -> Path:
    """Where a worker says why a scene failed (beside its staged outputs)."""
    return job.prediction.with_name(f".{job.id}.failed.json")


def _follow(jobs: list[SceneJob], bar: tqdm, done: threading.Event) -> None:
    counted: set[str] = set()
    while True:
        finished = done.wait(0.5)
        for job in jobs:
            if job.id not in counted and job.done:
                counted.add(job.id)
                bar.update(1)
        if finished:
            return
