"""The run key: what makes two simulations the same experiment cell (a sweep skips FINISHED keys)."""

from __future__ import annotations

import hashlib
import json


def run_key(*, task: str, task_sha256: str, repo_commit: str, model: str, quant: str | None, model_sha256: str,
            engine: dict, agent: str, agent_version: str, repeat: int, seed: int | None) -> str:
    payload = json.dumps(
        [task, task_sha256, repo_commit, model, quant, model_sha256, engine, agent, agent_version, repeat, seed],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
