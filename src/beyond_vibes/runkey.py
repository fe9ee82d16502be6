"""The run key: what makes two simulations the same experiment cell (a sweep skips FINISHED keys)."""

from __future__ import annotations

import hashlib
import json


def run_key(**parts) -> str:
    """sha256 of everything that changes an outcome, given by name: task name and file sha256, the rendered
    prompt (prompt vars included), repo commit, model, quant, model file and chat template sha256, engine config,
    runtime, llama.cpp build, sampling, max turns, timeout, agent name and version, repeat index.
    Computed before the MLflow run exists, so a resume can look it up first."""
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
