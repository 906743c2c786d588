"""Footprints into the map: OSM XML for JOSM, only buildings not yet mapped, OSM extracts as labels."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
import shapely
import shapely.ops
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box, shape

from conftest import write_geojson, write_tif

T = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)


def positive_ids(osm_path, out_path):
    """A copy with ids made positive: GDAL's OSM driver skips the negative ids JOSM files use."""
    text = open(osm_path).read()
    for attr in ("id", "ref"):
        text = text.replace(f'{attr}="-', f'{attr}="')
    open(out_path, "w").write(text)
    return out_path


def osm_of(polygons_utm, path):
    from roofseg.prediction.vector.osm import write_osm

    write_osm(polygons_utm, rasterio.crs.CRS.from_epsg(32633), path)
    return path


def test_osm_output_opens_as_new_data_with_closed_ways_and_a_courtyard_relation(tmp_path):
    from roofseg.prediction.vector.vectorize import write_polygons

    roof = np.zeros((120, 160), np.uint8)
    roof[10:40, 10:50] = 1  # a plain building
    roof[60:110, 70:150] = 1
    roof[75:95, 95:125] = 0  # a building around a courtyard
    write_tif(tmp_path / "binary.tif", roof, transform=T)
    assert write_polygons(tmp_path / "binary.tif", tmp_path / "roofs.osm") == 2
    root = ET.parse(tmp_path / "roofs.osm").getroot()
    assert root.tag == "osm" and root.get("version") == "0.6" and root.get("upload") == "never"
    ids = [int(e.get("id")) for e in root if e.tag in ("node", "way", "relation")]
    assert all(i < 0 for i in ids) and len(set(ids)) == len(ids)
    nodes = {e.get("id"): (float(e.get("lon")), float(e.get("lat"))) for e in root.iter("node")}
    ways = {w.get("id"): w for w in root.iter("way")}
    for w in ways.values():
        refs = [nd.get("ref") for nd in w.iter("nd")]
        assert refs[0] == refs[-1] and len(set(refs)) == len(refs) - 1  # closed on its first node, no node repeated
    tagged = [w for w in ways.values() if w.find("tag") is not None]
    assert len(tagged) == 1 and {t.get("k"): t.get("v") for t in tagged[0].iter("tag")} == {"building": "yes"}
    (relation,) = list(root.iter("relation"))
    assert {t.get("k"): t.get("v") for t in relation.iter("tag")} == {"type": "multipolygon", "building": "yes"}
    assert sorted(m.get("role") for m in relation.iter("member")) == ["inner", "outer"]
    # the plain building's corners, back in UTM, are the raster's
    to_utm = Transformer.from_crs(4326, 32633, always_xy=True)
    ring = [to_utm.transform(*nodes[nd.get("ref")]) for nd in tagged[0].iter("nd")]
    left, top = T @ (10, 10)
    assert Polygon(ring).symmetric_difference(box(left, top - 15, left + 20, top)).area < 0.5  # 1e-7° ≈ 1 cm nodes
    # GDAL's OSM driver reads it (ids made positive: it skips negative ones) as two buildings
    import fiona

    fiona.drvsupport.supported_drivers["OSM"] = "r"
    with fiona.open(
        positive_ids(tmp_path / "roofs.osm", tmp_path / "positive.osm"), driver="OSM", layer="multipolygons"
    ) as src:
        found = [shape(f.geometry) for f in src if f.properties["building"] == "yes"]
    assert len(found) == 2 and sum(len(g.interiors) for p in found for g in getattr(p, "geoms", [p])) == 1


@pytest.mark.parametrize("form", ["geojson", "osm"])
def test_only_buildings_not_yet_mapped_come_out(sample_scene, tmp_path, form):
    from roofseg.prediction.vector.existing import ExistingBuildings
    from roofseg.prediction.vector.vectorize import write_polygons

    with rasterio.open(sample_scene["mask"]) as m:
        crs = m.crs
    doc = json.loads(open(sample_scene["labels"]).read())
    footprints = [shape(f["geometry"]) for f in doc["features"]]
    mapped = footprints[::2]
    if form == "geojson":  # RFC 7946 lon/lat: another CRS than the scene's
        to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
        existing = write_geojson(
            tmp_path / "mapped.geojson", [shapely.ops.transform(to_lonlat.transform, p) for p in mapped], crs=None
        )
    else:
        existing = positive_ids(osm_of(mapped, tmp_path / "neg.osm"), tmp_path / "mapped.osm")
    everything = write_polygons(sample_scene["mask"], tmp_path / "all.gpkg")
    known = ExistingBuildings(existing, crs)
    assert len(known) == len(mapped)
    new = write_polygons(sample_scene["mask"], tmp_path / "new.gpkg", existing=known)
    assert new == everything - len(mapped)
    import fiona

    with fiona.open(tmp_path / "new.gpkg") as src:
        assert not any(known.mapped(shape(f["geometry"])) for f in src)
    assert (
        write_polygons(sample_scene["mask"], tmp_path / "marked.gpkg", existing=known, keep_existing=True) == everything
    )
    with fiona.open(tmp_path / "marked.gpkg") as src:
        status = [f["properties"]["status"] for f in src]
    assert status.count("mapped") == len(mapped) and status.count("new") == everything - len(mapped)


def test_an_osm_extract_labels_tiles_as_its_footprints_do(sample_scene, tmp_path):
    from roofseg.contracts.tile import read_records
    from roofseg.tiler.tile import TileParams

    from helpers import tile_dict as tile

    doc = json.loads(open(sample_scene["labels"]).read())
    extract = positive_ids(
        osm_of([shape(f["geometry"]) for f in doc["features"]], tmp_path / "neg.osm"), tmp_path / "area.osm"
    )
    params = TileParams(size=128, stride=128, split_block=256, val=0.0, test=0.0, max_nodata=1.0, contact_px=0)
    tile(
        [str(sample_scene["image"])], tmp_path / "osm", params, labels=[str(extract)], split_by="scene", progress=False
    )
    tile(
        [str(sample_scene["image"])],
        tmp_path / "geo",
        params,
        labels=[str(sample_scene["labels"])],
        split_by="scene",
        progress=False,
    )

    def masks(folder):
        return {
            (r["row"], r["col"]): r["mask"]
            for p in sorted((folder / "train").glob("*.tfrecord"))
            for r in read_records(str(p))
        }

    a, b = masks(tmp_path / "osm"), masks(tmp_path / "geo")
    assert a.keys() == b.keys() and sum(m.sum() for m in b.values()) > 0
    agree = np.mean([np.mean(a[k] == b[k]) for k in a])
    assert agree > 0.999  # 1e-7° nodes: a pixel's edge here and there


def test_predictions_over_an_xyz_tile_layer_equal_those_over_the_same_pixels(tmp_path, http_folder, run_cli):
    import cv2
    from pyproj import Transformer

    from roofseg.xyz import HALF_WORLD, resolution

    folder, server = http_folder
    z, x0, y0 = 17, 70000, 45000
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, (768, 768, 3), dtype=np.uint8)  # 3 x 3 tiles
    for i in range(3):
        for j in range(3):
            (folder / str(z) / str(x0 + i)).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(folder / str(z) / str(x0 + i) / f"{y0 + j}.png"),
                image[j * 256 : (j + 1) * 256, i * 256 : (i + 1) * 256, ::-1],
            )
    res = resolution(z)
    left, top = -HALF_WORLD + x0 * 256 * res, HALF_WORLD - y0 * 256 * res
    pyramid = Affine(res, 0, left, 0, -res, top)
    write_tif(tmp_path / "same.tif", image.transpose(2, 0, 1), transform=pyramid, crs="EPSG:3857")
    # a box from pixel (100, 140) to (600, 500) of the three tiles, in lon/lat
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    (w, n), (e, s) = (to_lonlat.transform(*(pyramid @ (c + 0.5, r + 0.5))) for c, r in ((140, 100), (599, 499)))
    from roofseg._tf import keras

    inp = keras.Input(
        (None, None, 3)
    )  # pixel by pixel: the same pixels give the same probabilities, whatever the windows
    model = tmp_path / "m.keras"
    keras.Model(inp, keras.layers.Conv2D(1, 1, activation="sigmoid")(inp)).save(model)
    common = ("--tile-size", 128, "--overlap", 32, "--engine", "tf", "--dtype", "float32", "--quiet")
    done = run_cli(
        "predict",
        model,
        f"xyz:{server.url}/{{z}}/{{x}}/{{y}}.png",
        tmp_path / "xyz.tif",
        "--bbox",
        f"{w},{s},{e},{n}",
        "--zoom",
        z,
        *common,
    )
    assert done.code == 0, done.err
    assert run_cli("predict", model, tmp_path / "same.tif", tmp_path / "tif.tif", *common).code == 0
    with rasterio.open(tmp_path / "xyz.tif") as a, rasterio.open(tmp_path / "tif.tif") as b:
        assert a.crs.to_epsg() == 3857 and (a.width, a.height) == (460, 400)
        window = rasterio.windows.from_bounds(*a.bounds, transform=b.transform).round_offsets().round_lengths()
        assert (window.col_off, window.row_off) == (140, 100)
        np.testing.assert_allclose(a.read(1), b.read(1, window=window), atol=1e-6)
    assert any(r[1].startswith(f"/{z}/") for r in server.requests)
    # a tile the server does not have: one line naming its URL
    line = run_cli(
        "predict",
        model,
        f"xyz:{server.url}/{{z}}/{{x}}/{{y}}.png",
        tmp_path / "far.tif",
        "--bbox",
        f"{w + 0.05},{s},{e + 0.05},{n}",
        "--zoom",
        z,
        *common,
    )
    from conftest import one_error_line

    text = one_error_line(line)
    assert f"{server.url}/{z}/" in text and "HTTP 404" in text


def josm_validator_errors(path) -> list[str]:
    """What JOSM's validator says of a file, checked as it checks: nodes at one position
    ("Building duplicated nodes"), buildings that overlap ("Overlapping buildings"), and the
    member ways of a multipolygon that cross or touch at other than a shared node ("Intersection
    between multipolygon ways")."""
    from itertools import combinations

    from shapely import STRtree
    from shapely.geometry import LineString

    from roofseg.raster.osm import read_osm_buildings

    root = ET.parse(path).getroot()
    nodes = {e.get("id"): (e.get("lon"), e.get("lat")) for e in root.iter("node")}
    errors = []
    seen: dict[tuple, str] = {}
    for nid, pos in nodes.items():
        if pos in seen:
            errors.append(f"duplicated nodes {seen[pos]} and {nid} at {pos}")
        seen[pos] = nid
    buildings = read_osm_buildings(path)
    tree = STRtree(buildings)
    for i, a in enumerate(buildings):
        for j in tree.query(a):
            if j > i and a.intersection(buildings[j]).area > 1e-14:
                errors.append(f"overlapping buildings {i} and {j}")
    ways = {w.get("id"): [nd.get("ref") for nd in w.iter("nd")] for w in root.iter("way")}
    for rel in root.iter("relation"):
        members = [m.get("ref") for m in rel.iter("member")]
        for a, b in combinations(members, 2):
            la = LineString([tuple(map(float, nodes[r])) for r in ways[a]])
            lb = LineString([tuple(map(float, nodes[r])) for r in ways[b]])
            shared = {tuple(map(float, nodes[r])) for r in set(ways[a]) & set(ways[b])}
            meet = la.intersection(lb)
            points = {(p.x, p.y) for p in getattr(meet, "geoms", [meet]) if p.geom_type == "Point"}
            if not meet.is_empty and (meet.geom_type not in ("Point", "MultiPoint") or points - shared):
                errors.append(f"intersection between multipolygon ways {a} and {b}")
    return errors


def test_touching_buildings_share_their_nodes_and_pass_josms_checks(tmp_path):
    from roofseg.prediction.vector.instances import ContactBand
    from roofseg.prediction.vector.vectorize import write_polygons

    roof = np.zeros((120, 160), np.uint8)
    contact = np.zeros((120, 160), np.uint8)
    for k, (top, bottom) in enumerate([(10, 41), (10, 31), (14, 47), (10, 25)]):  # a terrace of uneven houses
        left = 10 + 21 * k
        roof[top:bottom, left : left + 21] = 1
        contact[top:bottom, left + 19 : left + 23] = 255  # the walls between them
    roof[60:100, 60:100] = 1
    roof[60:70, 60:70] = 0  # a notch whose corner touches the courtyard's corner
    roof[70:80, 70:80] = 0
    write_tif(tmp_path / "binary.tif", roof, transform=T)
    write_tif(tmp_path / "contact.tif", contact, transform=T)
    n = write_polygons(
        tmp_path / "binary.tif", tmp_path / "roofs.osm", contact=ContactBand(str(tmp_path / "contact.tif"), 1, 127)
    )
    assert n == 5
    assert josm_validator_errors(tmp_path / "roofs.osm") == []


def test_staircase_outlines_lose_their_steps_and_keep_their_shared_walls(tmp_path):
    """A diamond traced from pixels is a staircase of a node per pixel step; simplified, a handful
    of nodes stand, in every format, and two buildings split along a diagonal still share it."""
    from roofseg.prediction.vector.instances import ContactBand
    from roofseg.prediction.vector.vectorize import write_polygons

    rows, cols = np.mgrid[0:200, 0:200]
    roof = ((np.abs(rows - 100) + np.abs(cols - 100)) < 80).astype(np.uint8)  # a diamond: all steps
    contact = np.zeros_like(roof)
    contact[(np.abs(rows - cols) <= 1)] = 255  # cut along a diagonal: two buildings, a staircase wall
    write_tif(tmp_path / "binary.tif", roof, transform=T)
    write_tif(tmp_path / "contact.tif", contact, transform=T)
    band = ContactBand(str(tmp_path / "contact.tif"), 1, 127)
    assert write_polygons(tmp_path / "binary.tif", tmp_path / "roofs.osm", contact=band) == 2
    root = ET.parse(tmp_path / "roofs.osm").getroot()
    lengths = [len(list(w.iter("nd"))) for w in root.iter("way")]
    assert max(lengths) < 20, lengths  # traced: over 300 nodes each
    assert josm_validator_errors(tmp_path / "roofs.osm") == []
    write_polygons(tmp_path / "binary.tif", tmp_path / "roofs.gpkg", contact=band)
    import fiona

    with fiona.open(tmp_path / "roofs.gpkg") as src:
        polys = [shape(f["geometry"]) for f in src]
    assert all(len(shapely.get_coordinates(p)) < 20 for p in polys)
    assert polys[0].intersection(polys[1]).area < 1e-6  # no overlap, and no gap:
    assert abs(polys[0].union(polys[1]).area - sum(p.area for p in polys)) < 1e-6


def test_a_courtyard_touching_its_outline_mid_edge_meets_it_at_a_shared_node(tmp_path):
    from roofseg.prediction.vector.vectorize import Building, write_buildings

    crs = rasterio.crs.CRS.from_epsg(32633)
    x, y = 500_000.0, 5_000_000.0
    outline = box(x, y, x + 20, y + 20)
    courtyard = Polygon([(x + 10, y), (x + 14, y + 6), (x + 6, y + 6)])  # its corner on the outline's bottom edge
    house = Polygon(outline.exterior, [courtyard.exterior])
    assert house.is_valid
    found = [Building(shapely.geometry.mapping(house), house.area, 0.9)]
    write_buildings(found, tmp_path / "h.osm", crs)
    assert josm_validator_errors(tmp_path / "h.osm") == []


def test_an_outline_of_more_than_2000_nodes_becomes_ways_of_at_most_2000(tmp_path):
    from roofseg.prediction.vector.osm import MAX_WAY_NODES, OsmWriter

    angles = np.linspace(0, 2 * np.pi, 4500, endpoint=False)
    ring = Polygon(np.column_stack([500_000 + 100 * np.cos(angles), 5_000_000 + 100 * np.sin(angles)]))
    writer = OsmWriter(rasterio.crs.CRS.from_epsg(32633))
    writer.add(ring)
    writer.write(tmp_path / "big.osm")
    assert writer.split == 1
    root = ET.parse(tmp_path / "big.osm").getroot()
    ways = [[nd.get("ref") for nd in w.iter("nd")] for w in root.iter("way")]
    assert len(ways) == 3 and max(len(w) for w in ways) <= MAX_WAY_NODES
    assert all(a[-1] == b[0] for a, b in zip(ways, ways[1:] + ways[:1]))  # joined end to end, closed
    (rel,) = root.iter("relation")
    assert {t.get("k"): t.get("v") for t in rel.iter("tag")} == {"type": "multipolygon", "building": "yes"}
    from roofseg.raster.osm import read_osm_buildings

    (back,) = read_osm_buildings(tmp_path / "big.osm")  # one closed outline again, in lon/lat
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    assert back.area == pytest.approx(shapely.ops.transform(to_lonlat.transform, ring).area, rel=1e-4)


def test_keep_existing_carries_each_buildings_status_into_osm(tmp_path):
    from roofseg.prediction.vector.existing import ExistingBuildings
    from roofseg.prediction.vector.vectorize import write_polygons

    roof = np.zeros((100, 100), np.uint8)
    roof[10:30, 10:30] = 1  # mapped
    roof[50:70, 50:70] = 1  # new
    write_tif(tmp_path / "binary.tif", roof, transform=T)
    x, y = T * (10, 10)
    mapped = write_geojson(tmp_path / "mapped.geojson", [box(x, y - 10, x + 10, y)])
    known = ExistingBuildings(mapped, "EPSG:32633")
    write_polygons(tmp_path / "binary.tif", tmp_path / "all.osm", existing=known, keep_existing=True)
    root = ET.parse(tmp_path / "all.osm").getroot()
    statuses = sorted(t.get("v") for t in root.iter("tag") if t.get("k") == "roofseg:status")
    assert statuses == ["mapped", "new"]
    write_polygons(tmp_path / "binary.tif", tmp_path / "plain.osm", existing=known)
    assert "roofseg:status" not in (tmp_path / "plain.osm").read_text()
