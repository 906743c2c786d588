"""The model's side of prediction: uint8 windows in, probabilities out, on one device or several."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from roofseg._tf import keras, tf
from roofseg.errors import RoofsegError

FLIPS = ((), (2,), (1,), (1, 2))  # the four flips of test-time augmentation (axes of an (n, h, w, c) batch)


def flips_average(predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """Mean prediction over the four flips of a batch (test-time augmentation), on the host."""
    total = 0.0
    for axes in FLIPS:
        flipped = np.flip(batch, axis=axes) if axes else batch
        out = predict(np.ascontiguousarray(flipped))
        total = total + (np.flip(out, axis=axes) if axes else out)
    return total / 4


class Inference:
    """A predictor of uint8 ``(n, h, w, 3)`` windows → float32 ``(n, h, w, channels)`` probabilities.

    Channel 0 is the roof; a model trained with contact targets has a channel 1, the contact
    borders between buildings. ``channels`` is the model's output width (a callable's attribute
    ``channels``, 1 by default).

    A Keras model gets the windows as uint8 and scales them in its graph: a quarter of the bytes
    to the device, and no float conversion on the host. With several ``devices`` each holds a
    replica of the model and predicts its share of every batch; the shares run in parallel in one
    graph. With ``tta`` the four flips are predicted (one model call each, on the whole batch) and
    averaged inside the graph.

    Any other callable takes float32 windows in [0, 1], scaled here; one with an attribute
    ``takes_uint8 = True`` gets the uint8 windows as read and scales them itself, as a Keras model
    does in its graph.
    """

    def __init__(self, model, devices: Sequence[str] | None = None, tta: bool = False):
        self.tta = tta
        self.devices = list(devices or [])
        self.replicas: list = []  # the Keras models in use, one per device
        if hasattr(model, "predict_on_batch"):
            self.channels = int(model.output_shape[-1])
            self._run = self._keras(model)
        else:
            if self.devices:
                raise RoofsegError(None, "--devices needs a Keras model")
            self.channels = int(getattr(model, "channels", 1))
            self._run = self._callable(model)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._run(batch)

    def _callable(self, model) -> Callable[[np.ndarray], np.ndarray]:
        if getattr(model, "takes_uint8", False):
            call = lambda batch: np.asarray(model(batch), np.float32)  # noqa: E731
        else:
            call = lambda batch: np.asarray(model(batch.astype(np.float32) / 255.0), np.float32)  # noqa: E731
        return (lambda batch: flips_average(call, batch)) if self.tta else call

    def _keras(self, model) -> Callable[[np.ndarray], np.ndarray]:
        replicas = [(None, model)] if len(self.devices) < 2 else [(d, _replica(model, d)) for d in self.devices]
        self.replicas = [net for _, net in replicas]
        tta = self.tta

        def forward(net, x):
            x = tf.cast(x, tf.float32) / 255.0
            if not tta:
                return net(x, training=False)
            total = 0.0
            for axes in FLIPS:
                flipped = tf.reverse(x, axes) if axes else x
                out = net(flipped, training=False)
                total += tf.reverse(out, axes) if axes else out
            return total / 4.0

        @tf.function(reduce_retracing=True)
        def graph(x):
            if len(replicas) == 1:
                return forward(model, x)
            share = (tf.shape(x)[0] + len(replicas) - 1) // len(replicas)
            outs = []
            for i, (device, net) in enumerate(replicas):
                with tf.device(device):
                    outs.append(forward(net, x[i * share : (i + 1) * share]))
            return tf.concat(outs, axis=0)

        # A read-only view of the result, not .numpy()'s copy of it: nothing downstream writes into a
        # prediction, and the copy was a tenth of the host's work per batch with a free model.
        return lambda batch: np.asarray(memoryview(graph(batch)))


def _replica(model, device: str):
    """A copy of ``model`` whose weights live on ``device``."""

    with tf.device(device):
        replica = keras.models.clone_model(model)
        replica.set_weights(model.get_weights())
    return replica
