"""A small threaded HTTP server on a free loopback port, alive for a `with` block (proxy, test doubles)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer



class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive (agents reuse connections) and no per-request lines on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass


class LoopbackServer:
    """Subclasses set `handler` (a BaseHTTPRequestHandler class); each handler instance gets `.owner`."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self):
        self.port = 0  # the kernel picks a free port when we bind (no race with other runs)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        bound = type(self.handler.__name__, (self.handler,), {"owner": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), bound)
        self.port = self._server.server_address[1]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)


def send_json(handler: BaseHTTPRequestHandler, status: int, obj, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(obj).encode()
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
