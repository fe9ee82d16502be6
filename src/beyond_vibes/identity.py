"""A configuration's identity: everything about how a model was served and driven that can change an outcome, as
readable parts and one hash of them.

Two ids, one for each question:
- the served id (`bv.served_id`): the model file, quant, engine and runtime, the llama.cpp build (`llama-server
  --version` for a process, the image digest for a container), the engine flags actually passed, the chat template
  and the sampling. A speed reference and a quick eval are matched on it.
- the config id (`bv.config_id`): the served parts plus the agent, its version and the turn limit. The report
  compares simulations by it: two runs that differ in any part are two rows, never pooled.

The parts are logged as the param `config_identity` (JSON), so a report can say what differs between two rows.
"""

from __future__ import annotations

import hashlib
import json

ID_CHARS = 12


def _hash(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:ID_CHARS]


def served_parts(served) -> dict:
    """The served model's parts (a `serving.ServedModel`)."""
    m, server = served.model, served.server
    local = m.is_local
    return {"model": m.name, "model_sha256": served.resolved.sha256 or None, "quant": served.quant or "api",
            "engine": served.engine_name, "runtime": served.runtime,
            "llama_build": server.build if local else None, "image": server.image,
            "engine_flags": served.engine.flags() if local else {"base_url": m.base_url, "model_id": m.model_id},
            "chat_template_sha256": served.chat_template_sha256,
            # The seed is a draw, not a configuration: runs that differ only in it pair up (task, seed, repeat).
            "sampling": {k: v for k, v in m.sampling.model_dump(mode="json").items() if k != "seed"}}


def config_parts(served, agent: str, agent_version: str, max_turns: int) -> dict:
    return {**served_parts(served), "agent": agent, "agent_version": agent_version, "max_turns": max_turns}


def served_id(parts: dict) -> str:
    return _hash({k: parts[k] for k in served_keys(parts)})


def config_id(parts: dict) -> str:
    return _hash(parts)


def served_keys(parts: dict) -> list[str]:
    return [k for k in parts if k not in ("agent", "agent_version", "max_turns")]


def identity_tags(parts: dict) -> dict[str, str]:
    """The run's tags: both ids."""
    from beyond_vibes import names as N

    tags = {N.TAG_SERVED_ID: served_id(parts)}
    if "agent" in parts:
        tags[N.TAG_CONFIG_ID] = config_id(parts)
    return tags


def identity_param(parts: dict) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two configurations' parts, readably ("engine_flags.batch: 2048 -> 256")."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{key}.{d}" for d in differences(va, vb)]
        else:
            out.append(f"{key}: {_short(va)} -> {_short(vb)}")
    return out


def _short(v) -> str:
    text = "absent" if v is None else (v if isinstance(v, str) else json.dumps(v, sort_keys=True))
    return text if len(text) <= 40 else text[:16] + "…" + text[-8:]
