"""The arithmetic a training run computes in: float32, or Keras' ``mixed_bfloat16`` where it pays.

Measured side by side (ResNet34 U-Net, 8×256² steps, 2 cores): 2.05× float32 on a CPU with AMX,
1.0× on a Zen 4 with AVX512_BF16 but no AMX, many times slower on CPUs with neither. GPUs of
compute capability 8.0 and newer (Ampere on) compute bfloat16 natively. Under the policy the
variables stay float32; the sigmoid (a float32 layer of its own), the loss and the metrics stay
float32 too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from roofseg._tf import keras, tf

PRECISIONS = ("auto", "float32", "bfloat16")
POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@functools.lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _gpu_capabilities() -> list[tuple[int, int]]:
    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        cap = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if cap:
            caps.append(tuple(cap))
    return caps


def choose_precision(
    asked: str, flags: frozenset[str] | None = None, gpus: list[tuple[int, int]] | None = None
) -> tuple[str, str]:
    """The precision to train in and why: ``asked`` unless it is ``auto``, which means bfloat16
    on GPUs that all compute it natively or on a CPU with AMX, and float32 elsewhere."""
    if asked not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {asked!r}")
    if asked != "auto":
        return asked, "as asked"
    gpus = _gpu_capabilities() if gpus is None else gpus
    if gpus:
        if all(cap >= (8, 0) for cap in gpus):
            return "bfloat16", "the GPUs compute bfloat16 natively (compute capability 8.0 or newer)"
        return "float32", "a GPU older than compute capability 8.0 has no bfloat16 arithmetic"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "bfloat16", "the CPU has AMX (amx_bf16): bfloat16 steps measured 2x float32's"
    if "avx512_bf16" in flags:
        return "float32", "the CPU has AVX512_BF16 but no AMX: bfloat16 steps measured no faster (1.0x)"
    return "float32", "the CPU has no bfloat16 arithmetic (no AMX, no AVX512_BF16): bfloat16 would be many times slower"


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Keras' global dtype policy set for ``precision`` while models are built and trained, then
    put back (the policy is global: a later model in the same process must not inherit it)."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICY.get(precision, precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def _float32_dtype(dtype):
    if isinstance(dtype, str):
        return "float32" if dtype.startswith("mixed_") else dtype
    if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict):
        if str(dtype["config"].get("name", "")).startswith("mixed_"):
            return {**dtype, "config": {**dtype["config"], "name": "float32"}}
    return dtype


def float32_config(config):
    """A model's saved configuration with every layer's mixed dtype policy made float32: the
    weights are float32 under any policy, so the model loads, predicts and exports in float32."""
    if isinstance(config, dict):
        return {k: _float32_dtype(v) if k == "dtype" else float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [float32_config(v) for v in config]
    return config
