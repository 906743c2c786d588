"""`python tests/range_server.py FOLDER LOG`: serve FOLDER on 127.0.0.1 with HTTP range requests.

Prints its URL, appends one JSON line per request to LOG ([method, path, Range or null, bytes
sent]), and ends by itself after ten minutes if nobody stops it.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
from pathlib import Path

LIFETIME_S = 600


def main() -> None:
    folder, log = Path(sys.argv[1]), Path(sys.argv[2])
    lock = threading.Lock()

    def record(*entry) -> None:
        with lock, log.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _file(self):
            path = folder / self.path.split("?", 1)[0].lstrip("/")
            if not path.is_file():
                self.send_error(404)
                record(self.command, self.path, self.headers.get("Range"), 0)
                return None
            return path

        def do_HEAD(self):
            path = self._file()
            if path:
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                record("HEAD", self.path, None, 0)

        def do_GET(self):
            path = self._file()
            if not path:
                return
            size = path.stat().st_size
            ranged = self.headers.get("Range")
            start, end = 0, size - 1
            if ranged:
                first, _, last = ranged.split("=", 1)[1].split(",")[0].partition("-")
                start, end = int(first), min(int(last) if last else size - 1, size - 1)
            with path.open("rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            if ranged:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.write(body)
            record("GET", self.path, ranged, len(body))

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Timer(LIFETIME_S, httpd.shutdown).start()
    print(f"http://127.0.0.1:{httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
