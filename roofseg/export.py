"""A roofseg model as ONNX: for ONNX Runtime and OpenVINO (roofseg's own engines) and for the
QGIS Deepness plugin, which runs ONNX segmentation models on an imagery layer.

Two layouts of the same network (tf2onnx converts the tf-keras graph):

- ``roofseg``: uint8 ``(n, h, w, 3)`` windows as roofseg reads them, scaled to [0, 1] inside the
  graph; outputs ``roof`` (and ``contact``) as float32 ``(n, h, w, 1)`` probabilities.
- ``deepness``: float32 ``(n, 3, size, size)`` in [0, 1], as Deepness feeds tiles; outputs ``roof``
  (and ``contact``) as ``(n, 1, size, size)`` sigmoid heads, with Deepness' metadata (model type,
  class names, resolution in cm/px from the card's GSD, tile size and overlap, threshold, smallest
  segment). The tile size is fixed (the card's, unless asked otherwise): Deepness takes its tile
  size from the model's input and cannot load one whose height and width are left open.

The batch is dynamic in both, and so are height and width in roofseg's layout. The roof is always the
first output: a Deepness that reads one output reads it. The model card travels in the metadata
(``roofseg_card``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from roofseg._tf import tf
from roofseg.atomic import atomic_output
from roofseg.contracts.card import ModelCard, PostProcess, read_card
from roofseg.contracts.sizes import check_tile_size
from roofseg.errors import RoofsegError
from roofseg.training.model import load_model

LAYOUTS = ("roofseg", "deepness")
OPSET = 17
CARD_KEY = "roofseg_card"
OVERLAP_PERCENT = 25


def _tf2onnx():
    """tf2onnx, or one line saying how to install it (and onnx, which it writes with)."""
    try:
        # optional extras (roofseg[onnx]), imported where they are used
        import onnx  # noqa: F401
        import tf2onnx
    except ImportError:
        raise RoofsegError(None, "ONNX export needs tf2onnx and onnx: pip install 'roofseg[onnx]'") from None
    return tf2onnx


def to_onnx(net, layout: str = "roofseg", size: int | None = None):
    """The ONNX ModelProto of the Keras model ``net`` in ``layout`` (see the module's docstring);
    ``size``: the deepness layout's tile size in pixels."""

    if layout not in LAYOUTS:
        raise RoofsegError(None, f"unknown layout {layout!r} ({', '.join(LAYOUTS)})")
    tf2onnx = _tf2onnx()
    channels = int(net.output_shape[-1])
    names = ["roof", "contact"][:channels] if channels <= 2 else [f"channel{i}" for i in range(channels)]

    if layout == "roofseg":
        spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="windows")

        def forward(x):
            y = net(tf.cast(x, tf.float32) / 255.0, training=False)
            shape = tf.concat(
                [tf.shape(x)[:3], [1]], axis=0
            )  # a stated rank: tf2onnx once gave a slice a unit axis more
            return {name: tf.reshape(y[..., i : i + 1], shape, name=name) for i, name in enumerate(names)}
    else:
        check_tile_size(size or 0)
        spec = tf.TensorSpec([None, 3, size, size], tf.float32, name="image")

        def forward(x):
            y = net(tf.transpose(x, [0, 2, 3, 1]), training=False)
            return {
                name: tf.reshape(tf.transpose(y[..., i : i + 1], [0, 3, 1, 2]), [-1, 1, size, size], name=name)
                for i, name in enumerate(names)
            }

    function = tf.function(forward, input_signature=[spec])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=OPSET, output_path=None)
    _order_outputs(proto, names)
    return proto


def _order_outputs(proto, names: list[str]) -> None:
    """Put the graph's outputs in the order of ``names`` (tf2onnx sorts a function's outputs by name,
    which put the contact before the roof)."""
    outputs = {o.name: o for o in proto.graph.output}
    ordered = [outputs[n] for n in names] + [o for o in proto.graph.output if o.name not in names]
    copies = [type(o)() for o in ordered]
    for copy, o in zip(copies, ordered):
        copy.CopyFrom(o)
    del proto.graph.output[:]
    proto.graph.output.extend(copies)


def deepness_metadata(card: ModelCard | None, channels: int, size: int) -> dict:
    """Deepness' metadata keys for a roofseg model of tile ``size``, from its card (and `roofseg
    tune`'s choice). The class names are one dict per output, in the outputs' order."""
    card = card or ModelCard()
    post = card.postprocess.choice if card.postprocess else PostProcess()
    gsd = card.gsd_m
    # Deepness' documentation names the tile size tiles_size, its code reads tile_size: both are written
    meta = {
        "model_type": "Segmentor",
        "class_names": [{0: "roof"}, {0: "contact"}][:channels] if channels > 1 else {0: "roof"},
        "tiles_size": size,
        "tile_size": size,
        "tiles_overlap": OVERLAP_PERCENT,
        "seg_thresh": float(post.threshold),
        "standardization_mean": [0.0, 0.0, 0.0],
        "standardization_std": [1.0, 1.0, 1.0],
    }
    if gsd:
        meta["resolution"] = round(gsd * 100, 3)  # cm per pixel
        meta["seg_small_segment"] = median_size(gsd)
    return meta


SPECK_M2 = 1.0  # what Deepness' median filter is set to wipe out: patches of less than a square metre


def median_size(gsd: float) -> int:
    """Deepness' ``seg_small_segment`` at ``gsd``: the side, in pixels, of the median filter Deepness
    runs over its class map (not an area). A median of odd side k keeps a pixel where more than half
    its k² neighbours are roof, so it wipes out a square patch of a px² when a < k²/2; the smallest
    odd k that wipes out patches under SPECK_M2. Not roofseg's min_area: a median that wide also
    takes a third of a 15 m² roof with its corners, where this one takes 7 %."""
    k = math.ceil(math.sqrt(2 * SPECK_M2) / gsd)
    return k if k % 2 else k + 1


def check_eight_bit(model: str | os.PathLike, card: ModelCard | None) -> None:
    """Refuse a Deepness export of a model trained on imagery that is not 8-bit: Deepness feeds a
    layer's raw values / 255, while roofseg stretched such scenes to 8 bits scene by scene (their
    2-98 % percentiles), so the model would see other pixels in QGIS than it learnt from."""
    other = [d for d in (card.dtypes if card else ()) if d != "uint8"]
    if other:
        raise RoofsegError(
            model,
            f"was trained on {', '.join(other)} imagery stretched to 8 bits scene by scene; Deepness feeds a layer's "
            "raw values / 255, so in QGIS the model would see other pixels than it learnt from: predict such scenes "
            "with roofseg predict (it stretches them as in training), or export a model trained on 8-bit imagery",
        )


def add_metadata(proto, values: dict) -> None:
    """Store ``values`` in the ONNX model's metadata, each JSON-encoded (as Deepness reads them)."""
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value)


def export(model: str | os.PathLike, out: str | os.PathLike, layout: str = "roofseg", size: int | None = None) -> dict:
    """Write ``model`` (a roofseg .keras) as ONNX to ``out`` (atomically); return its metadata.
    ``size``: the deepness layout's tile size (default: the card's tile size, else the default tile size)."""
    # an optional extra, imported where it is used
    import onnx

    _tf2onnx()
    card = read_card(model)
    if layout == "deepness":  # before the slow loading of the model
        size = check_tile_size(size or (card or ModelCard()).tile_size)
        check_eight_bit(model, card)
    net = load_model(model, compile=False)
    proto = to_onnx(net, layout, size)
    channels = int(net.output_shape[-1])
    meta = {CARD_KEY: card.to_dict() if card else None, "roofseg_layout": layout}
    if layout == "deepness":
        meta.update(deepness_metadata(card, channels, size))
    add_metadata(proto, meta)
    out = Path(out)
    with atomic_output(out) as tmp:
        onnx.save(proto, str(tmp))
    return meta
