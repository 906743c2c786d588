"""A model made small enough to ship inside roofseg: float16 weights in its ``.keras`` file, and
back to float32 on first use (TensorFlow's variables are float32; half the bytes, the same
predictions to about 1e-3)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from roofseg.atomic import file_sha256, temp_path
from roofseg.contracts.card import ModelCard, Tuning, lineage_of, read_card, write_model
from roofseg.contracts.provenance import TrainedOn
from roofseg.errors import RoofsegError

WEIGHTS = "model.weights.h5"
FLOAT16_MAX = float(np.finfo(np.float16).max)


def _convert(src: str, dst: str, dtype) -> None:
    """Copy the HDF5 weights ``src`` to ``dst`` with every floating-point dataset cast to ``dtype``."""
    with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
        for key, value in s.attrs.items():
            d.attrs[key] = value

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                group = d.require_group(name)
                for key, value in obj.attrs.items():
                    group.attrs[key] = value
            elif isinstance(obj, h5py.Dataset):
                data = obj[()]
                # values beyond float16's range (a metric's pixel counts) stay as they are
                if (
                    isinstance(data, np.ndarray)
                    and data.dtype.kind == "f"
                    and np.abs(data).max(initial=0) < FLOAT16_MAX
                ):
                    data = data.astype(dtype)
                out = d.create_dataset(name, data=data)
                for key, value in obj.attrs.items():
                    out.attrs[key] = value

        s.visititems(visit)


def _rewrite(src: str | os.PathLike, dst: str | os.PathLike, dtype, compression: int) -> None:
    # the scratch folder (the weights, ~100 MB) beside ``dst``, named with the process id like every
    # temporary of roofseg's: the next run removes what a killed one left (a TMPDIR folder stayed for good)
    scratch = temp_path(Path(dst).with_name(Path(dst).name + ".scratch"))
    scratch.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack, zipfile.ZipFile(src) as zin:
        stack.callback(shutil.rmtree, scratch, True)
        tmp = str(scratch)
        weights = zin.extract(WEIGHTS, tmp)
        converted = os.path.join(tmp, "converted.h5")
        _convert(weights, converted, dtype)
        with zipfile.ZipFile(dst, "w", compression) as zout:
            for info in zin.infolist():
                if info.filename == WEIGHTS:
                    zout.write(converted, WEIGHTS)
                else:
                    zout.writestr(info.filename, zin.read(info))


def shrink(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Write the ``.keras`` model ``src`` to ``dst`` with float16 weights (the caller renames it)."""
    _rewrite(src, dst, np.float16, zipfile.ZIP_DEFLATED)


EXPANDED_FROM = "roofseg-expanded-from.json"  # inside an expansion: the shipped file it was made from


def expand(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Write a shrunk model ``src`` to ``dst`` with float32 weights again, as Keras loads them,
    naming ``src`` inside (:func:`expanded_from`)."""
    _rewrite(src, dst, np.float32, zipfile.ZIP_STORED)
    origin = {"file": os.path.basename(src), "sha256": file_sha256(src)}
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr(EXPANDED_FROM, json.dumps(origin))


def expanded_from(path: str | os.PathLike) -> tuple[str, str] | None:
    """The file name and SHA-256 of the shipped model ``path`` was expanded from, or None (not an
    expansion). A model started from an expansion records that file: the expansion's own bytes
    differ from one expansion to the next, so its digest could be checked nowhere else."""
    try:
        with zipfile.ZipFile(path) as zf:
            origin = json.loads(zf.read(EXPANDED_FROM))
        return str(origin["file"]), str(origin["sha256"])
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None


def _tuning_of(source: str | os.PathLike, card: ModelCard) -> Tuning:
    """The choice ``source`` was tuned to, for a model of ``card``; a RoofsegError naming ``source``
    where it has none, or where its output is not the model's (a cut of other borders means nothing)."""
    theirs = read_card(source)
    if theirs is None or theirs.postprocess is None:
        raise RoofsegError(source, "was never tuned (roofseg tune): it has no post-processing to keep")
    if not theirs.tuning_fits(card.has_contact, card.contact_kind):
        raise RoofsegError(
            source,
            "learnt other outputs than the model (or borders of another kind, cut at a value): "
            "its post-processing does not fit it",
        )
    return theirs.postprocess.continued()


def file_mb(path: str | os.PathLike) -> float:
    return os.path.getsize(path) / 1e6


MAX_SHIPPED_MB = 50.0  # the most a model kept inside the package may weigh


def ship(
    model: str | os.PathLike,
    out: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    notes=None,
    postprocess_of: str | os.PathLike | None = None,
) -> ModelCard:
    """Write ``model`` as a model to ship: float16 weights, its card completed with the colour
    reference of ``manifest``'s training tiles (where the card lacks one), ``notes`` (the
    measured figures, a dict kept as ``trained_on.measured``) and the post-processing the model
    ``postprocess_of`` was tuned to (:meth:`Tuning.continued`: a continuation of a tuned base keeps
    its choice). Returns the card written. A file over :data:`MAX_SHIPPED_MB` is refused."""
    # here, not at the top: TensorFlow only where a reference must be read from tiles
    from roofseg.training.model import check_archive
    from roofseg.training.reference import tiles_reference

    card = read_card(check_archive(model))
    if card is None:
        raise RoofsegError(model, "has no roofseg model card: ship a best.keras of roofseg train")
    changes = {}
    if card.colour_reference is None and manifest is not None:
        changes["colour_reference"] = tiles_reference(manifest)
    if notes:
        changes["trained_on"] = replace(card.trained_on or TrainedOn(), measured=notes)
    if postprocess_of is not None:
        changes["postprocess"] = _tuning_of(postprocess_of, card)
    if card.base is not None:  # one generation of cards (a run of before lineage_of kept them all)
        changes["base"] = lineage_of(card.base.file, card.base.sha256, card.base.card)
    card = replace(card, **changes)
    out = Path(out)

    def small_enough(tmp: Path) -> None:
        size = file_mb(tmp)
        if size > MAX_SHIPPED_MB:
            raise RoofsegError(out, f"would weigh {size:.3g} MB, more than the {MAX_SHIPPED_MB:g} MB allowed to ship")

    write_model(out, card, lambda tmp: shrink(model, tmp), small_enough)
    return card
