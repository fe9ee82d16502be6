"""Errors a user can act on: the CLI turns each into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing pydantic costs ~0.1 s; the CLI's fast paths do not need it
    from pydantic import ValidationError


class ConfigError(Exception):
    """Bad input (a config file, a name, an option): one line that says where, what and how to fix it."""


class SimulationError(Exception):
    """A simulation could not run to the end (the server did not start, the agent could not launch...)."""


def validation_message(source: str | Path, err: ValidationError) -> str:
    """One line per pydantic error, `file: field.path: problem`; the first one is what users see."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif e["type"] == "missing":
            msg = "field required"
        elif e["type"] == "enum":
            expected = (e.get("ctx") or {}).get("expected", "")
            msg = f"{e.get('input')!r} is not one of {expected.replace(chr(39), '').replace(' or ', ', ')}"
        parts.append(f"{source}: {loc}: {msg}")
    return parts[0] if len(parts) == 1 else parts[0] + f" (and {len(parts) - 1} more problem(s))"
