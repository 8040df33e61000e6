"""A stand-in for the virtual router's metadata service, run inside a test namespace.

Serves CloudStack's paths (``shared/reference/ecosystem.md`` §4) from a JSON file read on
every request, so a test can change the data while the server runs:
``{"meta-data": {"local-hostname": "...", ...}, "user-data": "..."}``.

    python metadata_server.py ADDRESS DATA.json
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    data_file: Path

    def do_GET(self) -> None:
        data = json.loads(self.data_file.read_text())
        meta: dict[str, str] = data.get("meta-data", {})
        path = self.path.split("?", 1)[0]
        body: str | None = None
        if path in ("/latest/meta-data", "/latest/meta-data/"):
            body = "\n".join(meta)
        elif path.startswith("/latest/meta-data/"):
            body = meta.get(path.removeprefix("/latest/meta-data/").rstrip("/"))
        elif path.rstrip("/") == "/latest/user-data":
            body = data.get("user-data")
        if body is None:
            self.send_error(404)
            return
        raw = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        with (self.data_file.parent / "metadata.log").open("a") as log:
            log.write(f"{self.client_address[0]} {format % args}\n")


def main() -> None:
    Handler.data_file = Path(sys.argv[2])
    ThreadingHTTPServer((sys.argv[1], 80), Handler).serve_forever()


if __name__ == "__main__":
    main()
