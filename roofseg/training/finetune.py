"""Starting a run from a building model (``train --init-from BASE.keras``): checking that BASE
fits the tiles, carrying its weights over, and recording where the new model came from.

A model moved to a new city loses much of its accuracy; fine-tuning it on a few hundred local
tiles wins most of it back (HOT's fAIr does exactly this). BASE must have been trained on the
same kind of imagery as the tiles: same bands and scaling rule, and GSDs within 25 % of the range it was trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from roofseg.contracts.card import Lineage, ModelCard, lineage_of, read_card
from roofseg.contracts.manifest import Manifest
from roofseg.contracts.sizes import describe_range, nearest_end, off_range
from roofseg.errors import RoofsegError
from roofseg.raster.scaling import SCALING_RULE
from roofseg.training.model import model_digest
from roofseg.training.shipping import expanded_from

HEAD = "final_conv"  # segmentation-models' last convolution: one filter per output channel


@dataclass(frozen=True)
class Base:
    """A building model to start from: its file, digest and card."""

    path: str
    sha256: str
    card: ModelCard | None
    name: str = ""  # the file it is known by, where not the path's own name

    @property
    def lineage(self) -> Lineage:
        """What the new model's card says of where it came from."""
        return lineage_of(self.name or os.path.basename(self.path), self.sha256, self.card)


def read_base(path: str | os.PathLike) -> Base:
    """``path`` as a base model, or a RoofsegError saying why it is not one."""

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RoofsegError(path, "no such model file (--init-from)")
    if shipped := expanded_from(path):  # the shipped base: known by the file that ships
        name, sha = shipped
        return Base(path, sha, read_card(path), name)
    return Base(path, model_digest(path), read_card(path))


def check_base(
    base: Base, manifest: Manifest, manifest_path: str, tile_gsd: float | None, widen_gsd: bool = False
) -> None:
    """Refuse a base trained on other imagery than the tiles: other bands or scaling rule, or a GSD
    off ``tile_gsd`` (the GSD the new model will see) by more than the tolerance, naming the command
    that retiles. ``widen_gsd``: GSDs beyond the base's range are meant (a base taught new ones)."""
    card = base.card
    if not card:
        return  # a model from elsewhere: nothing to check it by
    bands = manifest.bands
    if card.bands and bands and list(card.bands) != bands:
        raise RoofsegError(
            base.path,
            f"was trained on bands {[list(b) for b in card.bands]}, the tiles have "
            f"{[list(b) for b in bands]}; tile the scenes with the base's --bands",
        )
    if card.scaling and card.scaling != SCALING_RULE:
        raise RoofsegError(base.path, f"was trained on imagery scaled by another rule ({card.scaling})")
    span = card.gsd_range
    if not span or not tile_gsd or widen_gsd:
        return
    # the tiles' own GSDs, as the new model sees them (tiles resized to its input look coarser or finer)
    factor = tile_gsd / manifest.gsd_m if manifest.gsd_m else 1.0
    tiles = [g * factor for g in (manifest.gsd_range or (tile_gsd, tile_gsd))]
    off = [g for g in tiles if off_range(g, span)]
    if off:
        end = nearest_end(off[0], span)
        raise RoofsegError(
            base.path,
            f"was trained at {describe_range(span)}, the tiles are {off[0]:.3g} m: roofs would look "
            f"{off[0] / end:.2g}x their trained size to it; retile within 25% of its range: roofseg tile "
            f"SCENES... -o TILES --gsd {end:.3g} (the tiles now: {manifest_path})",
        )


def transfer_weights(base, model, source: str | None = None) -> list[str]:
    """Set every weight of ``model`` from the layer of the same name in ``base`` (two roofseg
    U-Nets). Where the heads differ in channels (contact or not), the channels both have are
    carried over and a new one keeps its fresh start. Returns what was said of the heads.
    ``source``: the base's file, named in errors."""
    said = []
    base_layers = {layer.name: layer for layer in base.layers}
    missing = []
    for layer in model.layers:
        if not layer.weights:
            continue
        source = base_layers.get(layer.name)
        if source is None:
            missing.append(layer.name)
            continue
        new, old = layer.get_weights(), source.get_weights()
        if [w.shape for w in new] == [w.shape for w in old]:
            layer.set_weights(old)
            continue
        if layer.name != HEAD:
            raise RoofsegError(
                source,
                f"is no base for this model (--init-from): its layer {layer.name} has other shapes (not a "
                "roofseg ResNet34 U-Net)",
            )
        channels = min(new[0].shape[-1], old[0].shape[-1])
        layer.set_weights([np.concatenate([o[..., :channels], n[..., channels:]], axis=-1) for n, o in zip(new, old)])
        said.append(
            f"the base model has {old[0].shape[-1]} output channel(s), the tiles call for {new[0].shape[-1]}: "
            + ("a new contact head starts fresh" if new[0].shape[-1] > channels else "its contact head is dropped")
        )
    if missing:
        raise RoofsegError(
            source,
            f"is no base for this model (--init-from): it has no layer {missing[0]} (not a roofseg ResNet34 U-Net)",
        )
    return said
