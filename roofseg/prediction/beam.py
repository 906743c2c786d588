"""Predicting many scenes on Apache Beam: one element per scene, the model loaded once per worker.

Each element runs :func:`roofseg.prediction.many.predict_job`, the function the local runner
calls, so outputs, resuming and the mosaic are the same whichever runner wrote them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace

from tqdm import tqdm

from roofseg.errors import RoofsegError
from roofseg.prediction.many import SceneJob, predict_job
from roofseg.prediction.predict import PredictOptions
from roofseg.prediction.vectorize import VectorOptions
from roofseg.runners import beam_options, pipeline_error


def run_jobs(model: str | os.PathLike, jobs: list[SceneJob], options: PredictOptions, vectors: VectorOptions | None,
             options_text: str | None, progress: bool, terminal=None) -> None:
    """Predict ``jobs`` in a Beam pipeline; the bar counts scenes as their outputs appear."""
    if not isinstance(model, (str, os.PathLike)):
        raise RoofsegError(None, "--runner beam loads the model on each worker: give it as a file")
    beam_opts = beam_options(options_text)
    import apache_beam as beam

    class PredictScene(beam.DoFn):
        def setup(self):  # once per worker, not per scene
            from roofseg.prediction.inference import Inference, visible_devices
            from roofseg.training.model import load_model

            # the worker's own GPUs: the driver's devices may not exist there
            self.infer = Inference(load_model(os.fspath(model), compile=False), visible_devices("all"), options.tta)

        def process(self, job: SceneJob):
            predict_job(self.infer, job, replace(options, devices=None), vectors)
            yield job.id

    done = threading.Event()
    with tqdm(total=len(jobs), desc=f"predicting {len(jobs)} scenes (beam)", unit="scene", disable=not progress,
              file=terminal) as bar:
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
    missing = [j.id for j in jobs if not j.done]
    if missing:
        raise RoofsegError(None, f"the Beam pipeline ended without the outputs of {len(missing)} scenes ({', '.join(missing[:3])}…)")


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
