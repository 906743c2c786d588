"""Regular outlines on real buildings (run by hand): `python bench/outlines.py [--data ../shared/data]`.

The HOT/OpenAerialMap scenes' OSM footprints are burnt at each scene's own pixel size and traced
back, as a perfect prediction would be; then regularized. Printed: the IoU of each outline with
its OSM polygon, vertex counts, and the area the regularization changed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize, shapes
from rasterio.warp import transform_geom
from shapely.geometry import shape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roofseg.prediction.vector.regularize import regularize  # noqa: E402
from roofseg.prediction.vector.vectorize import valid_polygonal  # noqa: E402


def vertices(geom) -> int:
    return sum(len(p.exterior.coords) - 1 for p in getattr(geom, "geoms", [geom]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    labels_files = sorted((args.data / "hotosm-ramp-sample" / "scenes").glob("*_labels_3857.geojson"))
    if not labels_files:
        raise SystemExit(f"{args.data}: no HOT scenes with footprints")
    rows = []
    for labels in labels_files:
        with rasterio.open(str(labels).replace("_labels_3857.geojson", "_image.tif")) as ds:
            t, crs, h, w = ds.transform, ds.crs, ds.height, ds.width
        feats = json.loads(labels.read_text())["features"]
        truth = [
            valid_polygonal(shape(transform_geom("EPSG:3857", crs, f["geometry"]))) for f in feats if f.get("geometry")
        ]
        truth = [g for g in truth if not g.is_empty]
        grid = rasterize([(g, i + 1) for i, g in enumerate(truth)], out_shape=(h, w), transform=t, dtype="int32")
        pixel = math.hypot(t.a, t.d)
        for geom, v in shapes(grid, mask=grid > 0, connectivity=4, transform=t):
            traced, true = valid_polygonal(shape(geom)), truth[int(v) - 1]
            if traced.is_empty or true.area < 20 * pixel * pixel:
                continue
            regular = regularize(traced, pixel)

            def iou(g):
                return g.intersection(true).area / g.union(true).area

            rows.append(
                (
                    iou(traced),
                    iou(regular),
                    vertices(traced),
                    vertices(regular),
                    vertices(true),
                    abs(regular.area - traced.area) / traced.area,
                    regular.is_valid,
                )
            )
    a = np.array(rows, float)
    print(f"{len(a)} OSM buildings of {len(labels_files)} scenes")
    print(f"  IoU with OSM: traced {a[:, 0].mean():.3f}, regularized {a[:, 1].mean():.3f}")
    print(
        f"  vertices (median): traced {np.median(a[:, 2]):.0f}, regularized {np.median(a[:, 3]):.0f}, OSM "
        f"{np.median(a[:, 4]):.0f}"
    )
    print(
        f"  area changed by regularizing: median {np.median(a[:, 5]) * 100:.2f} %, max {a[:, 5].max() * 100:.2f} %;"
        f" all valid: {bool(a[:, 6].all())}"
    )


if __name__ == "__main__":
    main()
