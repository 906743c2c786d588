"""Choosing the tf.distribute strategy: mirrored over local GPUs, default, or multi-worker."""

from __future__ import annotations

import json
import os

from roofseg._tf import tf
from roofseg.devices import visible_devices
from roofseg.errors import RoofsegError


def make_strategy(kind: str = "mirrored", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """``mirrored``: every visible GPU (or ``devices``), else the CPU; ``default``: one device;
    ``multiworker``: MultiWorkerMirroredStrategy configured by the TF_CONFIG variable."""
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if devices:  # one form everywhere: 'GPU:0', '/gpu:0' or a full device name
            devices = visible_devices(",".join(devices))
        return tf.distribute.MirroredStrategy(devices or None)
    if kind == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise RoofsegError(None, "--strategy multiworker needs TF_CONFIG (cluster and task) in the environment")
        try:
            json.loads(config)
        except ValueError as exc:
            raise RoofsegError(None, f"TF_CONFIG is not valid JSON ({exc})") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RoofsegError(None, f"unknown strategy {kind!r} (mirrored, default, multiworker)")


def describe(strategy: tf.distribute.Strategy) -> str:
    """The devices a strategy trains on, in a user's words."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return f"{replicas} replicas over the workers of TF_CONFIG"
    try:
        devices = strategy.extended.worker_devices
    except (AttributeError, RuntimeError):  # the default strategy has no device list: it is one device
        devices = ()
    names = sorted({d.rsplit("device:", 1)[-1] for d in devices}) or ["one device"]
    return f"{replicas} replica{'s' if replicas > 1 else ''} ({', '.join(names)})"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where this process writes the run's files (always, but for non-chief workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )
