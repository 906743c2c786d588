"""Labels: OSM's meaning of the building tag, and OSM files as JOSM and roofseg write them."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box, shape

OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="JOSM" upload="never">
  <node id="-1" lat="0.0000" lon="0.0000"/><node id="-2" lat="0.0000" lon="0.0010"/>
  <node id="-3" lat="0.0010" lon="0.0010"/><node id="-4" lat="0.0010" lon="0.0000"/>
  <way id="-100"><nd ref="-1"/><nd ref="-2"/><nd ref="-3"/><nd ref="-4"/><nd ref="-1"/>
    <tag k="building" v="house"/></way>
  <node id="-5" lat="0.0020" lon="0.0000"/><node id="-6" lat="0.0020" lon="0.0010"/>
  <node id="-7" lat="0.0030" lon="0.0010"/><node id="-8" lat="0.0030" lon="0.0000"/>
  <way id="-101"><nd ref="-5"/><nd ref="-6"/><nd ref="-7"/><nd ref="-8"/><nd ref="-5"/>
    <tag k="building" v="no"/><tag k="amenity" v="parking"/></way>
  <node id="-9" lat="0.0040" lon="0.0000"/><node id="-10" lat="0.0040" lon="0.0030"/>
  <node id="-11" lat="0.0070" lon="0.0030"/><node id="-12" lat="0.0070" lon="0.0000"/>
  <way id="-102"><nd ref="-9"/><nd ref="-10"/><nd ref="-11"/></way>
  <way id="-103"><nd ref="-11"/><nd ref="-12"/><nd ref="-9"/></way>
  <node id="-13" lat="0.0050" lon="0.0010"/><node id="-14" lat="0.0050" lon="0.0020"/>
  <node id="-15" lat="0.0060" lon="0.0020"/><node id="-16" lat="0.0060" lon="0.0010"/>
  <way id="-104"><nd ref="-13"/><nd ref="-14"/><nd ref="-15"/><nd ref="-16"/><nd ref="-13"/></way>
  <relation id="-200"><member type="way" ref="-102" role="outer"/><member type="way" ref="-103" role="outer"/>
    <member type="way" ref="-104" role="inner"/><tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>
  <way id="-105" action="delete"><nd ref="-1"/><nd ref="-2"/><nd ref="-3"/><nd ref="-1"/>
    <tag k="building" v="yes"/></way>
</osm>
"""


def test_an_osm_file_with_negative_ids_gives_its_buildings_and_not_building_no(tmp_path):
    from roofseg.raster.labels import read_footprints

    path = tmp_path / "edits.osm"
    path.write_text(OSM)
    found = sorted((shape(g) for g in read_footprints(str(path), "EPSG:4326")), key=lambda g: g.bounds[1])
    assert len(found) == 2  # the house and the courtyard building; not the parking canopy, not the deleted way
    assert (
        found[0].equals(box(0, 0, 0.001, 0.001).normalize())
        or found[0].symmetric_difference(box(0, 0, 0.001, 0.001)).area < 1e-12
    )
    courtyard = found[1]
    assert courtyard.area == pytest.approx(0.003 * 0.003 - 0.001 * 0.001)  # a ring cut in two ways, a hole


def test_a_footprint_tagged_building_no_is_no_label(tmp_path):
    from roofseg.raster.labels import read_footprints

    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"building": "yes"}, "geometry": box(0, 0, 1e-4, 1e-4).__geo_interface__},
            {
                "type": "Feature",
                "properties": {"building": "no"},
                "geometry": box(1, 1, 1.0001, 1.0001).__geo_interface__,
            },
            {"type": "Feature", "properties": {}, "geometry": box(2, 2, 2.0001, 2.0001).__geo_interface__},
        ],
    }
    (tmp_path / "f.geojson").write_text(json.dumps(doc))
    assert len(read_footprints(str(tmp_path / "f.geojson"), "EPSG:4326")) == 2


def test_a_broken_osm_file_is_one_line(tmp_path):
    from roofseg.errors import RoofsegError
    from roofseg.raster.labels import read_footprints

    (tmp_path / "cut.osm").write_text(OSM[: len(OSM) // 2])
    with pytest.raises(RoofsegError, match="cut.osm"):
        read_footprints(str(tmp_path / "cut.osm"), "EPSG:4326")
