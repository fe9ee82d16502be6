"""A sweep group whose model server did not start (out of memory, a flag llama-server rejects, a missing image):
one error run per cell, so the configuration counts the failure instead of vanishing from the comparison."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from beyond_vibes import names as N


def record_start_failure(settings, plan, group, cell, experiment: str, models_dir: Path, error: str) -> str:
    """A finished (FAILED) simulation run with status error, the reason, the server log tail as an artifact and the
    configuration's identity as planned; created and ended in one go (signals deferred): never left RUNNING."""
    from mlflow.entities import Param

    from beyond_vibes.identity import adapter_params, adapter_tags, identity_param, identity_tags, planned_identity
    from beyond_vibes.procs import deferred_signals
    from beyond_vibes.redact import Redactor
    from beyond_vibes.serving import owner_tags, preflight
    from beyond_vibes.tracking import tracking_client

    model, engine = group.model, group.engine
    resolved = preflight(model, group.quant, settings, models_dir, None, engine, group.spec)
    parts = {**planned_identity(settings, model, group.quant, resolved, engine, group.spec),
             "agent": plan.agent, "agent_version": _agent_version(settings, plan),
             "max_turns": plan.max_turns or cell.task.max_turns}
    redact = Redactor(settings.secret_values())
    reason = redact.text(f"llama-server did not start: {start_failure_reason(error)}")
    tags = {N.TAG_KIND: "simulation", N.TAG_TASK: cell.task.name, N.TAG_ARCHETYPE: cell.task.archetype.value,
            N.TAG_MODEL: model.name, N.TAG_FAMILY: model.family, N.TAG_QUANT: group.quant or "api",
            N.TAG_ENGINE: parts["engine"], N.TAG_RUNTIME: parts["runtime"], N.TAG_AGENT: plan.agent,
            N.TAG_REPEAT: str(cell.repeat), N.TAG_PROVIDER: model.provider, N.TAG_RUN_KEY: cell.key,
            N.TAG_STATUS: N.STATUS_ERROR, N.TAG_REASON: reason, N.TAG_ERROR: reason, N.TAG_SWEEP: plan.name,
            N.TAG_CELL_KEY: cell.key, **identity_tags(parts), **adapter_tags(resolved), **owner_tags(),
            N.TAG_DESCRIPTION: f"**error**: {reason}\n\nThe model server did not start, so the agent never ran: a hard "
                               "failure of this configuration (see llama-server.log)."}
    seed = cell.seed if cell.seed is not None else model.sampling.seed
    params = {N.PARAM_SEED: seed, N.PARAM_TEMPERATURE: model.sampling.temperature, N.PARAM_MODEL_SHA256: resolved.sha256,
              N.PARAM_ENGINE_CONFIG: engine.name, N.PARAM_ENGINE_FLAGS: json.dumps(engine.flags(), sort_keys=True),
              N.PARAM_LLAMA_BUILD: parts["llama_build"], N.PARAM_CONFIG_IDENTITY: identity_param(parts),
              N.PARAM_TASK_FILE_SHA256: cell.task.file_sha256, **adapter_params(resolved)}
    with deferred_signals():
        client, exp_id = tracking_client(settings, experiment)
        now = int(time.time() * 1000)
        tags = {k: redact.text(str(v)) for k, v in tags.items()}  # nothing logged carries a secret
        run = client.create_run(exp_id, start_time=now, tags=tags,
                                run_name=f"{model.label}:{group.quant or 'api'} · {cell.task.name} · server failed")
        try:
            client.log_batch(run.info.run_id, params=[Param(k, redact.text(str(v))[:6000]) for k, v in params.items()
                                                      if v is not None])
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / N.A_SERVER_LOG).write_text(redact.text(error) + "\n")
                client.log_artifacts(run.info.run_id, tmp)
        finally:
            client.set_terminated(run.info.run_id, "FAILED", end_time=int(time.time() * 1000))
    return run.info.run_id


def start_failure_reason(error: str) -> str:
    """The error's first line, and the log line that says why ("error: invalid argument: --no-such-flag", "failed
    to allocate ... buffer"), so the run's reason names the cause without opening the log."""
    import re

    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return "no error text"
    cause = next((line for line in lines[1:] if re.search(r"\berror\b|invalid|failed|out of memory|cannot|unable",
                                                           line, re.IGNORECASE)), None)
    return (f"{lines[0][:200]} {cause[:200]}" if cause else lines[0][:300])


def _agent_version(settings, plan) -> str:
    from beyond_vibes.agents import get_agent

    return get_agent(plan.agent, settings).version()
