"""HTTP handlers: GET /notes, GET /notes/<id>, POST /notes (body: the note's text)."""

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from notes.config import load_config
from notes.storage import NoteStore

log = logging.getLogger("notes")


class NotesHandler(BaseHTTPRequestHandler):
    store: NoteStore
    max_chars: int

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/notes":
            return self._send(200, self.store.all())
        if self.path.startswith("/notes/"):
            note = self.store.get(int(self.path.rsplit("/", 1)[1]))
            return self._send(200, {"text": note}) if note is not None else self._send(404, {"error": "no such note"})
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/notes":
            return self._send(404, {"error": "not found"})
        text = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if len(text) > self.max_chars:
            log.warning("note too long: %d chars", len(text))
            return self._send(413, {"error": "note too long"})
        self._send(201, {"id": self.store.add(text)})


def make_server(config=None) -> ThreadingHTTPServer:
    config = config or load_config()
    handler = type("Handler", (NotesHandler,), {"store": NoteStore(config.data_file), "max_chars": config.max_note_chars})
    return ThreadingHTTPServer(("127.0.0.1", config.port), handler)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    make_server().serve_forever()
