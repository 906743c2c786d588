"""The review's HTTP server: its page, map tiles, the buildings, decisions and exports, on
127.0.0.1 by default.

Security: a token made at each start is in the page's URL; every request but the page's static
files must carry it (a query parameter, or the ``X-Roofseg-Token`` header for decisions), so
another page open in the same browser cannot read the review or post decisions. Only the scenes
and footprints given at start and the files of ``static/`` are served; no path from a request is
ever opened. A bad request gets a 4xx with a message, and the server goes on.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import secrets
import sys
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from roofseg.review.export import FORMATS, write_accepted
from roofseg.review.queue import Building, Pair, feature, ordered, paths_of, read_pairs
from roofseg.review.store import DECISIONS, DecisionStore
from roofseg.review.tiles import SceneTiles

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_HEADER = "X-Roofseg-Token"
MAX_BODY = 64 * 1024
CONTENT_TYPES = {
    ".osm": "application/xml",
    ".geojson": "application/geo+json",
    ".gpkg": "application/geopackage+sqlite3",
}


class Review:
    """What one review serves: the buildings in order, their decisions, the scenes' tiles."""

    def __init__(self, pairs: list[Pair], store: str | Path, order: str = "confidence", existing: str | None = None):
        self.buildings: list[Building] = ordered(read_pairs(pairs), order)
        self.keys = {b.key for b in self.buildings}
        self.tiles = [SceneTiles(p.scene) for p in pairs]
        self.store = DecisionStore(store, paths_of(pairs))
        self.existing = existing
        self.token = secrets.token_urlsafe(24)

    def state(self) -> dict:
        decisions = self.store.decisions()
        return {
            "buildings": {
                "type": "FeatureCollection",
                "features": [feature(b, decisions.get(b.key)) for b in self.buildings],
            },
            "scenes": [{"bounds": list(t.bounds), "minzoom": t.minzoom, "maxzoom": t.maxzoom} for t in self.tiles],
            "reviewed": sum(1 for k in decisions if k in self.keys),
        }

    def export(self, suffix: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="roofseg-review-") as tmp:
            out = Path(tmp) / f"accepted{suffix}"
            write_accepted(self.buildings, self.store.decisions(), out, self.existing)
            return out.read_bytes()

    def close(self) -> None:
        for t in self.tiles:
            t.close()
        self.store.close()


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, *args):  # the terminal shows the URL and errors, not every tile
        pass

    # -- answers ------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if content_type.startswith("application/json") else "max-age=60")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _authorised(self, query: dict) -> bool:
        given = self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.server.review.token.encode())

    # -- routes -------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _answer(self, route) -> None:
        try:
            route()
        except ConnectionError:  # the browser left (a tile of a view it moved away from): nobody to answer
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 — one bad request never stops the review
            try:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            except ConnectionError:
                self.close_connection = True

    def _get(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        if not parts or parts == ["index.html"]:
            # the page alone, without the token: it reads it from its own URL, which only the reviewer has
            return self._send(HTTPStatus.OK, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
        if parts[0] == "static":
            return self._static(parts[1:])
        if not self._authorised(query):
            return self._error(HTTPStatus.FORBIDDEN, "this review's token is missing or wrong: open the URL it printed")
        if parts == ["api", "review"]:
            return self._json(HTTPStatus.OK, self.server.review.state())
        if parts[0] == "tiles" and len(parts) == 5:
            return self._tile(parts[1:])
        if len(parts) == 1 and parts[0].startswith("export."):
            suffix = "." + parts[0].split(".", 1)[1]
            if suffix not in FORMATS:
                return self._error(HTTPStatus.NOT_FOUND, f"exports are {', '.join(FORMATS)}")
            body = self.server.review.export(suffix)
            name = {"Content-Disposition": f'attachment; filename="accepted{suffix}"'}
            return self._send(HTTPStatus.OK, body, CONTENT_TYPES[suffix], name)
        return self._error(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")

    def _static(self, parts: list[str]) -> None:
        # only names of files that exist under static/: no path from the request is opened as it is
        known = {str(p.relative_to(STATIC)): p for p in STATIC.rglob("*") if p.is_file()}
        path = known.get("/".join(parts))
        if path is None:
            return self._error(HTTPStatus.NOT_FOUND, "no such file")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return self._send(HTTPStatus.OK, path.read_bytes(), kind)

    def _tile(self, parts: list[str]) -> None:
        try:
            k, z, x = (int(v) for v in parts[:3])
            y = int(parts[3].removesuffix(".png"))
        except ValueError:
            return self._error(HTTPStatus.BAD_REQUEST, "a tile is /tiles/SCENE/Z/X/Y.png, all whole numbers")
        tiles = self.server.review.tiles
        if not 0 <= k < len(tiles) or not 0 <= z <= 24:
            return self._error(HTTPStatus.NOT_FOUND, "no such scene or zoom")
        png = tiles[k].png(z, x, y)
        if png is None:
            return self._send(HTTPStatus.NO_CONTENT, b"", "image/png")
        return self._send(HTTPStatus.OK, png, "image/png")

    def _post(self) -> None:
        url = urlparse(self.path)
        if not self._authorised(parse_qs(url.query)):
            return self._error(HTTPStatus.FORBIDDEN, "this review's token is missing or wrong: open the URL it printed")
        if url.path != "/api/decide":
            return self._error(HTTPStatus.NOT_FOUND, f"no such action: {url.path}")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._error(HTTPStatus.BAD_REQUEST, "a decision is a small JSON body")
        try:
            doc = json.loads(self.rfile.read(length))
            key, decision = doc["key"], doc.get("decision")
        except (ValueError, KeyError, TypeError):
            return self._error(HTTPStatus.BAD_REQUEST, 'a decision is {"key": "...", "decision": "accept"}')
        review = self.server.review
        if key not in review.keys:
            return self._error(HTTPStatus.NOT_FOUND, f"no building {key!r} in this review")
        if decision is not None and decision not in DECISIONS:
            return self._error(HTTPStatus.BAD_REQUEST, f"a decision is one of {', '.join(DECISIONS)}, or null")
        review.store.decide(key, decision)
        reviewed = sum(1 for k in review.store.decisions() if k in review.keys)
        return self._json(HTTPStatus.OK, {"key": key, "decision": decision, "reviewed": reviewed})


class ReviewServer(ThreadingHTTPServer):
    """A :class:`Review` served over HTTP at ``host``:``port`` (0: a free port)."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # a client gone while its request was read is no fault; anything else is said as http.server says it
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, review: Review, host: str = "127.0.0.1", port: int = 0):
        self.review = review
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?token={self.review.token}"

    def start(self) -> threading.Thread:
        """Serve on a thread of its own (tests, notebooks); :meth:`stop` ends it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.review.close()
