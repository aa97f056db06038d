"""The customer's site for browser tests: a plain HTTP server on its own port (another origin
than Edgeflags, on the loopback like it, since Chromium's Private Network Access forbids a
public page to call the loopback). It serves the pages a test gives it and, under /m/, the
test dependencies in node_modules (the OpenFeature SDKs as ES modules)."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NODE_MODULES = Path(__file__).parents[2] / "node_modules"


@contextmanager
def shop_server(pages: Mapping[str, str]) -> Iterator[str]:
    """Serve `pages` (path -> HTML) and /m/<node_modules path>; yields the origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/favicon.ico":
                self._send(204, "image/x-icon", b"")
                return
            if path in pages:
                self._send(200, "text/html", pages[path].encode())
                return
            if path.startswith("/m/"):
                file = (NODE_MODULES / path[3:]).resolve()
                if file.is_relative_to(NODE_MODULES.resolve()) and file.is_file():
                    kind = "text/javascript" if file.suffix in (".js", ".mjs") else None
                    kind = kind or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    self._send(200, kind, file.read_bytes())
                    return
            self._send(404, "text/plain", b"not found")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
