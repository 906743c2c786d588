"""The README's picture of ``roofseg review``: a scene predicted by a model, reviewed in headless chromium.

    python bench/review_shot.py MODEL SCENE OUT.png [--decide 6]

Predicts SCENE with MODEL (``roofseg predict MODEL SCENE --vector``), serves the review on
127.0.0.1, opens it in Debian's chromium through selenium, presses A and R alternately ``--decide``
times (as a reviewer would), and saves the page. Needs chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("scene")
    ap.add_argument("out")
    ap.add_argument("--decide", type=int, default=6)
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    from roofseg.review.queue import Pair
    from roofseg.review.server import Review, ReviewServer

    with tempfile.TemporaryDirectory() as tmp:
        pred = Path(tmp) / "pred.tif"
        cmd = [sys.executable, "-m", "roofseg.cli", "predict", args.model, args.scene, str(pred)]
        subprocess.run([*cmd, "--vector", str(pred.with_suffix(".gpkg")), "--quiet"], check=True, cwd=ROOT)
        server = ReviewServer(Review([Pair(args.scene, str(pred.with_suffix(".gpkg")))], Path(tmp) / "r.sqlite"))
        server.start()
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--window-size=1280,720", f"--user-data-dir={tmp}/profile"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
        try:
            driver.get(server.url)
            deadline = time.time() + 60
            while driver.execute_script("return document.body.dataset.ready") != "1" and time.time() < deadline:
                time.sleep(0.2)
            body = driver.find_element(By.TAG_NAME, "body")
            for k in range(args.decide):
                body.send_keys("a" if k % 3 else "r")
                time.sleep(0.3)
            time.sleep(2)  # the tiles of the last zoom
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            server.stop()
    print(f"review screenshot: {args.out}")


if __name__ == "__main__":
    main()
