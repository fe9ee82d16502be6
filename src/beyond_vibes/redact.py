"""Secret values never leave the process: every logged text passes through `Redactor`, every shown URI `safe_uri`."""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "***"
# scheme://userinfo@ : the userinfo of a URI (user:password, or a token as the user name) is a credential.
USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#@]+@")


def safe_uri(text: str, drop: bool = False) -> str:
    """A URI (or any text holding URIs) as it may be shown: `http://user:pw@host:5000` -> `http://***@host:5000`
    (`drop`: `http://host:5000`, a link to click, where the browser asks for the credentials)."""
    return USERINFO.sub(r"\g<scheme>" if drop else rf"\g<scheme>{MASK}@", text) if text else text


def uri_password(uri: str | None) -> str | None:
    """The password in a URI's userinfo (`postgresql://u:pw@h/db` -> pw), percent-decoded; None when it has none."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(uri or "").password
    except ValueError:
        return None
    return unquote(password) if password else None


class Redactor:
    def __init__(self, secrets: list[str]):
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for s in self.secrets:
            if s in value:
                value = value.replace(s, MASK)
        # A credential in a URI is one even when it is not a secret we know of (a judge or S3 endpoint's userinfo).
        return safe_uri(value) if "@" in value else value

    def data(self, value: Any) -> Any:
        """Redact any JSON-like structure (by round-tripping through its JSON text)."""
        if value is None or isinstance(value, (int, float, bool)):
            return value
        if isinstance(value, str):
            return self.text(value)
        raw = json.dumps(value, default=str)
        clean = self.text(raw)
        return value if clean == raw else json.loads(clean)
