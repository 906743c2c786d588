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


def _mean_over_known(pixels, known=None):
    """The mean of per-pixel losses ``pixels`` (n, h, w) over the pixels ``known`` marks (None: all)."""
    if known is None:
        return tf.reduce_mean(pixels)
    counted = tf.cast(known[..., 0], pixels.dtype)
    return tf.reduce_sum(pixels * counted) / tf.maximum(tf.reduce_sum(counted), 1.0)


def _bce(y_true, y_pred, known=None, weight=None):
    """Mean cross-entropy over the known pixels, each times its ``weight`` (None: 1)."""
    pixels = keras.losses.binary_crossentropy(y_true, y_pred)
    if weight is not None:
        pixels = pixels * tf.cast(weight[..., 0], pixels.dtype)
    return _mean_over_known(pixels, known)


def _bce_dice(y_true, y_pred, known=None, weight=None):
    return _bce(y_true, y_pred, known, weight) + _dice(y_true, y_pred, known)


FOCAL_GAMMA = 2.0  # Lin et al.'s (RetinaNet) gamma: a pixel predicted right with p = 0.9 counts 1/100


def _focal(y_true, y_pred, known=None, gamma: float = FOCAL_GAMMA):
    """Mean focal loss: cross-entropy times (1 − p_t)^gamma, so pixels already right count little
    and the hard ones (faint borders) carry the term."""
    p = tf.clip_by_value(y_pred, keras.backend.epsilon(), 1.0 - keras.backend.epsilon())
    p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
    return _mean_over_known(tf.reduce_mean(-tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t), axis=-1), known)


def _focal_dice(y_true, y_pred, known=None):
    return _focal(y_true, y_pred, known) + _dice(y_true, y_pred, known)


def split_known(y_true, y_pred):
    """(the targets, the known mask or None): a target with one channel more than the model's
    output carries the mask of the pixels whose label is known last (tiles of a review)."""
    if y_true.shape[-1] is not None and y_true.shape[-1] > y_pred.shape[-1]:
        return y_true[..., :-1], tf.cast(y_true[..., -1:], y_pred.dtype)
    return y_true, None


def gap_weights(y_true, gap_weight: float):
    """(n, h, w, 1): ``gap_weight`` on the ground of the border target (no roof, yet border: a gap
    narrower than the band between two buildings), 1 elsewhere. The U-Net paper's weight map,
    which charges the roof's cross-entropy most where two buildings nearly touch, read from the
    targets the tiles carry instead of distances to the two nearest buildings."""
    gaps = (1.0 - y_true[..., :1]) * y_true[..., 1:2]
    return 1.0 + (gap_weight - 1.0) * gaps


def _roof_and_contact(loss, y_true, y_pred, weight: float = CONTACT_WEIGHT, border=_bce_dice, gap_weight: float = 1.0):
    """``loss`` of the roof channel, plus ``border`` (cross-entropy and Dice) of the contact
    channel where the model has one (times ``weight``): the roof's term stays what a roof-only
    model's is, but for the ground in gaps between buildings, whose roof cross-entropy counts
    ``gap_weight`` times (:func:`gap_weights`). Pixels a known mask leaves out (see
    :func:`split_known`) count in neither."""
    y_true, known = split_known(y_true, y_pred)
    if y_pred.shape[-1] == 1:
        return loss(y_true, y_pred, known)
    # Contact borders are a few pixels in a thousand. Dice alone is about as low for marking every
    # pixel contact as for marking none, and a model trained on it marked whole roofs contact,
    # leaving no cores to split; cross-entropy charges every false border.
    contact = border(y_true[..., 1:], y_pred[..., 1:], known)
    if gap_weight == 1.0:
        roof = loss(y_true[..., :1], y_pred[..., :1], known)
    else:
        roof = loss(y_true[..., :1], y_pred[..., :1], known, gap_weights(y_true, gap_weight))
    return roof + weight * contact


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
_WEIGHABLE = ("bce", "bce_dice")  # the roof losses with a cross-entropy a gap weight can weigh


def check_gap_weight(roof: str, gap_weight: float) -> None:
    """A ValueError where ``gap_weight`` cannot apply: it weighs the roof's cross-entropy, which
    Dice alone has not."""
    if gap_weight != 1.0 and roof not in _WEIGHABLE:
        raise ValueError(f"a gap weight weighs the roof's cross-entropy: the {roof} loss has none (use bce_dice)")


#: the contact borders' loss (train --contact-loss); the first is the default
CONTACT_LOSSES = {"bce_dice": _bce_dice, "focal_dice": _focal_dice}
CONTACT_LOSS = "bce_dice"


@keras.saving.register_keras_serializable("roofseg")
class RoofContactLoss(keras.losses.Loss):
    """The roof's ``roof`` loss (dice, bce or bce_dice) plus the contact borders' ``contact`` loss
    (bce_dice or focal_dice) times ``contact_weight``: :func:`dice_loss` and its kin with another
    weight or loss on the borders."""

    def __init__(
        self,
        roof: str = "dice",
        contact_weight: float = CONTACT_WEIGHT,
        name: str | None = None,
        contact: str = CONTACT_LOSS,
        gap_weight: float = 1.0,
        **kwargs,
    ):
        if roof not in _ROOF:
            raise ValueError(f"roof loss must be one of {sorted(_ROOF)}, got {roof!r}")
        if contact not in CONTACT_LOSSES:
            raise ValueError(f"contact loss must be one of {sorted(CONTACT_LOSSES)}, got {contact!r}")
        check_gap_weight(roof, gap_weight)
        super().__init__(name=name or f"{roof}_loss", **kwargs)
        self.roof, self.contact_weight, self.contact = roof, float(contact_weight), contact
        self.gap_weight = float(gap_weight)

    def call(self, y_true, y_pred):
        return _roof_and_contact(
            _ROOF[self.roof], y_true, y_pred, self.contact_weight, CONTACT_LOSSES[self.contact], self.gap_weight
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "roof": self.roof,
            "contact_weight": self.contact_weight,
            "contact": self.contact,
            "gap_weight": self.gap_weight,
        }


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


def loss_of(name: str, contact_weight: float = CONTACT_WEIGHT, contact: str = CONTACT_LOSS, gap_weight: float = 1.0):
    """The loss ``name`` (a key of LOSSES) with the contact borders' ``contact`` loss weighted
    ``contact_weight`` and the gaps between buildings ``gap_weight`` (:func:`gap_weights`): the
    registered function itself at the defaults, so the models it trains load in releases that
    predate them."""
    if contact_weight == CONTACT_WEIGHT and contact == CONTACT_LOSS and gap_weight == 1.0:
        return LOSSES[name]
    return RoofContactLoss(name, contact_weight, contact=contact, gap_weight=gap_weight)


def metrics() -> list:
    """Fresh metric objects for a compile (a metric object belongs to one model)."""
    return [PixelIoU(), PixelF1()]
