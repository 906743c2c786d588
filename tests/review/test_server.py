"""roofseg review over HTTP: the token, the queue, decisions kept in SQLite, exports, bad requests."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from shapely.geometry import box

from conftest import one_error_line, write_geojson, write_tif


def call(server, path, token=True, data=None, header=True):
    base = f"http://127.0.0.1:{server.server_address[1]}"
    url = base + path + (("&" if "?" in path else "?") + f"token={server.review.token}" if token and not data else "")
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/json")
        if header:
            request.add_header("X-Roofseg-Token", server.review.token)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type")


def decide(server, key, decision, header=True):
    return call(server, "/api/decide", data=json.dumps({"key": key, "decision": decision}).encode(), header=header)


def test_the_queue_starts_with_the_doubtful_and_needs_the_token(served):
    server = served()
    assert server.url.startswith("http://127.0.0.1:") and "token=" in server.url
    status, body, _ = call(server, "/api/review", token=False)
    assert status == 403 and b"token" in body
    status, body, _ = call(server, "/api/review")
    state = json.loads(body)
    assert status == 200 and state["reviewed"] == 0
    assert [f["properties"]["confidence"] for f in state["buildings"]["features"]] == [0.2, 0.6, 0.9]
    lon, lat = state["buildings"]["features"][0]["geometry"]["coordinates"][0][0]
    assert 14 < lon < 16 and 44 < lat < 46  # lon/lat for the map
    status, page, kind = call(server, "/", token=False)
    assert status == 200 and b"leaflet.js" in page and kind.startswith("text/html")
    assert call(server, "/static/leaflet/leaflet.js", token=False)[0] == 200


def test_decisions_are_kept_as_made_and_a_restarted_review_resumes(served, tmp_path):
    server = served()
    assert decide(server, "0:1", "accept")[0] == 200
    assert decide(server, "0:0", "reject")[0] == 200
    assert decide(server, "0:2", "skip")[0] == 200
    assert decide(server, "0:2", None)[0] == 200  # taken back
    rows = dict(sqlite3.connect(tmp_path / "review.sqlite").execute("SELECT building, decision FROM decisions"))
    assert rows == {"0:1": "accept", "0:0": "reject"}
    server.stop()
    again = served()
    state = json.loads(call(again, "/api/review")[1])
    assert state["reviewed"] == 2
    assert {f["id"]: f["properties"]["decision"] for f in state["buildings"]["features"]}["0:1"] == "accept"


def test_two_tabs_do_not_lose_each_others_decisions(served):
    """Each decision is its own row: two clients deciding other buildings, in any order, both stay."""
    import threading

    server = served()
    keys = ["0:0", "0:1", "0:2"]
    threads = [threading.Thread(target=decide, args=(server, k, "accept")) for k in keys for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.review.store.decisions() == dict.fromkeys(keys, "accept")


@pytest.mark.parametrize(
    "path, data, header, status",
    [
        ("/api/decide", b'{"key": "0:0", "decision": "accept"}', False, 403),  # another page: no token
        ("/api/decide", b"not json", True, 400),
        ("/api/decide", b'{"key": "9:9", "decision": "accept"}', True, 404),
        ("/api/decide", b'{"key": "0:0", "decision": "maybe"}', True, 400),
        ("/tiles/0/x/1/2.png", None, True, 400),
        ("/tiles/7/18/1/2.png", None, True, 404),
        ("/static/../../setup.cfg", None, True, 404),
        ("/static/%2e%2e/server.py", None, True, 404),
        ("/export.shp", None, True, 404),
        ("/nothing", None, True, 404),
    ],
)
def test_a_bad_request_is_a_4xx_with_a_message_and_the_server_goes_on(served, path, data, header, status):
    server = served()
    got, body, _ = call(server, path, data=data, header=header)
    assert got == status and json.loads(body)["error"]
    assert call(server, "/api/review")[0] == 200  # still serving


def test_map_tiles_come_from_the_scene_and_empty_outside_it(served):
    import io

    from PIL import Image

    server = served()
    tile = server.review.tiles[0]
    lon = (tile.bounds[0] + tile.bounds[2]) / 2
    lat = (tile.bounds[1] + tile.bounds[3]) / 2
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 20)
    status, body, kind = call(server, f"/tiles/0/20/{t.x}/{t.y}.png")
    assert status == 200 and kind == "image/png" and Image.open(io.BytesIO(body)).size == (256, 256)
    assert call(server, "/tiles/0/20/0/0.png")[0] == 204  # far outside the scene


def test_the_accepted_buildings_export_through_the_vector_writer(served, pair, tmp_path):
    server = served()
    decide(server, "0:0", "accept")
    decide(server, "0:2", "accept")
    decide(server, "0:1", "reject")
    status, body, kind = call(server, "/export.osm")
    root = ET.fromstring(body)
    assert status == 200 and kind == "application/xml" and root.get("upload") == "never"
    assert len([w for w in root.iter("way") if any(t.get("k") == "building" for t in w.iter("tag"))]) == 2
    status, body, _ = call(server, "/export.geojson")
    assert len(json.loads(body)["features"]) == 2
    # with the map given, an accepted building it maps already is left out, as predict --existing does
    mapped = write_geojson(tmp_path / "mapped.geojson", [box(500_010, 4_999_970, 500_025, 4_999_985)])
    server.stop()
    again = served(existing=str(mapped))
    assert len(json.loads(call(again, "/export.geojson")[1])["features"]) == 1


def test_an_unreadable_scene_or_footprints_is_one_line_at_start(pair, tmp_path, run_cli):
    scene, footprints = pair
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not a tiff")
    line = one_error_line(run_cli("review", broken, footprints, "--port", 0))
    assert "broken.tif" in line
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a geopackage")
    line = one_error_line(run_cli("review", scene, junk, "--port", 0))
    assert "junk.gpkg" in line
    line = one_error_line(run_cli("review", scene, "--port", 0))
    assert "SCENE FOOTPRINTS" in line


def test_a_store_of_another_review_is_refused(pair, tmp_path):
    from roofseg.errors import RoofsegError
    from roofseg.review.store import DecisionStore

    DecisionStore(tmp_path / "s.sqlite", [str(pair[1])]).close()
    with pytest.raises(RoofsegError, match="other footprints"):
        DecisionStore(tmp_path / "s.sqlite", [str(tmp_path / "other.gpkg")])


def test_map_tiles_show_16_bit_imagery_with_the_stretch_the_model_sees(tmp_path):
    """A uint16 scene, dark on its left and bright on its right: each tile keeps the scene's one
    percentile stretch (roofseg's reader), not a stretch of its own that would make both grey."""
    import io

    import morecantile
    from PIL import Image

    from roofseg.review.tiles import SceneTiles

    rng = np.random.default_rng(0)
    data = rng.integers(0, 50, (3, 512, 512)).astype(np.uint16)
    data[:, :, :256] += 1000
    data[:, :, 256:] += 3000
    tiles = SceneTiles(str(write_tif(tmp_path / "u16.tif", data)))
    west, south, east, north = tiles.bounds
    quad = morecantile.tms.get("WebMercatorQuad")
    means = []
    for lon in (west + (east - west) / 8, east - (east - west) / 8):
        t = quad.tile(lon, (south + north) / 2, 20)
        means.append(np.asarray(Image.open(io.BytesIO(tiles.png(20, t.x, t.y))).convert("L")).mean())
    tiles.close()
    assert means[0] < 60 and means[1] > 190, means


def test_a_tile_the_browser_cancels_is_no_error_and_tiles_render_side_by_side(served, capfd):
    """Leaflet cancels the tiles of a view it leaves (every next building moves the map): a client
    gone is no fault, said nowhere; and a view's tiles render on readers of their own, not in turn."""
    import socket
    import struct
    import threading

    import morecantile

    server = served()
    tiles = server.review.tiles[0]
    lon, lat = (tiles.bounds[0] + tiles.bounds[2]) / 2, (tiles.bounds[1] + tiles.bounds[3]) / 2
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 20)
    path = f"/tiles/0/20/{t.x}/{t.y}.png?token={server.review.token}"
    for _ in range(5):
        with socket.create_connection(server.server_address[:2]) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # gone at once (RST)
    assert call(server, f"/tiles/0/20/{t.x}/{t.y}.png")[0] == 200  # the server goes on
    assert "Traceback" not in capfd.readouterr().err
    # two requests at once hold two readers at once (two asked for: a one-core machine gets one)
    from roofseg.review.tiles import SceneTiles

    tiles = SceneTiles(tiles.path, readers=2)
    held, release = [], threading.Event()
    real = tiles._render

    def slow(reader, *args):
        held.append(reader)
        release.wait(5)
        return real(reader, *args)

    tiles._render = slow
    threads = [threading.Thread(target=tiles.png, args=(20, t.x, t.y)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(100):
        if len(held) == 2:
            break
        threading.Event().wait(0.05)
    release.set()
    for thread in threads:
        thread.join()
    tiles.close()
    assert len(held) == 2 and held[0] is not held[1]
