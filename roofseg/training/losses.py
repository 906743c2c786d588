"""Loss and metric functions, registered so that a saved ``.keras`` model reloads compiled.

segmentation-models' ``DiceLoss`` and metric objects cannot be rebuilt from a config (they
have no ``from_config``); these plain functions call the same functional implementation
(segmentation_models.base.functional) and are registered with Keras by name.
"""

from __future__ import annotations

from roofseg._tf import keras, sm, tf

THRESHOLD = 0.5
_F = sm.base.functional
_SUB = sm.losses.dice_loss.submodules  # the backend/layers/models/utils sm's functions expect


CONTACT_WEIGHT = 1.0  # the contact borders' loss, added to the roof's (train --contact-weight)


def _dice(y_true, y_pred, known=None):
    if known is not None:  # an unknown pixel is neither found nor missed
        y_true, y_pred = y_true * known, y_pred * known
    return 1.0 - _F.f_score(y_true, y_pred, beta=1, per_image=False, threshold=None, **_SUB)


def _bce(y_true, y_pred, known=None):
    pixels = keras.losses.binary_crossentropy(y_true, y_pred)
    if known is None:
        return tf.reduce_mean(pixels)
    weight = tf.cast(known[..., 0], pixels.dtype)  # the mean over the known pixels alone
    return tf.reduce_sum(pixels * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def _bce_dice(y_true, y_pred, known=None):
    return _bce(y_true, y_pred, known) + _dice(y_true, y_pred, known)


def split_known(y_true, y_pred):
    """(the targets, the known mask or None): a target with one channel more than the model's
    output carries the mask of the pixels whose label is known last (tiles of a review)."""
    if y_true.shape[-1] is not None and y_true.shape[-1] > y_pred.shape[-1]:
        return y_true[..., :-1], tf.cast(y_true[..., -1:], y_pred.dtype)
    return y_true, None


def _roof_and_contact(loss, y_true, y_pred, weight: float = CONTACT_WEIGHT):
    """``loss`` of the roof channel, plus cross-entropy and Dice of the contact channel where the
    model has one (times ``weight``): the roof's term stays what a roof-only model's is.
    Pixels a known mask leaves out (see :func:`split_known`) count in neither."""
    y_true, known = split_known(y_true, y_pred)
    if y_pred.shape[-1] == 1:
        return loss(y_true, y_pred, known)
    # Contact borders are a few pixels in a thousand. Dice alone is about as low for marking every
    # pixel contact as for marking none, and a model trained on it marked whole roofs contact,
    # leaving no cores to split; cross-entropy charges every false border.
    contact = _bce_dice(y_true[..., 1:], y_pred[..., 1:], known)
    return loss(y_true[..., :1], y_pred[..., :1], known) + weight * contact


@keras.saving.register_keras_serializable("roofseg")
def dice_loss(y_true, y_pred):
    """1 − Dice (F1 on probabilities) of the roof over the whole batch, as segmentation-models'
    DiceLoss (plus the contact borders' loss for a model with that output)."""
    return _roof_and_contact(_dice, y_true, y_pred)


@keras.saving.register_keras_serializable("roofseg")
def bce_loss(y_true, y_pred):
    """Mean binary cross-entropy of the roof (plus the contact borders' loss)."""
    return _roof_and_contact(_bce, y_true, y_pred)


@keras.saving.register_keras_serializable("roofseg")
def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus Dice loss of the roof (segmentation-models' bce_dice_loss; plus the
    contact borders' loss)."""
    return _roof_and_contact(_bce_dice, y_true, y_pred)


_ROOF = {"dice": _dice, "bce": _bce, "bce_dice": _bce_dice}


@keras.saving.register_keras_serializable("roofseg")
class RoofContactLoss(keras.losses.Loss):
    """The roof's ``roof`` loss (dice, bce or bce_dice) plus the contact borders' loss times
    ``contact_weight``: :func:`dice_loss` and its kin with another weight on the borders."""

    def __init__(self, roof: str = "dice", contact_weight: float = CONTACT_WEIGHT, name: str | None = None, **kwargs):
        if roof not in _ROOF:
            raise ValueError(f"roof loss must be one of {sorted(_ROOF)}, got {roof!r}")
        super().__init__(name=name or f"{roof}_loss", **kwargs)
        self.roof, self.contact_weight = roof, float(contact_weight)

    def call(self, y_true, y_pred):
        return _roof_and_contact(_ROOF[self.roof], y_true, y_pred, self.contact_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "roof": self.roof, "contact_weight": self.contact_weight}


class _PixelCounts(keras.metrics.BinaryIoU):
    """Roof pixels counted over the whole epoch (Keras' streaming confusion matrix), not per batch.

    Under a distribution strategy the counts of every replica are summed before the ratio is
    taken, so the logged score is the score of the split, as ``roofseg evaluate`` computes it.
    """

    default_name = ""

    def __init__(self, target_class_ids=(1,), threshold: float = THRESHOLD, name: str | None = None, dtype=None):
        # float32 whatever the global policy: under mixed_bfloat16 a metric's variables would be
        # AutoCastVariables, which a MirroredStrategy cannot read in its sync-on-read context (the
        # epoch's end crashed on AMX CPUs, where auto chooses bfloat16); counts need float32 anyway
        super().__init__(
            target_class_ids=[1], threshold=threshold, name=name or self.default_name, dtype=dtype or "float32"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        # the roof channel only: a second channel (contact borders) is a means to split buildings;
        # the pixels whose label is unknown are not counted
        y_true, known = split_known(y_true, y_pred)
        if known is not None:
            sample_weight = known if sample_weight is None else known * sample_weight
        return super().update_state(y_true[..., :1], y_pred[..., :1], sample_weight)

    def _counts(self):
        cm = self.total_cm  # rows: truth, columns: prediction
        return cm[1, 1], cm[0, 1], cm[1, 0]


def _ratio(num, den):
    return tf.where(den > 0, num / tf.maximum(den, 1.0), tf.ones_like(num))  # 1 where there is nothing to find


@keras.saving.register_keras_serializable("roofseg")
class PixelIoU(_PixelCounts):
    """Intersection over union of the roof pixels thresholded at 0.5, over every pixel of the epoch."""

    default_name = "iou_score"

    def result(self):
        tp, fp, fn = self._counts()
        return _ratio(tp, tp + fp + fn)


@keras.saving.register_keras_serializable("roofseg")
class PixelF1(_PixelCounts):
    """F1 (Dice) of the roof pixels thresholded at 0.5, over every pixel of the epoch."""

    default_name = "f1_score"

    def result(self):
        tp, fp, fn = self._counts()
        return _ratio(2 * tp, 2 * tp + fp + fn)


LOSSES = {"dice": dice_loss, "bce": bce_loss, "bce_dice": bce_dice_loss}


def loss_of(name: str, contact_weight: float = CONTACT_WEIGHT):
    """The loss ``name`` (a key of LOSSES) with the contact borders weighted ``contact_weight``:
    the registered function itself at the default weight, so the models it trains load in
    releases that predate the weight."""
    return LOSSES[name] if contact_weight == CONTACT_WEIGHT else RoofContactLoss(name, contact_weight)


def metrics() -> list:
    """Fresh metric objects for a compile (a metric object belongs to one model)."""
    return [PixelIoU(), PixelF1()]
