"""Fixtures: tiny GeoTIFFs written in tmp_path, the sample scene, and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import mapping

from roofseg._tf import tf  # the environment TensorFlow reads is set before it is imported

# Two logical CPU devices, so MirroredStrategy can be tried on a machine without GPUs. This must
# happen before the runtime starts, i.e. before roofseg._tf runs its first op.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

# Every op and tf.data pipeline deterministic, and every test starting from the same seeds: a
# training test's bound then holds on a loaded machine as on an idle one (a fine-tune's IoU once
# missed its bound by 0.001 under load). Production runs keep tf.data's faster free ordering.
tf.config.experimental.enable_op_determinism()


@pytest.fixture(autouse=True)
def _same_seeds():
    from roofseg._tf import keras

    keras.utils.set_random_seed(0)


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UTM = "EPSG:32633"


def write_tif(
    path, data: np.ndarray, transform=Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000), crs=UTM, nodata=None, **extra
) -> Path:
    """Write (bands, h, w) or (h, w) ``data`` as a GeoTIFF; return its path."""
    data = data if data.ndim == 3 else data[None]
    profile = dict(
        driver="GTiff",
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        dtype=data.dtype,
        transform=transform,
        crs=crs,
        nodata=nodata,
        **extra,
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return Path(path)


def write_geojson(path, polygons, crs: str | None = UTM) -> Path:
    """Write shapely ``polygons`` as a GeoJSON FeatureCollection (with a ``crs`` member unless None)."""
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(p)} for p in polygons],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    Path(path).write_text(json.dumps(doc))
    return Path(path)


@pytest.fixture(scope="session")
def sample_scene(tmp_path_factory) -> dict[str, Path]:
    """The built-in sample at 512 x 512 px (seed 3): image, mask and footprints."""
    from roofseg.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample"), size=512, seed=3, progress=False)


@pytest.fixture(scope="module")
def manifest(sample_scene, tmp_path_factory) -> Path:
    """The sample cut into 64 px tiles (train, val and test), for training tests."""
    from roofseg.tiler.run import tile
    from roofseg.tiler.tile import TileParams

    out = tmp_path_factory.mktemp("tiles64")
    tile(
        [str(sample_scene["image"])],
        out,
        TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2),
        progress=False,
    )
    return out / "manifest.json"


def epochs_logged(run: Path) -> list[int]:
    """The epochs a run's history.csv holds (none before the first is logged)."""
    path = run / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys):
    """Run ``roofseg ARGS`` in this process; return its exit code, stdout and stderr."""
    from roofseg.cli import main

    def run(*args) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def outputs_of(folder: Path) -> list[str]:
    """Every file below ``folder`` except job markers: shards, manifests and temporaries."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def spacenet() -> Path:
    path = SHARED / "spacenet-atlanta-sample"
    if not (path / "sample_geotiff.tif").is_file():
        pytest.skip(f"real data not present at {path}")
    return path


from hypothesis import settings  # noqa: E402

# This machine is shared and noisy: a per-example deadline would fail on load, not on bugs.
settings.register_profile("roofseg", deadline=None, max_examples=100)
settings.load_profile("roofseg")


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str):
    """A tmpfs mounted at ``path`` for the block (root only; the test is skipped elsewhere)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A real file system of 400 KB, to fill."""
    with mounted_tmpfs(tmp_path / "small", "size=400k") as path:
        yield path


@pytest.fixture
def readonly_dir(tmp_path):
    """A read-only file system (root ignores chmod, not this)."""
    with mounted_tmpfs(tmp_path / "readonly", "size=64k,ro") as path:
        yield path


def one_error_line(result) -> str:
    """The single stderr line of a failed command (asserting exit 1 and no traceback)."""
    assert result.code == 1, (result.code, result.err)
    lines = [ln for ln in result.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("roofseg: error: "), result.err
    return lines[0]


class RangeServer:
    """tests/range_server.py in a process of its own (GDAL may hold the GIL while it waits for an
    answer, so a server thread in this process could never give one), on 127.0.0.1.

    ``requests``: (method, path, Range header or None, bytes sent) per request so far.
    """

    def __init__(self, folder: Path):
        import subprocess
        import sys

        self.log = folder.parent / "requests.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("range_server.py")), str(folder), str(self.log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()

    @property
    def requests(self) -> list[tuple]:
        import json

        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def http_folder(tmp_path):
    """(folder, server): files put in the folder are served at server.url on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = RangeServer(folder)
    yield folder, server
    server.close()


@pytest.fixture
def s3_bucket(monkeypatch):
    """An S3 bucket on a local moto server (127.0.0.1, its own process, ending itself after ten
    minutes at most); fsspec and GDAL pointed at it. Yields the bucket's s3:// URL."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("moto")
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("s3fs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    if shutil.which("timeout"):
        cmd = ["timeout", "600"] + cmd
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "ROOFSEG_STAGING": str(Path(tempfile.mkdtemp())),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    try:
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
        for _ in range(100):
            try:
                fs.mkdir("roofseg-test")
                break
            except Exception:  # not up yet
                time.sleep(0.1)
        yield "s3://roofseg-test"
    finally:
        server.terminate()
        server.wait(timeout=10)
