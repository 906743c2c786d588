"""The devices a command names (``--devices``), as TensorFlow knows them: one parsing for training
and prediction."""

from __future__ import annotations

from roofseg._tf import tf
from roofseg.errors import RoofsegError


def visible_devices(choice: str | None) -> list[str] | None:
    """The devices that ``--devices`` names: 'all' (every visible GPU), or a comma-separated list
    such as 'GPU:0,GPU:1'. None when one default device is all there is (no GPU, or one)."""
    if not choice or choice == "all":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        return gpus if len(gpus) > 1 else None
    known = {d.name.upper().replace("/DEVICE:", ""): d.name for d in tf.config.list_logical_devices()}
    devices = []
    for name in choice.split(","):
        key = name.strip().upper().replace("/DEVICE:", "").lstrip("/")
        if key not in known:
            raise RoofsegError(
                None, f"--devices: no device {name.strip()!r} here (visible: {', '.join(sorted(known))})"
            )
        devices.append(known[key])
    return devices
