"""A configuration's identity: everything about how a model was served and driven that can change an outcome, as
readable parts and one hash of them.

Two ids, one for each question:
- the served id (`bv.served_id`): the model file, quant, engine and runtime, the llama.cpp build (`llama-server
  --version` and sha256 for a process, the image digest for a container), the engine flags actually passed, the chat
  template and the sampling. A speed reference is matched on it.
- the config id (`bv.config_id`): the served parts plus, for a simulation, the agent, its version and the turn limit.
  The report compares runs by it: two runs that differ in any part are two rows, never pooled. A quick eval or a
  speed run has no agent: its config id is its served id.

The parts are logged as the param `config_identity` (JSON), so a report can say what differs between two rows.
"""

from __future__ import annotations

import hashlib
import json

ID_CHARS = 12


def _hash(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:ID_CHARS]


def planned_parts(model, quant: str | None, model_sha256: str | None, engine, build: str | None, image: str | None,
                  chat_template_sha256: str | None, adapter: dict | None = None) -> dict:
    """The parts of a configuration as planned (before, or without, a server: a group whose server did not start).
    `adapter`: the LoRA adapter's name, sha256 and scale (`ResolvedAdapter.identity`); a base model has none."""
    local = model.is_local
    parts = {"model": model.name, "model_sha256": model_sha256 or None, "quant": quant or "api",
             "engine": engine.engine.value if local else "api", "runtime": engine.runtime if local else "api",
             "llama_build": build if local else None, "image": image,
             "engine_flags": engine.flags() if local else {"base_url": model.base_url, "model_id": model.model_id},
             "chat_template_sha256": chat_template_sha256,
             # The seed is a draw, not a configuration: runs that differ only in it pair up (task, seed, repeat).
             "sampling": {k: v for k, v in model.sampling.model_dump(mode="json").items() if k != "seed"}}
    if adapter is not None:  # only when there is one: a base model's ids stay what they were before adapters
        parts["adapter"] = adapter
    return parts


def served_parts(served) -> dict:
    """The served model's parts (a `serving.ServedModel`). The build is the binary's (`--version` and sha256, known
    before serving, so a group that failed to start has the same id), or for a container the image digest."""
    server = served.server
    parts = planned_parts(served.model, served.quant, served.resolved.sha256, served.engine,
                          server.binary if server.binary else None, server.image, served.chat_template_sha256,
                          adapter_identity(served.resolved))
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

    return {N.TAG_SERVED_ID: served_id(parts), N.TAG_CONFIG_ID: config_id(parts)}


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


def planned_build(settings, model, engine, spec) -> tuple[str | None, str | None]:
    """(build, image) that will serve `model` on `engine`, known before anything starts, exactly as a started server
    records them: the process runtime's llama-server (`--version` and sha256), or the container image's digest
    (after preflight, which pulled it). An API model has neither."""
    if not model.is_local:
        return None, None
    if engine.runtime == "container":
        from beyond_vibes.runtime.container import ContainerRuntime

        image = ContainerRuntime(settings).image(spec)
        return None, (image.attrs.get("RepoDigests") or [None])[0] or image.id
    from beyond_vibes.runtime.process import ProcessRuntime, binary_build

    return binary_build(ProcessRuntime(settings).binary(engine, spec)), None


def engine_build(settings, model, engine, spec) -> str:
    """The build as one string, for keys (a quick eval's re-use key, a sweep cell's key): a rebuilt binary or a
    re-pulled image changes it."""
    if not model.is_local:  # two models behind one endpoint are two configurations
        return f"api:{model.base_url}#{model.model_id}"
    build, image = planned_build(settings, model, engine, spec)
    return build or f"image:{image}"


def planned_identity(settings, model, quant: str | None, resolved, engine, spec, sampling=None) -> dict:
    """The served parts of a configuration before (or without) a server: the same parts, and so the same ids, as
    `served_parts` gives once it runs. `sampling` overrides the model's (a quick-eval set may pin its own)."""
    build, image = planned_build(settings, model, engine, spec)
    if sampling is not None:
        model = model.model_copy(update={"sampling": sampling})
    return planned_parts(model, quant, resolved.sha256, engine, build, image, resolved.chat_template_sha256,
                         adapter_identity(resolved))


def adapter_identity(resolved) -> dict | None:
    return resolved.adapter.identity() if resolved.adapter is not None else None


def adapter_tags(resolved) -> dict[str, str]:
    """`bv.adapter` when a LoRA adapter is served on the model (a run of the base has none)."""
    from beyond_vibes import names as N

    return {N.TAG_ADAPTER: resolved.adapter.name} if resolved.adapter is not None else {}


def adapter_params(resolved) -> dict[str, str]:
    from beyond_vibes import names as N

    a = resolved.adapter
    return {} if a is None else {N.PARAM_ADAPTER_SHA256: a.sha256, N.PARAM_ADAPTER_SOURCE: a.source,
                                 N.PARAM_ADAPTER_SCALE: f"{a.scale:g}"}


def model_label(tags: dict) -> str:
    """A run's model as a row names it: `model+adapter` for a LoRA adapter on it (a variant, its own row)."""
    from beyond_vibes import names as N

    name = tags.get(N.TAG_MODEL) or "?"
    return f"{name}+{tags[N.TAG_ADAPTER]}" if tags.get(N.TAG_ADAPTER) else name
