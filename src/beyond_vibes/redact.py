"""Secret values never leave the process: every logged text passes through `Redactor`."""

from __future__ import annotations

import json
from typing import Any

MASK = "***"


class Redactor:
    def __init__(self, secrets: list[str]):
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for s in self.secrets:
            if s in value:
                value = value.replace(s, MASK)
        return value

    def data(self, value: Any) -> Any:
        """Redact any JSON-like structure (by round-tripping through its JSON text)."""
        if not self.secrets or value is None:
            return value
        raw = json.dumps(value, default=str)
        clean = self.text(raw)
        return value if clean == raw else json.loads(clean)
