"""Notes kept in one JSON file; writes go through a temp file so a crash never leaves half a file."""

import json
import os
import threading


class NoteStore:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict:
        if not os.path.exists(self.path):
            return {}
        with open(self.path) as f:
            return json.load(f)

    def add(self, text: str) -> int:
        with self._lock:
            notes = self._read()
            note_id = max(map(int, notes), default=0) + 1
            notes[str(note_id)] = text
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(notes, f)
            os.replace(tmp, self.path)
            return note_id

    def get(self, note_id: int) -> str | None:
        return self._read().get(str(note_id))

    def all(self) -> dict:
        return self._read()
