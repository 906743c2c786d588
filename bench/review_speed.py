"""How fast the review page is in a real browser (run by hand; needs chromium and chromedriver):
`python bench/review_speed.py [--size 20000] [--buildings 10000] [--decisions 100] [--work DIR]`.

Writes a `--size`² RGB COG (JPEG, overviews, 0.3 m, a synthetic pattern) and `--buildings`
footprints on it, serves them with `roofseg review`'s server on 127.0.0.1, and measures in headless
chromium through selenium:

- the first view: from navigation until the page is ready (its 10,000 footprints loaded and
  drawn) and until every map tile of the first view has loaded (Leaflet's `leaflet-tile-loaded`);
- a map tile: the duration of each tile request in the browser's resource timing, at the first
  view (overviews) and zoomed on the first building (full resolution), median and 95th percentile;
  and the server's own time per tile, fetched one after another with urllib;
- the queue: `--decisions` accept keys pressed one after another, each waited for until the bar
  counts it; milliseconds per decision.

The files are made once under `--work` and reused.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def make_cog(path: Path, size: int) -> None:
    """A ``size``² RGB COG at 0.3 m in UTM 33N: a smooth pattern with roofs and streets in it."""
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return
    plain = path.with_suffix(".plain.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(500_000, 5_000_000, 0.3, 0.3), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate")  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(plain, "w", **profile) as dst:
        for row in range(0, size, 1024):
            h = min(1024, size - row)
            coarse = rng.integers(60, 200, (3, h // 32 + 1, size // 32 + 1), dtype=np.uint8)
            block = np.repeat(np.repeat(coarse, 32, axis=1), 32, axis=2)[:, :h, :size]
            block[:, :, ::200] = 40  # streets
            dst.write(block, window=Window(0, row, size, h))
    rasterio.shutil.copy(plain, path, driver="COG", COMPRESS="JPEG", QUALITY=85, NUM_THREADS="ALL_CPUS")
    plain.unlink()


def make_footprints(path: Path, size: int, count: int) -> None:
    import fiona
    from shapely.geometry import box, mapping

    if path.exists():
        return
    side = int(np.ceil(np.sqrt(count)))
    step = size * 0.3 / side
    rng = np.random.default_rng(1)
    schema = {"geometry": "Polygon", "properties": {"confidence": "float", "area_m2": "float"}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:32633", SPATIAL_INDEX="NO") as dst:
        for k in range(count):
            x = 500_000 + (k % side + 0.3) * step
            y = 5_000_000 - (k // side + 0.3) * step
            b = box(x, y - 9, x + 9, y)
            dst.write({"geometry": mapping(b), "properties": {"confidence": float(rng.random()), "area_m2": b.area}})


def browser(profile: Path):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,800", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))


def wait(predicate, seconds: float = 120.0) -> None:
    deadline = time.time() + seconds
    while not predicate():
        if time.time() > deadline:
            raise SystemExit("the page did not get there in time")
        time.sleep(0.02)


TILES_DONE = """
const tiles = [...document.querySelectorAll('.leaflet-tile-pane img')];
return tiles.length > 0 && tiles.every(t => t.classList.contains('leaflet-tile-loaded'));
"""
TILE_TIMES = """
return performance.getEntriesByType('resource').filter(e => e.name.includes('/tiles/'))
  .map(e => [e.startTime, e.responseEnd, e.duration]);
"""


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    q = np.percentile(values, [50, 95])
    return f"median {q[0]:.0f} ms, 95th percentile {q[1]:.0f} ms ({len(values)} tiles)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--buildings", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "roofseg-bench" / "review-speed")
    args = ap.parse_args()
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        raise SystemExit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.common.by import By

    from roofseg.review.queue import Pair
    from roofseg.review.server import Review, ReviewServer

    args.work.mkdir(parents=True, exist_ok=True)
    cog, gpkg = args.work / f"scene{args.size}.tif", args.work / f"footprints{args.buildings}.gpkg"
    t0 = time.perf_counter()
    make_cog(cog, args.size)
    make_footprints(gpkg, args.size, args.buildings)
    print(f"{args.size}² COG and {args.buildings} footprints ready ({time.perf_counter() - t0:.0f} s)")
    store = args.work / "speed.review.sqlite"
    store.unlink(missing_ok=True)
    t0 = time.perf_counter()
    server = ReviewServer(Review([Pair(str(cog), str(gpkg))], store), "127.0.0.1", 0)
    server.start()
    print(f"server up in {time.perf_counter() - t0:.2f} s (the footprints read and queued)")
    driver = browser(args.work / "profile")
    try:
        t0 = time.perf_counter()
        driver.get(server.url)
        wait(lambda: driver.execute_script("return document.body.dataset.ready") == "1")
        ready = time.perf_counter() - t0
        wait(lambda: driver.execute_script(TILES_DONE))
        first = time.perf_counter() - t0
        first_tiles = [d for _, _, d in driver.execute_script(TILE_TIMES)]
        zoom = driver.execute_script("return map.getZoom()")
        print(f"first view: page ready (footprints drawn) {ready:.2f} s, every tile of the view loaded {first:.2f} s "
              f"(zoom {zoom}, on the first building of the queue)")  # fmt: skip
        print(f"map tiles of the first view (full resolution): {percentiles(first_tiles)}")
        seen = len(first_tiles)
        driver.execute_script("map.setZoom(14)")  # the whole scene: tiles from the overviews
        wait(lambda: driver.execute_script("return map.getZoom()") == 14)
        wait(lambda: driver.execute_script(TILES_DONE))
        overview = [d for _, _, d in driver.execute_script(TILE_TIMES)[seen:]]
        print(f"map tiles of the whole scene (zoom 14, overviews): {percentiles(overview)}")
        body = driver.find_element(By.TAG_NAME, "body")
        t0 = time.perf_counter()
        for k in range(1, args.decisions + 1):
            body.send_keys("a")
            wait(lambda k=k: f"{k} of {args.buildings} reviewed" in driver.find_element(By.ID, "count").text)
        per = (time.perf_counter() - t0) / args.decisions * 1000
        print(f"queue of {args.buildings}: {args.decisions} decisions, {per:.0f} ms each (key to the bar's count)")
    finally:
        driver.quit()
        server.stop()
    server = ReviewServer(Review([Pair(str(cog), str(gpkg))], store), "127.0.0.1", 0)  # anew: a cold reader
    server.start()
    tiles = server.review.tiles[0]
    lo, hi = tiles.minzoom, tiles.maxzoom
    lon, lat = (tiles.bounds[0] + tiles.bounds[2]) / 2, (tiles.bounds[1] + tiles.bounds[3]) / 2
    served = {}
    for z in (lo, (lo + hi) // 2, hi):
        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - np.log(np.tan(np.radians(lat)) + 1 / np.cos(np.radians(lat))) / np.pi) / 2 * n)
        times = []
        for dx in range(-2, 3):
            port, token = server.server_address[1], server.review.token
            url = f"http://127.0.0.1:{port}/tiles/0/{z}/{x + dx}/{y}.png?token={token}"
            t = time.perf_counter()
            urllib.request.urlopen(url).read()
            times.append((time.perf_counter() - t) * 1000)
        served[z] = statistics.median(times)
    server.stop()
    print("server's time per tile, one after another: "
          + ", ".join(f"zoom {z}: {ms:.0f} ms" for z, ms in served.items()))  # fmt: skip


if __name__ == "__main__":
    main()
