"""Starting a run from a building model (``train --init-from BASE.keras``): checking that BASE
fits the tiles, carrying its weights over, and recording where the new model came from.

A model moved to a new city loses much of its accuracy; fine-tuning it on a few hundred local
tiles wins most of it back (HOT's fAIr does exactly this). BASE must have been trained on the
same kind of imagery as the tiles: same bands and scaling rule, and a GSD within 25 %.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from roofseg.errors import RoofsegError

GSD_TOLERANCE = 0.25
HEAD = "final_conv"  # segmentation-models' last convolution: one filter per output channel


@dataclass(frozen=True)
class Base:
    """A building model to start from: its file, digest and card."""

    path: str
    sha256: str
    card: dict | None

    @property
    def lineage(self) -> dict:
        """What the new model's card says of where it came from."""
        return {"file": os.path.basename(self.path), "sha256": self.sha256, "card": self.card}


def read_base(path: str | os.PathLike) -> Base:
    """``path`` as a base model, or a RoofsegError saying why it is not one."""
    from roofseg.training.model import model_digest, read_model_card

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RoofsegError(path, "no such model file (--init-from)")
    return Base(path, model_digest(path), read_model_card(path))


def check_base(base: Base, manifest: dict, manifest_path: str, tile_gsd: float | None) -> None:
    """Refuse a base trained on other imagery than the tiles: other bands or scaling rule, or a GSD
    more than 25 % off ``tile_gsd`` (the GSD the new model will see), naming the command that retiles."""
    from roofseg.raster.scaling import SCALING_RULE

    card = base.card
    if not card:
        return  # a model from elsewhere: nothing to check it by
    bands = sorted({tuple(j["bands"]) for j in manifest.get("jobs", []) if j.get("bands")})
    if card.get("bands") and bands and [list(b) for b in bands] != card["bands"]:
        raise RoofsegError(base.path, f"was trained on bands {card['bands']}, the tiles have {[list(b) for b in bands]}; "
                                      "tile the scenes with the base's --bands")
    if card.get("scaling") and card["scaling"] != SCALING_RULE:
        raise RoofsegError(base.path, f"was trained on imagery scaled by another rule ({card['scaling']})")
    gsd = card.get("gsd_m")
    if gsd and tile_gsd and abs(tile_gsd / gsd - 1) > GSD_TOLERANCE:
        raise RoofsegError(base.path, f"was trained at {gsd:.3g} m, the tiles are {tile_gsd:.3g} m: roofs would look "
                                      f"{tile_gsd / gsd:.2g}x their trained size to it; retile at its GSD: roofseg tile "
                                      f"SCENES... -o TILES --gsd {gsd:.3g} (the tiles now: {manifest_path})")


def transfer_weights(base, model) -> list[str]:
    """Set every weight of ``model`` from the layer of the same name in ``base`` (two roofseg
    U-Nets). Where the heads differ in channels (contact or not), the channels both have are
    carried over and a new one keeps its fresh start. Returns what was said of the heads."""
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
            raise RoofsegError(None, f"--init-from: layer {layer.name} has other shapes in the base model "
                                     "(not a roofseg ResNet34 U-Net)")
        channels = min(new[0].shape[-1], old[0].shape[-1])
        layer.set_weights([np.concatenate([o[..., :channels], n[..., channels:]], axis=-1) for n, o in zip(new, old)])
        said.append(f"the base model has {old[0].shape[-1]} output channel(s), the tiles call for {new[0].shape[-1]}: "
                    + ("a new contact head starts fresh" if new[0].shape[-1] > channels else "its contact head is dropped"))
    if missing:
        raise RoofsegError(None, f"--init-from: the base model has no layer {missing[0]} (not a roofseg ResNet34 U-Net)")
    return said


def tile_gsd(manifest: dict, size: int) -> float | None:
    """The ground pixel size a model whose input is ``size`` px sees of the manifest's tiles."""
    gsd, tiles = manifest.get("gsd_m"), manifest.get("tile_size")
    if not gsd:
        return None
    return gsd * tiles / size if tiles and size != tiles else gsd
