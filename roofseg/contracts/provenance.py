"""What a model card says of where a model came from, as typed records: what it learnt from
(:class:`TrainedOn`, with its :class:`Ledger`), the colours of its training tiles
(:class:`ColourReference`), what ``roofseg adapt`` did (:class:`Adaptation`) and the scores of
``roofseg tune``'s choice (:class:`TuneScores`).

Format history (the card's, see :mod:`roofseg.contracts.card`):

- card 1–2: none of these (``None``).
- card 3: ``trained_on`` (scenes, tiles, gsd_m, steps, augment, licence; ``measured`` once
  ``ship-base --measured`` added figures), ``colour_reference`` (levels, quantiles, tiles, pixels),
  ``adaptation`` (method, dropped_tuning, input, input_sha256, scenes, settings, bn_batches,
  pseudo_labels), ``postprocess.scores`` (pixel_iou, object_f1, matched, predicted, true).
- card 4: ``trained_on.ledger`` (earlier: this run's steps alone, see :func:`ledger_of`) and
  ``trained_on.reviews`` (the review stores it learnt from; earlier: none).

Every key may be missing from an older card: each record's ``from_dict`` sets its default here and
nowhere else; keys it does not know (a newer minor release's) are kept as they are in ``extra``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _known(cls) -> set[str]:
    return {f.name for f in fields(cls)} - {"extra"}


def _extra(cls, data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in _known(cls)}


@dataclass(frozen=True)
class Ledger:
    """The training a model's weights have had in all, summed over the runs that continued each
    other (``train --init-from``): steps, tiles drawn (steps × global batch), CPU-hours of the
    training processes, the tiles each place gave, and one line per run."""

    steps: int = 0
    tiles_seen: int = 0
    cpu_hours: float = 0.0
    places: dict[str, int] = field(default_factory=dict)  # training tiles each place (and GSD) gave
    runs: tuple[dict, ...] = ()  # per run: steps, global batch, cpu_hours, precision, cpu flags, date

    def to_dict(self) -> dict:
        return {**asdict(self), "runs": [dict(r) for r in self.runs]}

    @classmethod
    def from_dict(cls, data: dict | None) -> Ledger:
        if not data:
            return cls()
        return cls(
            int(data.get("steps", 0)),
            int(data.get("tiles_seen", 0)),
            float(data.get("cpu_hours", 0.0)),
            {str(k): int(v) for k, v in (data.get("places") or {}).items()},
            tuple(dict(r) for r in data.get("runs") or ()),
        )

    def then(self, run: dict, places: dict[str, int]) -> Ledger:
        """This ledger followed by one more run (its steps, global batch and CPU-hours)."""
        merged = dict(self.places)
        for place, tiles in places.items():
            merged[place] = max(merged.get(place, 0), tiles)
        return Ledger(
            self.steps + int(run["steps"]),
            self.tiles_seen + int(run["steps"]) * int(run["global_batch"]),
            round(self.cpu_hours + float(run["cpu_hours"]), 3),
            merged,
            (*self.runs, run),
        )


@dataclass(frozen=True)
class TrainedOn:
    """What a model learnt from: the training scenes (jobs), tiles and GSDs, the steps of its run,
    the augmentation and the data's licence; the ledger of every run behind the weights; the review
    stores it learnt from; figures ``ship-base --measured`` added."""

    scenes: tuple[str, ...] = ()
    tiles: int = 0
    gsd_m: tuple[float, ...] = ()
    steps: int = 0  # this run's steps (set at each checkpoint)
    augment: dict | None = None  # the AugmentConfig, as roofseg.contracts.augment writes it
    licence: str | None = None
    ledger: Ledger | None = None  # None: a card of before ledgers (see ledger_of)
    reviews: tuple[dict, ...] = ()  # per review: scene, store, sha256, accept, reject, skip
    measured: dict | None = None  # free-form figures of whoever shipped it
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        out = {
            "scenes": list(self.scenes),
            "tiles": self.tiles,
            "gsd_m": list(self.gsd_m),
            "steps": self.steps,
            "augment": self.augment,
            "licence": self.licence,
        }
        if self.ledger is not None:
            out["ledger"] = self.ledger.to_dict()
        if self.reviews:
            out["reviews"] = [dict(r) for r in self.reviews]
        if self.measured is not None:
            out["measured"] = self.measured
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainedOn | None:
        if data is None:
            return None
        return cls(
            tuple(str(s) for s in data.get("scenes") or ()),
            int(data.get("tiles") or 0),
            tuple(float(g) for g in data.get("gsd_m") or ()),
            int(data.get("steps") or 0),
            data.get("augment"),
            data.get("licence"),
            Ledger.from_dict(data["ledger"]) if data.get("ledger") else None,
            tuple(dict(r) for r in data.get("reviews") or ()),
            data.get("measured"),
            _extra(cls, data),
        )


@dataclass(frozen=True)
class ColourReference:
    """The band quantiles of a model's training tiles, which ``--match-colours`` matches scenes
    to: ``quantiles[band][level]`` at ``levels`` evenly spaced levels, from ``tiles`` tiles and
    ``pixels`` valid pixels."""

    quantiles: tuple[tuple[float, ...], ...]
    levels: int = 0
    tiles: int = 0
    pixels: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {
            "levels": self.levels or (len(self.quantiles[0]) if self.quantiles else 0),
            "quantiles": [list(q) for q in self.quantiles],
            "tiles": self.tiles,
            "pixels": self.pixels,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ColourReference | None:
        if not data:
            return None
        quantiles = tuple(tuple(float(v) for v in band) for band in data["quantiles"])
        return cls(
            quantiles,
            int(data.get("levels") or (len(quantiles[0]) if quantiles else 0)),
            int(data.get("tiles") or 0),
            int(data.get("pixels") or 0),
            _extra(cls, data),
        )


@dataclass(frozen=True)
class Adaptation:
    """What ``roofseg adapt`` did to a model: the methods, whether tune's choice was dropped, the
    input model (file name, SHA-256), the windows each scene gave, the settings (AdaptConfig as a
    dict), and the work done (batch-norm batches, the pseudo-labels' shares)."""

    method: str
    dropped_tuning: bool = False
    input: str | None = None
    input_sha256: str | None = None
    scenes: tuple[dict, ...] = ()  # per scene: name, tiles
    settings: dict = field(default_factory=dict)
    bn_batches: int | None = None
    pseudo_labels: dict | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def match_colours(self) -> bool:
        """Whether the scenes' colours were matched to the card's reference (predict must too)."""
        return bool(self.settings.get("match_colours"))

    @property
    def windows(self) -> int:
        return sum(int(s.get("tiles", 0)) for s in self.scenes)

    def to_dict(self) -> dict:
        out = {
            "method": self.method,
            "dropped_tuning": self.dropped_tuning,
            "input_sha256": self.input_sha256,
            "input": self.input,
            "scenes": [dict(s) for s in self.scenes],
            "settings": self.settings,
        }
        if self.bn_batches is not None:
            out["bn_batches"] = self.bn_batches
        if self.pseudo_labels is not None:
            out["pseudo_labels"] = self.pseudo_labels
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict | None) -> Adaptation | None:
        if data is None:
            return None
        return cls(
            str(data.get("method") or ""),
            bool(data.get("dropped_tuning", False)),
            data.get("input"),
            data.get("input_sha256"),
            tuple(dict(s) for s in data.get("scenes") or ()),
            dict(data.get("settings") or {}),
            int(data["bn_batches"]) if data.get("bn_batches") is not None else None,
            data.get("pseudo_labels"),
            _extra(cls, data),
        )


@dataclass(frozen=True)
class TuneScores:
    """The pooled scores of a post-processing on tune's scenes: pixel IoU, object F1, and the
    buildings matched (IoU >= 0.5), predicted and true."""

    pixel_iou: float = 0.0
    object_f1: float = 0.0
    matched: int = 0
    predicted: int = 0
    true: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "extra"}, **self.extra}

    @classmethod
    def from_dict(cls, data: dict | None) -> TuneScores | None:
        if data is None:
            return None
        return cls(
            float(data.get("pixel_iou") or 0.0),
            float(data.get("object_f1") or 0.0),
            int(data.get("matched") or 0),
            int(data.get("predicted") or 0),
            int(data.get("true") or 0),
            _extra(cls, data),
        )
