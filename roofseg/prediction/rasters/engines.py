"""Prediction engines: TensorFlow, ONNX Runtime and OpenVINO behind the one :class:`Inference`.

ONNX Runtime and OpenVINO run the model's ONNX export (:mod:`roofseg.export`, roofseg's layout:
uint8 windows in, roof and contact probabilities out), converted once per model and cached
beside it in ``.roofseg-cache/<digest>.onnx``, so every scene, run and Beam worker reuses it. Each
engine is a callable that takes the uint8 windows as read (``takes_uint8``), so stitching, GSD,
vectors, test-time flips, many scenes and Beam are the same whichever engine predicts.

Every engine computes in float32 by default, and agrees with TensorFlow within 1/255. OpenVINO can
compute in bfloat16 instead (``precision="bf16"``) on CPUs with bfloat16 arithmetic: 1.4x to 2x
as fast there, its probabilities a little different (measured by bench/precision.py).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from roofseg._tf import tf
from roofseg.errors import RoofsegError
from roofseg.export import export
from roofseg.terminal import terminal
from roofseg.training.model import check_archive, load_model, model_digest

ENGINES = ("auto", "tf", "onnx", "openvino")
PRECISIONS = ("f32", "bf16")
EXTRAS = {"onnx": ("onnxruntime", "roofseg[onnx]"), "openvino": ("openvino", "roofseg[openvino]")}
CACHE = ".roofseg-cache"


def installed(engine: str) -> bool:
    """Whether ``engine``'s runtime (and, for either ONNX engine, the converter) can be imported."""
    if engine == "tf":
        return True
    module = EXTRAS[engine][0]
    return all(importlib.util.find_spec(m) is not None for m in (module, "tf2onnx", "onnx"))


def choose(engine: str, gpus: bool, precision: str = "f32") -> str:
    """The engine ``auto`` stands for: TensorFlow where there are GPUs; on a CPU the fastest one
    installed (OpenVINO, then ONNX Runtime, then TensorFlow). ``bf16`` is OpenVINO's alone."""
    if precision not in PRECISIONS:
        raise RoofsegError(None, f"unknown precision {precision!r} ({', '.join(PRECISIONS)})")
    if precision == "bf16":
        if engine not in ("auto", "openvino"):
            raise RoofsegError(None, f"--precision bf16 runs on OpenVINO, not on {engine}: use --engine openvino")
        return choose("openvino", gpus)
    if engine != "auto":
        if engine not in ENGINES:
            raise RoofsegError(None, f"unknown engine {engine!r} ({', '.join(ENGINES)})")
        if not installed(engine):
            raise RoofsegError(
                None, f"--engine {engine} needs {EXTRAS[engine][0]} and tf2onnx: pip install '{EXTRAS[engine][1]}'"
            )
        return engine
    if gpus:
        return "tf"
    return next((e for e in ("openvino", "onnx") if installed(e)), "tf")


def converted(model: str | os.PathLike, progress: bool = False) -> Path:
    """The model's ONNX export (roofseg's layout), made once and cached by the model's digest beside
    it (or in the temporary folder where its folder is read-only). ``progress``: say so while it
    is made (a ResNet34 U-Net takes a quarter of a minute)."""

    check_archive(model)  # a damaged model is said before anything is made for it
    digest = model_digest(model)[:16]
    for folder in (Path(model).resolve().parent / CACHE, Path(tempfile.gettempdir()) / "roofseg-cache"):
        path = folder / f"{digest}.onnx"
        if path.is_file():
            if _readable_onnx(path):
                return path
            warnings.warn(f"{path}: the cached ONNX export of {model} is broken; it is made again", stacklevel=2)
            try:
                path.unlink()
            except OSError:
                continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tqdm(
                total=1,
                desc=f"converting {Path(model).name} to ONNX, once (kept in {folder})",
                disable=not progress,
                file=terminal(),
                bar_format="{desc}: {elapsed}",
            ) as bar:
                export(model, path, "roofseg")
                bar.update()
            return path
        except PermissionError:
            continue
    raise RoofsegError(model, "no folder to keep its ONNX export in")


def _readable_onnx(path: Path) -> bool:
    """Whether ``path`` parses as an ONNX model (a cache roofseg made may have been cut or damaged since)."""
    # an optional extra, imported where it is used
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 — protobuf's DecodeError and friends: broken, whichever
        return False
    return len(proto.graph.node) > 0 and len(proto.graph.output) > 0  # an empty file parses as an empty model


class _OnnxBase:
    """A callable over uint8 (n, h, w, 3) windows → float32 (n, h, w, channels), roof first."""

    takes_uint8 = True
    order: list[str]

    @property
    def channels(self) -> int:
        return len(self.order)

    @staticmethod
    def _joined(outs: list[np.ndarray], batch: np.ndarray) -> np.ndarray:
        """The outputs as one (n, h, w, channels) float32 array. Each output is one channel of the
        window; a runtime may add unit axes to it (OpenVINO was seen giving (n, h, w, 1, 1))."""
        n, h, w = batch.shape[:3]
        return np.concatenate([np.asarray(o, np.float32).reshape(n, h, w, -1) for o in outs], axis=-1)

    @staticmethod
    def _order(names: list[str]) -> list[str]:
        return [n for n in ("roof", "contact") if n in names] + sorted(n for n in names if n not in ("roof", "contact"))


class OnnxRuntimeModel(_OnnxBase):
    """The ONNX export run by ONNX Runtime (CPU, or CUDA/TensorRT where that build is installed)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        # an optional extra, imported where it is used
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the converted resize's deprecation notes are not the user's business
        if threads:
            options.intra_op_num_threads = threads
        providers = [
            p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in ort.get_available_providers()
        ]
        self.session = ort.InferenceSession(str(path), options, providers=providers + ["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.order = self._order([o.name for o in self.session.get_outputs()])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        outs = self.session.run(self.order, {self.input: np.ascontiguousarray(batch, np.uint8)})
        return self._joined(outs, batch)


def native_bf16() -> bool:
    """Whether OpenVINO finds bfloat16 arithmetic on this CPU (AVX-512 BF16 or AMX)."""
    # an optional extra, imported where it is used
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoModel(_OnnxBase):
    """The ONNX export run by OpenVINO on the CPU, in float32 unless ``precision`` is ``bf16``.

    The precision is always stated: left to itself OpenVINO computes in bfloat16 on CPUs that have
    it, and the probabilities of a model with random weights then strayed by up to 0.27.
    """

    def __init__(self, path: str | os.PathLike, precision: str = "f32"):
        # an optional extra, imported where it is used
        import openvino as ov

        if precision == "bf16" and not native_bf16():
            warnings.warn("this CPU has no bfloat16 arithmetic: OpenVINO predicts in float32", stacklevel=2)
            precision = "f32"
        self.precision = precision
        core = ov.Core()
        self.compiled = core.compile_model(
            core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        )
        names = {o.get_any_name(): o for o in self.compiled.outputs}
        self.order = self._order(list(names))
        self.outputs = [names[n] for n in self.order]
        self.request = self.compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        result = self.request.infer([np.ascontiguousarray(batch, np.uint8)])
        return self._joined([result[o] for o in self.outputs], batch)


def load_predictor(model: str | os.PathLike, engine: str = "tf", precision: str = "f32", progress: bool = False):
    """What predicts with ``model`` (a .keras file) on ``engine``: the Keras model for ``tf``, an
    ONNX Runtime or OpenVINO callable for the others (``auto`` resolved by :func:`choose`), in
    ``precision`` (``bf16``: OpenVINO only). ``progress``: show the first conversion to ONNX."""

    engine = choose(engine, bool(tf.config.list_physical_devices("GPU")), precision)
    if engine == "tf":
        return load_model(model, compile=False)
    path = converted(model, progress)
    return OnnxRuntimeModel(path) if engine == "onnx" else OpenVinoModel(path, precision)
