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
