"""TensorFlow, Keras 2 (tf-keras) and segmentation-models, imported with the right environment.

Every module of roofseg that needs them imports them from here::
    from roofseg._tf import tf, keras
"""

import contextlib
import io
import os
import sys

from roofseg import _env  # noqa: F401  (must run before tensorflow is imported)


@contextlib.contextmanager
def _quiet_native_stderr():
    # TensorFlow's C++ runtime logs (oneDNN, missing CUDA) before absl reads any log level,
    # so TF_CPP_MIN_LOG_LEVEL cannot hide them; silence file descriptor 2 during the import.
    if os.environ.get("ROOFSEG_TF_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    # Listing devices loads the CUDA platform, which logs too (cuInit fails on machines without
    # a GPU). It does not start the runtime: logical devices and collective ops (multi-worker
    # training) can still be configured afterwards.
    tf.config.list_physical_devices("GPU")

__all__ = ["tf", "keras"]  # and sm, imported on first use (module __getattr__ below)


def __getattr__(name: str):
    # segmentation-models is imported on first use only: it pulls in efficientnet and
    # image-classifiers, which the tiler and the pipeline never need.
    if name == "sm":
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its framework choice on import
            import segmentation_models as sm  # on first use only: see the comment above

        return sm
    raise AttributeError(name)
