"""Helpers shared by several test modules (importable as ``helpers``: tests/ is on pytest's path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import box, mapping

from roofseg.contracts.card import ModelCard, read_card, write_card
from roofseg.tiler.run import tile

from conftest import write_geojson, write_tif


def read_card_dict(path) -> dict | None:
    """A model's card in its JSON form, or None: what the tests assert on."""
    card = read_card(path)
    return card.to_dict() if card else None


def write_card_dict(path, data: dict) -> None:
    """Store a card given in its JSON form (as an earlier release wrote it) in the model at ``path``."""
    write_card(path, ModelCard.from_dict(data, path))


def tile_dict(*args, **kwargs) -> dict:
    """``roofseg.tiler.run.tile``, its manifest in the JSON form that manifest.json holds."""
    return tile(*args, **kwargs).to_dict()


ROOT = Path(__file__).resolve().parents[1]  # the repository


def scenes_in(folder: Path, n: int, size: int = 96) -> list[Path]:
    """``n`` noise scenes side by side (each 20 px right of the last, so they overlap), nodata on the left."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        data = rng.integers(1, 255, (3, size, size + 7 * i), dtype=np.uint8)
        data[:, :, :5] = 0
        paths.append(
            write_tif(folder / f"scene{i}.tif", data, Affine(0.5, 0, 500_000 + 10 * i, 0, -0.5, 5_000_000), nodata=0)
        )
    return paths


def red(batch: np.ndarray) -> np.ndarray:
    return batch[..., :1]


def tiny_keras(seed: int = 0):
    from roofseg._tf import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    return keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x))


def mean_model():
    from roofseg._tf import keras

    """An identity-like model: the mean of the three channels, pixel by pixel."""
    inp = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(1 / 3))(inp)
    return keras.Model(inp, out)


class RoofAndContact:
    """A model that costs nothing: roof where red is bright, contact where green is."""

    takes_uint8 = True
    channels = 2

    def __call__(self, batch):
        return (batch[..., :2] > 127).astype(np.float32)


def roofs_scene(tmp_path, h=200, w=240, transform=Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000), nodata_cols=0):
    """A scene whose first band is 255 exactly on its roofs (so first_channel predicts them perfectly)."""
    rng = np.random.default_rng(1)
    roofs = [
        box(*(transform @ (c, r + 12)), *(transform @ (c + 20, r)))
        for r in range(10, h - 20, 30)
        for c in range(10, w - 25, 35)
    ]
    mask = rasterize([(mapping(p), 1) for p in roofs], out_shape=(h, w), transform=transform, dtype="uint8")
    data = np.stack([mask * 255, rng.integers(1, 255, (h, w)), rng.integers(1, 255, (h, w))]).astype(np.uint8)
    if nodata_cols:
        data[:, :, :nodata_cols] = 0
    scene = write_tif(tmp_path / "scene.tif", data, transform=transform, nodata=0 if nodata_cols else None)
    return scene, roofs, mask


def blank_keras():
    """A Keras model that finds no roof anywhere (probability 0.00005): for commands whose test is
    not about what the model finds, at the cost of nothing."""
    from roofseg._tf import keras

    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inp, conv(inp))
    conv.set_weights([np.zeros((1, 1, 3, 1)), np.array([-10.0])])
    return model


def review_pair(tmp_path, boxes, confidences) -> tuple[Path, Path]:
    """A 256 px random scene (0.5 m, UTM 33N) and the footprints ``boxes`` (shapely, in its CRS) with
    their ``confidences``, as predict writes them (GeoPackage: id, area_m2, confidence)."""
    import fiona

    rng = np.random.default_rng(0)
    scene = write_tif(tmp_path / "city.tif", rng.integers(30, 220, (3, 256, 256), dtype=np.uint8))
    schema = {"geometry": "Polygon", "properties": {"id": "int", "area_m2": "float", "confidence": "float"}}
    path = tmp_path / "city.gpkg"
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:32633", SPATIAL_INDEX="NO") as dst:
        for i, (b, c) in enumerate(zip(boxes, confidences), 1):
            dst.write({"geometry": mapping(b), "properties": {"id": i, "area_m2": b.area, "confidence": c}})
    return scene, path


def houses_block(tmp_path, width: int = 128, houses: int = 7) -> tuple[Path, Path]:
    """A random 128 px high block (0.5 m, UTM 33N) and a row of ``houses`` narrow footprints on it:
    a mapper's small labelled block, as (block.tif, block.geojson)."""
    rng = np.random.default_rng(0)
    scene = write_tif(tmp_path / "block.tif", rng.integers(30, 220, (3, 128, width), dtype=np.uint8))
    x0, y0 = 500_000, 5_000_000
    labels = write_geojson(
        tmp_path / "block.geojson", [box(x0 + 8 * k + 2, y0 - 50, x0 + 8 * k + 7, y0 - 10) for k in range(houses)]
    )
    return scene, labels
