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


@keras.saving.register_keras_serializable("roofseg")
def dice_loss(y_true, y_pred):
    """1 − Dice (F1 on probabilities) over the whole batch, as segmentation-models' DiceLoss."""
    return 1.0 - _F.f_score(y_true, y_pred, beta=1, per_image=False, threshold=None, **_SUB)


@keras.saving.register_keras_serializable("roofseg")
def bce_loss(y_true, y_pred):
    """Mean binary cross-entropy."""
    return tf.reduce_mean(keras.losses.binary_crossentropy(y_true, y_pred))


@keras.saving.register_keras_serializable("roofseg")
def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus Dice loss (segmentation-models' bce_dice_loss)."""
    return bce_loss(y_true, y_pred) + dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable("roofseg")
def iou_score(y_true, y_pred):
    """Intersection over union of the mask thresholded at 0.5, over the batch."""
    return _F.iou_score(y_true, y_pred, per_image=False, threshold=THRESHOLD, **_SUB)


@keras.saving.register_keras_serializable("roofseg")
def f1_score(y_true, y_pred):
    """F1 (Dice) of the mask thresholded at 0.5, over the batch."""
    return _F.f_score(y_true, y_pred, beta=1, per_image=False, threshold=THRESHOLD, **_SUB)


LOSSES = {"dice": dice_loss, "bce": bce_loss, "bce_dice": bce_dice_loss}
METRICS = [iou_score, f1_score]
