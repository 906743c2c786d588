"""The one place that sets the environment TensorFlow and segmentation-models read at import.

``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` the Keras 2 API of the ``tf-keras`` package
(segmentation-models 1.0.1 is written against it) and ``SM_FRAMEWORK=tf.keras`` tells
segmentation-models to use that instead of standalone ``keras``. Both are read once, when
the library is first imported, so they must be set before any ``import tensorflow``.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover
    raise ImportError(
        "tensorflow was imported before roofseg with TF_USE_LEGACY_KERAS unset; "
        "import roofseg first or set TF_USE_LEGACY_KERAS=1"
    )
