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


def planned_parts(model, quant: str | None, model_sha256: str | None, engine, build: str | None, image: str | None,
                  chat_template_sha256: str | None) -> dict:
    """The parts of a configuration as planned (before, or without, a server: a group whose server did not start)."""
    local = model.is_local
    return {"model": model.name, "model_sha256": model_sha256 or None, "quant": quant or "api",
            "engine": engine.engine.value if local else "api", "runtime": engine.runtime if local else "api",
            "llama_build": build if local else None, "image": image,
            "engine_flags": engine.flags() if local else {"base_url": model.base_url, "model_id": model.model_id},
            "chat_template_sha256": chat_template_sha256,
            # The seed is a draw, not a configuration: runs that differ only in it pair up (task, seed, repeat).
            "sampling": {k: v for k, v in model.sampling.model_dump(mode="json").items() if k != "seed"}}


def served_parts(served) -> dict:
    """The served model's parts (a `serving.ServedModel`). The build is the binary's (`--version` and sha256, known
    before serving, so a group that failed to start has the same id), or for a container the image digest."""
    server = served.server
    parts = planned_parts(served.model, served.quant, served.resolved.sha256, served.engine,
                          server.binary if server.binary else None, server.image, served.chat_template_sha256)
    if served.model.is_local:
        parts["engine"], parts["runtime"] = served.engine_name, served.runtime
    return parts


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


def engine_build(settings, engine, spec) -> str:
    """The build that will serve `engine`, known before anything starts (a quick eval's re-use key and a sweep
    cell's key need it): the process runtime's llama-server (`--version` and sha256), or the container image as
    the engine spec names it."""
    if engine.runtime == "container":
        return f"image:{spec.image if spec is not None and spec.image else 'default'}"
    from beyond_vibes.runtime.process import ProcessRuntime, binary_build

    return binary_build(ProcessRuntime(settings).binary(engine, spec))
