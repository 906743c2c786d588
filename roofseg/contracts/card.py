"""The model card: how a model was trained and how to feed it, stored inside its ``.keras`` file
(``roofseg.json``), so copying the file is enough to know how to use the model.

Format history:

- ``roofseg-model/1``: gsd_m, tile_size, bands, scaling, input, outputs, contact_px, base, and
  ``postprocess`` once ``roofseg tune`` chose one. Every key may be missing.
- ``roofseg-model/2``: the same keys, always written; ``roofseg``, the release that made the model;
  ``dtypes``, the scenes' data types (an earlier card's: unknown, empty).
- ``roofseg-model/3``: ``gsd_range_m``, the ground pixel sizes the training tiles spanned (an
  earlier card's: its gsd_m alone); ``precision``, the arithmetic it was trained in (earlier:
  float32); ``trained_on``, what it learnt from (scenes, GSDs, tiles, steps, licences; earlier:
  unknown); ``colour_reference``, the training tiles' band quantiles that ``--match-colours``
  matches scenes to; ``adaptation``, what ``roofseg adapt`` did to it.
- ``roofseg-model/4``: ``contact_kind``, what the border output learnt (``outline``: every building's
  edge band and where buildings meet; ``between``: where they meet only, the kind of every earlier
  card with a contact output); ``trained_on.ledger``, the training the weights have had in all, across
  the runs that continued each other (see :class:`Ledger`; earlier: this run's ``steps`` only);
  ``trained_on.reviews``, the review stores it learnt from.
- ``roofseg-model/5``: ``postprocess.seed_depth``, touching buildings seeded at the peaks of
  roof × (1 − contact) that deep (see :mod:`roofseg.prediction.vector.instances`); absent or None:
  at the cores below ``contact_cut``, the rule of every earlier card. A release before it would
  seed such a card's buildings at cores, so it refuses the card as newer. ``postprocess.from_base``:
  the choice came with the base the model was fine-tuned from (``train --init-from``), not from
  ``tune`` on the model itself (earlier: False).
- ``roofseg-model/6``: ``postprocess.max_gsd``, the coarsest ground pixel size predict reads a scene
  at (a coarser one resampled to it), which ``tune`` chose between the trained range's coarse end
  and the model's own GSD; absent or None: the trained range's coarse end, the rule of every earlier
  card. ``postprocess.reading_scenes``: the scenes ``tune --reading-only`` chose it on, where they
  are not the choice's ``scenes`` (earlier: none). A release before it would read such a card's
  coarse scenes at their own GSD, so it refuses the card as newer. ``contact_m``: the border
  target's width in metres where the tiles drew it so (``tile --contact-m``; then ``contact_px`` is
  None), a record of training only: an earlier release keeps it as an unknown key and predicts the same.

``trained_on``, ``colour_reference``, ``adaptation`` and ``postprocess.scores`` are typed records
(:mod:`roofseg.contracts.provenance`, with their own history).

Defaults for what an older card lacks are set here and nowhere else.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from roofseg import __version__
from roofseg.atomic import temp_path
from roofseg.contracts.provenance import Adaptation, ColourReference, Ledger, TrainedOn, TuneScores
from roofseg.contracts.sizes import DEFAULT_TILE_SIZE, capped_range
from roofseg.contracts.targets import TARGETS
from roofseg.contracts.versions import stamp, version_of
from roofseg.errors import RoofsegError

NAME = "roofseg-model"
VERSION = 6
CARD_FILE = "roofseg.json"  # the card's name inside the .keras zip archive
INPUT = "RGB uint8 windows, scaled to [0, 1] (x / 255) in the model's graph"


#: m²: a building smaller than this is dropped from footprints where nothing else is said (predict,
#: evaluate-scene, tune's starting point); the one default of it
MIN_AREA = 5.0


@dataclass(frozen=True)
class PostProcess:
    """What turns a probability raster into buildings (``roofseg tune`` chooses it)."""

    threshold: float = 0.5
    contact_cut: float | None = 0.5  # None: the model has no contact output
    min_area: float = MIN_AREA
    regularize: bool = False
    # touching buildings seeded at peaks of roof x (1 - contact) this deep; None: at the cores below contact_cut
    seed_depth: float | None = None


@dataclass(frozen=True)
class Tuning:
    """``roofseg tune``'s choice, as its card records it: the post-processing and how it was chosen."""

    choice: PostProcess
    objective: str | None = None
    scores: TuneScores | None = None  # the pooled scores of the choice
    scenes: tuple[str, ...] = ()
    match_colours: bool = False  # the scenes' colours were matched to the card's reference (predict does too)
    from_base: bool = False  # chosen for the base this model was fine-tuned from, until it is tuned itself
    max_gsd: float | None = None  # m: a scene coarser than this is read resampled to it; None: the trained range's end
    reading_scenes: tuple[str, ...] = ()  # where max_gsd was chosen apart from the choice (tune --reading-only)

    def to_dict(self) -> dict:
        return {
            **asdict(self.choice),
            "objective": self.objective,
            "scores": self.scores.to_dict() if self.scores else None,
            "scenes": list(self.scenes),
            "match_colours": self.match_colours,
            "from_base": self.from_base,
            "max_gsd": self.max_gsd,
            "reading_scenes": list(self.reading_scenes),
        }

    def inherited(self) -> Tuning:
        """This choice as a model fine-tuned from this one starts with: the post-processing alone
        (its scores and scenes were the base's; it reads scenes over its own trained range)."""
        # not max_gsd: it was chosen around the base's own GSD, and a fine-tune has learnt at its tiles' GSD
        return Tuning(self.choice, self.objective, match_colours=self.match_colours, from_base=True)

    def continued(self) -> Tuning:
        """This choice as a continuation of the model (the same tiles, more steps) keeps it: the
        whole choice, its reading of coarse scenes too, marked as the base's (not scored on the new
        weights) until the continuation is tuned itself."""
        return replace(self, scores=None, from_base=True)

    @classmethod
    def from_dict(cls, data: dict) -> Tuning:
        choice = PostProcess(
            float(data["threshold"]),
            data.get("contact_cut"),
            float(data["min_area"]),
            bool(data["regularize"]),
            data.get("seed_depth"),  # cards before 2026-12 seeded at cores alone
        )
        return cls(
            choice,
            data.get("objective"),
            TuneScores.from_dict(data.get("scores")),
            tuple(data.get("scenes") or ()),
            bool(data.get("match_colours", False)),
            bool(data.get("from_base", False)),
            float(data["max_gsd"]) if data.get("max_gsd") else None,  # cards before 2026-12: the range's end
            tuple(data.get("reading_scenes") or ()),
        )


@dataclass(frozen=True)
class Lineage:
    """The model a fine-tuned one started from: its file name, SHA-256 and card (as it was stored)."""

    file: str
    sha256: str
    card: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def lineage_of(file: str, sha256: str, card: ModelCard | dict | None) -> Lineage:
    """What a model made from the base ``file`` records of it: its name, digest and card (a
    ModelCard, or a dict as a card stores its base's). Where that card keeps a ledger, the card of
    the base's own base is left out (its name and digest stay): the ledger already holds every run
    behind the weights, and each generation would otherwise carry all the cards before it. A card
    of before ledgers keeps its base's card, which is where :func:`ledger_of` finds the earlier
    runs' steps."""
    if card is None:
        return Lineage(file, sha256, None)
    out = card.to_dict() if isinstance(card, ModelCard) else dict(card)
    if (out.get("trained_on") or {}).get("ledger") and out.get("base"):
        out["base"] = {**out["base"], "card": None}
    return Lineage(file, sha256, out)


def ledger_of(card: ModelCard | dict | None) -> Ledger:
    """The ledger of ``card``. A card of before ledgers counts its run's steps and those of the
    bases its lineage records (each card keeps its base's card), the runs oldest first."""
    if card is None:
        return Ledger()
    if isinstance(card, dict):  # a base's card, as its lineage keeps it
        card = ModelCard.from_dict(card)
    trained = card.trained_on or TrainedOn()
    if trained.ledger is not None:
        return trained.ledger
    before = ledger_of(card.base.card) if card.base and card.base.card else Ledger()
    steps = trained.steps
    if not steps:
        return before
    run = {"steps": steps, "global_batch": 0, "cpu_hours": 0.0, "note": "a run of before ledgers: its steps alone"}
    return Ledger(before.steps + steps, before.tiles_seen, before.cpu_hours, dict(before.places), (*before.runs, run))


@dataclass(frozen=True)
class ModelCard:
    """How a model was trained and is fed (see the module's format history)."""

    gsd_m: float | None = None  # the ground pixel size the model saw in training (None: unknown)
    tile_size: int = DEFAULT_TILE_SIZE  # its input windows' side, px
    bands: tuple[tuple[int, ...], ...] = ()  # the scenes' bands, 1-based, as the tiler picked them
    dtypes: tuple[str, ...] = ()  # the scenes' data types (not uint8: stretched to 8 bits by ``scaling``)
    scaling: str | None = None  # the rule that scaled non-uint8 imagery to uint8 (roofseg.raster.scaling)
    input: str = INPUT
    outputs: tuple[str, ...] = TARGETS[:1]  # what each output channel holds
    contact_px: int | None = None  # the distance contact targets were drawn at
    contact_m: float | None = None  # ... or their width in metres, drawn in each scene's px (tile --contact-m)
    contact_kind: str | None = None  # outline, between or distance (see roofseg.tiler.targets); None: no contact output
    base: Lineage | None = None  # the model it was fine-tuned from
    postprocess: Tuning | None = None  # roofseg tune's choice
    roofseg: str | None = __version__  # the release that made the model (None: before cards said so)
    gsd_range_m: tuple[float, float] | None = None  # the training tiles' GSDs, finest and coarsest
    precision: str = "float32"  # what it was trained in (it is stored, and predicts, in float32)
    trained_on: TrainedOn | None = None  # scenes, GSDs, tiles, steps, ledger, licences of its training data
    colour_reference: ColourReference | None = None  # the training tiles' band quantiles (roofseg.raster.colours)
    adaptation: Adaptation | None = None  # what roofseg adapt did: method, scenes, settings, the input's SHA-256
    extra: dict = field(default_factory=dict, compare=False)  # keys of a newer minor release, kept as they are

    def __post_init__(self):
        # a card with a contact output states what it learnt: before kinds, between (its only kind)
        if self.contact_kind is None and TARGETS[1] in self.outputs:
            object.__setattr__(self, "contact_kind", "between")

    @property
    def has_contact(self) -> bool:
        return TARGETS[1] in self.outputs

    @property
    def gsd_range(self) -> tuple[float, float] | None:
        """The GSDs the model was trained on, finest first (one GSD twice for a model of one)."""
        if self.gsd_range_m:
            return self.gsd_range_m
        return (self.gsd_m, self.gsd_m) if self.gsd_m else None

    @property
    def reading_range(self) -> tuple[float, float] | None:
        """The GSDs predict reads scenes at, finest first: the trained range, its coarse end lowered
        to ``tune``'s ``max_gsd`` where it chose one (a scene outside is read at the nearest end)."""
        span = self.gsd_range
        cap = self.postprocess.max_gsd if self.postprocess else None
        return capped_range(span, cap) if span else None

    def colour_quantiles(self, model: str | os.PathLike | None = None) -> tuple[tuple[float, ...], ...]:
        """The band quantiles ``--match-colours`` matches scenes to, or a RoofsegError naming
        ``model`` that says what to do where the card keeps none (a model of an earlier release)."""
        if not self.colour_reference:
            raise RoofsegError(
                model,
                "its card has no colour reference for --match-colours (a model trained before roofseg kept one); "
                "add it with: roofseg ship-base MODEL OUT.keras --manifest TILES/manifest.json (the tiles it was "
                "trained on), or go without --match-colours",
            )
        return self.colour_reference.quantiles

    def with_tuning(self, tuning: Tuning | None) -> ModelCard:
        return replace(self, postprocess=tuning)

    def tuning_fits(self, has_contact: bool, contact_kind: str | None) -> bool:
        """Whether this card's tuned choice means the same for a model with these outputs: one
        without borders, or with borders where this has none, cannot seed as it did; borders of
        another kind can where it seeds at peaks (a depth of roof x (1 - borders) relative to its
        saddles) but not at a cut of the borders' values."""
        if self.postprocess is None or self.has_contact != has_contact:
            return False
        if has_contact and self.contact_kind != contact_kind:
            # measured: a 1,500-step continuation of the base on graded borders found 212 of Dhaka's
            # buildings with the base's choice (peaks 0.15), 48 with the defaults (cores, coarse scenes read as is)
            return self.postprocess.choice.seed_depth is not None
        return True

    def to_dict(self) -> dict:
        return {
            "format": stamp(NAME, VERSION),
            "gsd_m": self.gsd_m,
            "tile_size": self.tile_size,
            "bands": [list(b) for b in self.bands],
            "dtypes": list(self.dtypes),
            "scaling": self.scaling,
            "input": self.input,
            "outputs": list(self.outputs),
            "contact_px": self.contact_px,
            "contact_m": self.contact_m,
            "contact_kind": self.contact_kind,
            "base": self.base.to_dict() if self.base else None,
            "postprocess": self.postprocess.to_dict() if self.postprocess else None,
            "roofseg": self.roofseg,
            "gsd_range_m": list(self.gsd_range_m) if self.gsd_range_m else None,
            "precision": self.precision,
            "trained_on": self.trained_on.to_dict() if self.trained_on else None,
            "colour_reference": self.colour_reference.to_dict() if self.colour_reference else None,
            "adaptation": self.adaptation.to_dict() if self.adaptation else None,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | os.PathLike | None = None) -> ModelCard:
        """A card from its JSON form, of this release or an earlier one; a RoofsegError naming
        ``path`` for a card of a newer release or of something else."""
        if not isinstance(data, dict):
            raise RoofsegError(path, "its model card is not a JSON object")
        version_of(data.get("format"), NAME, VERSION, path)
        known = {
            "format",
            "gsd_m",
            "tile_size",
            "bands",
            "dtypes",
            "scaling",
            "input",
            "outputs",
            "contact_px",
            "contact_m",
            "contact_kind",
            "base",
            "postprocess",
            "roofseg",
            "gsd_range_m",
            "precision",
            "trained_on",
            "colour_reference",
            "adaptation",
        }
        try:
            base = data.get("base")
            tuned = data.get("postprocess")
            return cls(
                gsd_m=float(data["gsd_m"]) if data.get("gsd_m") else None,
                tile_size=int(data.get("tile_size") or DEFAULT_TILE_SIZE),
                bands=tuple(tuple(int(b) for b in bs) for bs in data.get("bands") or ()),
                dtypes=tuple(str(d) for d in data.get("dtypes") or ()),
                scaling=data.get("scaling"),
                input=data.get("input") or INPUT,
                outputs=tuple(data.get("outputs") or TARGETS[:1]),
                contact_px=data.get("contact_px"),
                contact_m=float(data["contact_m"]) if data.get("contact_m") else None,
                contact_kind=data.get("contact_kind"),
                base=Lineage(base["file"], base["sha256"], base.get("card")) if base else None,
                postprocess=Tuning.from_dict(tuned) if tuned else None,
                roofseg=data.get("roofseg"),
                gsd_range_m=tuple(float(g) for g in data["gsd_range_m"]) if data.get("gsd_range_m") else None,
                precision=data.get("precision") or "float32",
                trained_on=TrainedOn.from_dict(data.get("trained_on")),
                colour_reference=ColourReference.from_dict(data.get("colour_reference")),
                adaptation=Adaptation.from_dict(data.get("adaptation")),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RoofsegError(path, f"its model card is damaged ({type(exc).__name__}: {exc})") from None


def read_card(path: str | os.PathLike) -> ModelCard | None:
    """The card stored in the ``.keras`` file at ``path``, or None (a model from elsewhere, or no
    readable archive: loading the model says what is wrong with it)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if CARD_FILE not in zf.namelist():
                return None
            data = json.loads(zf.read(CARD_FILE))
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return ModelCard.from_dict(data, path)


def write_model(out: str | os.PathLike, card: ModelCard, fill, check=None) -> None:
    """Write a new model file ``out`` with ``card``: ``fill(tmp)`` writes the model under a
    temporary name beside ``out`` (a copy, a save, a shrunk archive), the card is stored in it,
    ``check(tmp)`` may refuse it (a RoofsegError), and only then is it renamed to ``out``: a failed
    or killed write leaves no model under the final name, and no temporary once it fails."""
    tmp = temp_path(out, keep_suffix=True)
    try:
        fill(tmp)
        write_card(tmp, card)
        if check is not None:
            check(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_card(path: str | os.PathLike, card: ModelCard) -> None:
    """Store ``card`` in the ``.keras`` file at ``path``, replacing the card it holds. The caller
    writes ``path`` under a temporary name and renames it when complete."""
    with zipfile.ZipFile(path) as zf:
        has_card = CARD_FILE in zf.namelist()
    if has_card:  # a new card replaces the old one: the archive is written again without it
        rewritten = temp_path(Path(path).with_name(Path(path).name + ".card"))
        try:
            with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, "w") as dst:
                for info in src.infolist():
                    if info.filename != CARD_FILE:
                        dst.writestr(info, src.read(info))
            os.replace(rewritten, path)
        finally:
            rewritten.unlink(missing_ok=True)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(CARD_FILE, json.dumps(card.to_dict(), indent=2))
