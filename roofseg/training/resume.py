"""Resuming a run where it stopped: the monitors' memory rebuilt from the run's history.csv.

Keras' ModelCheckpoint, EarlyStopping and ReduceLROnPlateau start every ``fit`` from an
infinite best and zero patience. A run resumed after a kill, or its second phase after the
frozen-encoder epochs, would then forget its best epoch: ``best.keras`` could be replaced by a
worse model and early stopping would wait a full patience again. The history of val_loss and
learning rates is in ``history.csv``; :func:`replay` reruns the monitors' rules over it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roofseg._tf import keras


@dataclass(frozen=True)
class MonitorState:
    """What the monitors of val_loss know after the epochs replayed."""

    best: float  # lowest val_loss (ModelCheckpoint and EarlyStopping)
    best_epoch: int  # its epoch, -1 before any
    stop_wait: int  # EarlyStopping: epochs since the best
    plateau_best: float  # ReduceLROnPlateau's best (it needs an improvement of min_delta)
    plateau_wait: int
    lr: float | None  # the learning rate after the last epoch, its plateau cut included


def replay(
    val_losses: Sequence[float],
    lrs: Sequence[float | None],
    lr_factor: float,
    lr_patience: int,
    min_lr: float,
    lr_min_delta: float = 1e-4,
) -> MonitorState:
    """The monitors' state after epochs with these val_losses, run at these learning rates.

    The rules of tf-keras' callbacks as roofseg configures them (mode min, EarlyStopping with
    min_delta 0 and no baseline, ReduceLROnPlateau without cooldown), replayed epoch by epoch.
    A learning rate of None is an epoch whose rate a schedule set (no plateau cut to replay).
    """
    best, best_epoch, stop_wait = math.inf, -1, 0
    p_best, p_wait = math.inf, 0
    lr = None
    for epoch, (value, lr) in enumerate(zip(val_losses, lrs)):
        stop_wait += 1
        if best_epoch < 0:
            best_epoch = epoch
        if value < best:
            best, best_epoch, stop_wait = value, epoch, 0
        if value < p_best - lr_min_delta:
            p_best, p_wait = value, 0
        else:
            p_wait += 1
            if p_wait >= lr_patience and lr is not None and lr > np.float32(min_lr):
                lr = max(lr * lr_factor, min_lr)
                p_wait = 0
    return MonitorState(best, best_epoch, stop_wait, p_best, p_wait, lr)


def read_rows(history_csv: str | os.PathLike, before_epoch: int | None = None) -> list[dict[str, float]]:
    """The rows of a CSVLogger file (as floats), those of epochs before ``before_epoch`` only if given."""
    try:
        with open(history_csv, newline="") as f:
            # NA: a value Keras had not (the validation columns of a run without a validation split)
            rows = [{k: float(v) for k, v in r.items() if v not in (None, "", "NA")} for r in csv.DictReader(f)]
    except FileNotFoundError:
        return []
    return [r for r in rows if before_epoch is None or r.get("epoch", math.inf) < before_epoch]


def drop_rows_from(history_csv: str | os.PathLike, epoch: int) -> None:
    """Cut the file after the rows of epochs before ``epoch``: those the backup does not hold are run again."""
    try:
        with open(history_csv, "r+", newline="") as f:
            header = f.readline()
            keep = len(header.encode())
            names = next(csv.reader([header]), [])
            if "epoch" not in names:
                return
            col = names.index("epoch")
            for line in iter(f.readline, ""):
                values = next(csv.reader([line]), [])
                if len(values) <= col or float(values[col]) >= epoch:
                    break
                keep += len(line.encode())
            f.truncate(keep)
    except FileNotFoundError:
        pass


class ResumeMonitors(keras.callbacks.Callback):
    """At the first epoch of a ``fit``, gives the monitors the state the run's earlier epochs left.

    Put it after the callbacks it restores. ``best_weights`` (the weights of ``best.keras``)
    lets EarlyStopping restore the best epoch even if it came before the resume.
    """

    def __init__(
        self, history_csv: str | os.PathLike, checkpoint, early_stopping, plateau, best_weights=None, monitor="val_loss"
    ):
        super().__init__()
        self.history_csv, self.best_weights, self.monitor = history_csv, best_weights, monitor
        self.checkpoint, self.early_stopping, self.plateau = checkpoint, early_stopping, plateau
        self.restored: MonitorState | None = None
        self._first = True

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if not self._first:
            return
        self._first = False
        # no "lr" column where a schedule sets the rate (only ReduceLROnPlateau logs it): the best
        # epoch is still to be remembered, there is just no plateau cut to replay
        rows = [r for r in read_rows(self.history_csv, epoch) if self.monitor in r]
        if not rows:
            return
        p = self.plateau
        state = replay(
            [r[self.monitor] for r in rows], [r.get("lr") for r in rows], p.factor, p.patience, p.min_lr, p.min_delta
        )
        self.checkpoint.best = state.best
        es = self.early_stopping
        es.best, es.best_epoch, es.wait = state.best, state.best_epoch, state.stop_wait
        if es.restore_best_weights and self.best_weights is not None:
            es.best_weights = self.best_weights
        p.best, p.wait, p.cooldown_counter = state.plateau_best, state.plateau_wait, 0
        if state.lr is not None:
            keras.backend.set_value(self.model.optimizer.lr, state.lr)
        self.restored = state


class ResumableCSVLogger(keras.callbacks.CSVLogger):
    """CSVLogger (append mode) that first drops the rows of epochs about to be run again.

    A run killed after logging an epoch but before backing it up runs that epoch again; the
    file is opened at the first epoch, when fit knows where it resumes.
    """

    def __init__(self, filename: str, truncate: bool = True):
        super().__init__(filename, append=True)
        self.truncate = truncate
        self._opened = False

    def on_train_begin(self, logs=None) -> None:
        self._opened = False

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if not self._opened:
            if self.truncate:
                drop_rows_from(self.filename, epoch)
            super().on_train_begin(logs)
            self._opened = True
