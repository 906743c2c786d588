"""roofseg: rooftop segmentation from georeferenced satellite and aerial scenes.

Importing the package sets the environment TensorFlow and segmentation-models read
at their own import (see :mod:`roofseg._tf`), so any ``import roofseg...`` placed
before TensorFlow is imported keeps the Keras 2 API in force.
"""

from roofseg import _env  # noqa: F401  (side effect: environment for TF / sm)

__version__ = "0.1.0"
