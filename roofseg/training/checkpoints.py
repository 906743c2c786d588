"""What a training run writes as it goes: its checkpoints (``best.keras``, the best epoch by the
monitor, and ``last.keras``, the latest epoch), each under a temporary name with the model card and
its ledger, the CPU time the run has used, and the list of callbacks ``fit`` runs with."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from roofseg._tf import keras
from roofseg.atomic import temp_path, write_json
from roofseg.contracts.card import Ledger, ModelCard, ledger_of, write_card
from roofseg.training import resume
from roofseg.training.config import TrainConfig
from roofseg.training.model import drop_optimizer_state
from roofseg.training.precision import cpu_flags


class CpuClock(keras.callbacks.Callback):
    """The CPU time (user + system, every thread) the run has used, across the processes of a
    resumed run: kept in the backup at each epoch's end, so the ledger counts a killed run's too."""

    def __init__(self, path: Path, chief: bool):
        super().__init__()
        self.path, self.chief = path, chief
        self.before = 0.0
        with contextlib.suppress(OSError, ValueError, TypeError):
            self.before = float(json.loads(path.read_text())["cpu_seconds"])
        self.start = self._now()

    @staticmethod
    def _now() -> float:
        t = os.times()
        return t.user + t.system

    def seconds(self) -> float:
        return self.before + self._now() - self.start

    def on_epoch_end(self, epoch, logs=None):
        if self.chief:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"cpu_seconds": self.seconds()})


def run_callbacks(
    cfg: TrainConfig,
    run: Path,
    out: Path,
    phase: str,
    chief: bool,
    extra: list | None,
    best_weights,
    card: ModelCard,
    ledger: dict | None = None,
    monitor: str = "val_loss",
) -> list:
    """The callbacks of one phase of ``fit``: the CPU clock, the checkpoints written to ``out``
    (the run folder, or a worker's scratch folder), the monitors (their memory replayed from
    ``history.csv`` on a resume), the logs, ``extra``, and last the backup a killed run resumes from."""
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr, verbose=1
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, patience=cfg.early_stopping_patience, restore_best_weights=True, verbose=1
    )
    clock = CpuClock(run / "backup" / "cpu.json", chief)
    checkpoint = AtomicCheckpoint(
        str(out / "best.keras"),
        monitor=monitor,
        save_best_only=True,
        verbose=0,
        card=card,
        ledger=ledger,
        clock=clock,
    )
    # the weights at the end of the latest epoch, whether or not they are the best: a long run
    # stopped or finished keeps the weights with the most steps (best.keras is chosen by validation)
    last = AtomicCheckpoint(
        str(out / "last.keras"), monitor=monitor, save_best_only=False, verbose=0, card=card, ledger=ledger, clock=clock
    )
    return [
        clock,
        *([plateau] if cfg.schedule == "plateau" else []),  # a schedule sets the rate itself
        last,  # before EarlyStopping: its stop puts the best epoch's weights back into the model
        stopping,
        checkpoint,
        # after the monitors: it sets their state at the first epoch, once fit knows where it resumes
        resume.ResumeMonitors(run / "history.csv", checkpoint, stopping, plateau, best_weights, monitor),
        resume.ResumableCSVLogger(str(out / "history.csv"), truncate=chief),
        keras.callbacks.TensorBoard(str(out / "logs"), histogram_freq=0, write_graph=False, update_freq="epoch"),
        *(extra or []),
        # last: an epoch is backed up only once it is logged; a kill in between runs it again
        keras.callbacks.BackupAndRestore(str(run / "backup" / phase)),
    ]


class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes under a temporary name and renames: a kill or a full disk while
    saving leaves the file as it was (best.keras, or last.keras), never a truncated one. ``card``
    goes into the file."""

    def __init__(
        self,
        *args,
        card: ModelCard | None = None,
        ledger: dict | None = None,
        clock: CpuClock | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.card = card
        self.ledger = ledger  # the base's ledger, this run's global batch and places (see model_ledger)
        self.clock = clock

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        previous = self.best
        self.filepath = str(temp_path(final, keep_suffix=True))
        try:
            super()._save_model(epoch, batch, logs)
            if os.path.exists(self.filepath):
                drop_optimizer_state(self.filepath)
                if self.card is not None:
                    steps = int(self.model.optimizer.iterations.numpy())
                    trained_on = replace(self.card.trained_on, steps=steps)
                    if self.ledger is not None:
                        cpu = self.clock.seconds() if self.clock else 0.0
                        trained_on = replace(trained_on, ledger=model_ledger(self.ledger, steps, cpu))
                    write_card(self.filepath, replace(self.card, trained_on=trained_on))
                os.replace(self.filepath, final)
                if self.save_best_only:  # said here, with the final name: Keras would name the temporary file
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous:.5f} to {self.best:.5f}, "
                        f"saved {final}"
                    )
            elif self.save_best_only and self.best == previous:
                print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {previous:.5f}")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.filepath)
            self.filepath = final


def ledger_start(manifest, global_batch: int, precision: str, base=None) -> dict:
    """What the ledger of this run's checkpoints is made of: the base's ledger (its card's), this
    run's global batch, precision and CPU, and the training tiles of each place and GSD."""
    places = {g: sum(s.tiles for s in shards) for g, shards in manifest.groups("train").items()}
    flags = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512f")))
    return {
        "base": ledger_of(base.card if base is not None else None).to_dict(),
        "global_batch": global_batch,
        "precision": precision,
        "cpu": {"cores": os.cpu_count(), "flags": flags},
        "places": places,
        "started": time.strftime("%Y-%m-%d"),
    }


def model_ledger(start: dict, steps: int, cpu_seconds: float) -> Ledger:
    """The ledger of a checkpoint ``steps`` into this run: the base's followed by this run."""
    run = {
        "steps": steps,
        "global_batch": start["global_batch"],
        "cpu_hours": round(cpu_seconds / 3600, 3),
        "precision": start["precision"],
        "cpu": start["cpu"],
        "date": start["started"],
    }
    return Ledger.from_dict(start["base"]).then(run, start["places"])
