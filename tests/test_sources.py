"""Models named by a pinned URL or as ``base``: downloaded once, checked, nothing wrong kept."""

from __future__ import annotations

import hashlib

import pytest

from roofseg import sources
from roofseg.errors import RoofsegError

from conftest import one_error_line


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ROOFSEG_CACHE", str(folder))
    return folder


def served_model(folder, name="base.keras", size=300_000) -> tuple[bytes, str]:
    data = bytes(range(256)) * (size // 256)
    (folder / name).write_bytes(data)
    return data, hashlib.sha256(data).hexdigest()


def leftovers(cache) -> list[str]:
    return [p.name for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_a_pinned_url_is_downloaded_once_and_checked(http_folder, cache):
    folder, server = http_folder
    data, sha = served_model(folder)
    url = f"{server.url}/base.keras#sha256={sha}"
    path = sources.model_file(url)
    assert open(path, "rb").read() == data and path.startswith(str(cache))
    gets = [r for r in server.requests if r[0] == "GET"]
    assert sources.model_file(url) == path
    assert [r for r in server.requests if r[0] == "GET"] == gets  # the second time, from the cache


def test_a_wrong_pin_or_a_cut_short_download_is_refused_leaving_nothing(http_folder, cache):
    folder, server = http_folder
    data, sha = served_model(folder)
    with pytest.raises(RoofsegError, match="not the pinned one") as err:
        sources.model_file(f"{server.url}/base.keras#sha256={'0' * 64}")
    assert "\n" not in str(err.value) and leftovers(cache) == []
    (folder / "base.keras").write_bytes(data[: len(data) // 3])  # the server has only part of it
    with pytest.raises(RoofsegError, match="cut-short"):
        sources.model_file(f"{server.url}/base.keras#sha256={sha}")
    assert leftovers(cache) == []
    with pytest.raises(RoofsegError, match="download failed"):
        sources.model_file(f"{server.url}/missing.keras#sha256={sha}")
    assert leftovers(cache) == []


def test_an_unpinned_url_is_refused(cache):
    with pytest.raises(RoofsegError, match="pinned by its SHA-256"):
        sources.model_file("https://example.org/base.keras")
    with pytest.raises(RoofsegError, match="pinned"):
        sources.model_file("https://example.org/base.keras#sha256=abc")


def test_a_pinned_model_in_a_bucket(s3_bucket, tmp_path, cache):
    import fsspec

    data = b"model bytes" * 1000
    with fsspec.open(f"{s3_bucket}/team/base.keras", "wb") as f:
        f.write(data)
    path = sources.model_file(f"{s3_bucket}/team/base.keras#sha256={hashlib.sha256(data).hexdigest()}")
    assert open(path, "rb").read() == data


def test_a_path_is_taken_as_it_is(tmp_path):
    assert sources.model_file(tmp_path / "m.keras") == str(tmp_path / "m.keras")


def test_a_wrong_pin_is_one_line_at_the_command_line(http_folder, cache, run_cli, tmp_path):
    folder, server = http_folder
    served_model(folder)
    result = run_cli("predict", f"{server.url}/base.keras#sha256={'1' * 64}", "scene.tif", str(tmp_path / "o.tif"))
    line = one_error_line(result)
    assert "base.keras" in line and "pinned" in line and leftovers(cache) == []


def test_a_chunked_download_cut_short_is_one_line_leaving_nothing(cache):
    """The server promises a chunk it never sends and closes: urllib raises IncompleteRead, which is
    no OSError."""
    import http.server
    import threading

    class CutShort(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"400\r\n" + b"x" * 10)  # 1024 bytes promised, 10 sent
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/m.keras#sha256={'0' * 64}"
        with pytest.raises(RoofsegError, match="download failed"):
            sources.model_file(url)
        assert leftovers(cache) == []
    finally:
        server.shutdown()
        server.server_close()


def test_a_killed_download_or_expansion_leaves_nothing_the_next_run_keeps(cache, tmp_path, monkeypatch):
    """What a killed process left in the cache (its temporaries carry its process id) and in its
    scratch folder is removed by the next run; nothing is left in TMPDIR."""
    import subprocess
    import sys
    import time

    scratch_tmp = tmp_path / "tmpdir"
    scratch_tmp.mkdir()
    env = {**__import__("os").environ, "ROOFSEG_CACHE": str(cache), "TMPDIR": str(scratch_tmp)}
    code = "from roofseg.sources import shipped_base; shipped_base()"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if any(".partial" in p.name for p in cache.rglob("*")) or any(scratch_tmp.iterdir()):
            time.sleep(0.3)  # well inside the expansion
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    monkeypatch.setenv("TMPDIR", str(scratch_tmp))
    path = sources.model_file("base")
    assert sorted(p.name for p in cache.rglob("*")) == ["base", __import__("os").path.basename(path)]
    assert list(scratch_tmp.iterdir()) == []
