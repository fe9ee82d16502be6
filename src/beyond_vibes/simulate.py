"""One simulation end to end: workspace, model server, recording proxy, agent, checks, MLflow record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.agents import AgentEndpoint, AgentJob, get_agent
from beyond_vibes.catalog import EngineConfig, Model
from beyond_vibes.checks import CheckResult, run_checks
from beyond_vibes.recorder import SimulationRecord, TraceRecorder
from beyond_vibes.redact import Redactor
from beyond_vibes.runkey import run_key
from beyond_vibes.runtime import get_runtime
from beyond_vibes.runtime.proxy import DUMMY_KEY, RecordingProxy
from beyond_vibes.sandbox import local_repository, workspace
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel
from beyond_vibes.store.resolve import resolve_model
from beyond_vibes.tasks import Task
from beyond_vibes.tracking import tracking_client


@dataclass
class SimulateOptions:
    prompt_vars: dict[str, str] = field(default_factory=dict)
    max_turns: int | None = None
    timeout_s: float | None = None
    agent: str = "pi"
    engine: EngineConfig | None = None  # overrides the model's own
    repeat: int = 0
    experiment: str | None = None
    keep_workspace: bool = False


@dataclass
class SimulationResult:
    run_id: str
    trace_id: str | None
    status: str
    error: str | None
    task: str
    model: str
    quant: str | None
    metrics: dict[str, float]
    checks: list[CheckResult]
    final_message: str = ""
    workspace: Path | None = None  # only when kept (--keep-workspace)


def decide_status(timed_out: bool, agent_error: str | None, checks: list[CheckResult]) -> str:
    if timed_out:
        return N.STATUS_TIMEOUT
    if agent_error:
        return N.STATUS_ERROR
    return N.STATUS_SUCCESS if all(c.passed for c in checks) else N.STATUS_FAILED


def simulate(task: Task, model: Model, quant: str | None, settings: Settings, options: SimulateOptions | None = None,
             models_dir: Path | None = None, resolved: ResolvedModel | None = None) -> SimulationResult:
    opts = options or SimulateOptions()
    # Everything that bad input can break is checked before an MLflow run exists: no run is left RUNNING.
    prompt = task.render_prompt(opts.prompt_vars)
    max_turns = opts.max_turns or task.max_turns
    timeout_s = opts.timeout_s or task.timeout_s
    engine = opts.engine or model.engine
    resolved = resolved or resolve_model(model, quant, settings, base_dir=models_dir)
    runtime = get_runtime("process" if model.is_local else "api", settings)
    agent = get_agent(opts.agent, settings)
    agent_version = agent.version()
    runtime.preflight(resolved)
    local_repository(task)

    client, experiment_id = tracking_client(settings, opts.experiment)
    recorder = TraceRecorder(client, experiment_id, Redactor(settings.secret_values()))
    tags = {
        N.TAG_TASK: task.name, N.TAG_ARCHETYPE: task.archetype.value, N.TAG_MODEL: model.name,
        N.TAG_FAMILY: model.family, N.TAG_QUANT: quant or "api", N.TAG_ENGINE: engine.engine.value if model.is_local else "api",
        N.TAG_RUNTIME: runtime.name, N.TAG_AGENT: agent.name, N.TAG_REPEAT: str(opts.repeat),
        N.TAG_PROVIDER: model.provider, N.TAG_STATUS: "running",
    }
    run_id = recorder.start_run(f"{task.name} · {model.name} · {quant or 'api'}", tags)
    rec = SimulationRecord(prompt=prompt, started_at=time.time())
    kept = None
    terminal = "FINISHED"
    try:
        recorder.log_params(run_id, {
            N.PARAM_TEMPERATURE: model.sampling.temperature, N.PARAM_SEED: model.sampling.seed,
            N.PARAM_MAX_TURNS: max_turns, N.PARAM_TIMEOUT_S: timeout_s, N.PARAM_MODEL_SHA256: resolved.sha256,
            N.PARAM_MODEL_SOURCE: resolved.source, N.PARAM_MODEL_REVISION: resolved.revision or None, N.PARAM_MODEL_FILE: resolved.path.name if resolved.path else model.model_id,
            N.PARAM_AGENT_VERSION: agent_version, N.PARAM_TASK_FILE_SHA256: task.file_sha256,
            N.PARAM_CTX: engine.ctx if model.is_local else model.context_window,
        })
        with workspace(task, keep=opts.keep_workspace) as ws:
            kept = ws.root if opts.keep_workspace else None
            key = run_key(task=task.name, task_sha256=task.file_sha256, repo_commit=ws.commit, model=model.name,
                          quant=quant, model_sha256=resolved.sha256, engine=engine.model_dump(mode="json"),
                          agent=agent.name, agent_version=agent_version, repeat=opts.repeat, seed=model.sampling.seed)
            tags[N.TAG_RUN_KEY] = key
            recorder.set_tags(run_id, {N.TAG_RUN_KEY: key})
            recorder.log_params(run_id, {N.PARAM_REPO_COMMIT: ws.commit})
            with runtime.serve(resolved, engine) as server:
                rec.load_s = server.load_s
                recorder.log_params(run_id, {N.PARAM_LLAMA_BUILD: server.build,
                                             N.PARAM_ENGINE_ARGS: " ".join(server.engine_args)})
                ctx = engine.ctx if model.is_local else model.context_window
                endpoint_max = model.sampling.max_tokens or min(4096, ctx // 2)
                try:
                    with RecordingProxy(server.base_url, server.model_id, model.sampling, server.api_key) as proxy:
                        endpoint = AgentEndpoint(proxy.base_url, server.model_id, DUMMY_KEY, ctx, endpoint_max)
                        job = AgentJob(workspace=ws.repo, scratch=ws.root, prompt=prompt, system_prompt=task.system_prompt,
                                       tools=task.tools, max_turns=max_turns, timeout_s=timeout_s, env=ws.env)
                        try:
                            rec.agent = agent.run(job, endpoint)
                        finally:
                            rec.proxy_records = list(proxy.records)
                finally:
                    rec.peak_rss_mb, rec.peak_vram_mb = server.peak_rss_mb(), server.peak_vram_mb()
                    if server.log_path and server.log_path.exists():
                        rec.server_log = server.log_path.read_text(errors="replace")
            rec.diff = ws.diff()
            rec.checks = run_checks(task.checks, ws.repo, ws.env)
        a = rec.agent
        rec.status = decide_status(a.timed_out, a.error if a.stop_reason == "error" else None, rec.checks)
        if a.stop_reason == "error":
            rec.error = f"agent reported a model error: {a.error}"
        elif a.timed_out:
            rec.error = f"agent timed out after {timeout_s:.0f}s"
    except KeyboardInterrupt:
        rec.status, rec.error, terminal = N.STATUS_ERROR, "interrupted (Ctrl-C)", "KILLED"
        raise
    except Exception as e:  # recorded on the run, then re-raised for the caller to report
        rec.status, rec.error, terminal = N.STATUS_ERROR, f"{type(e).__name__}: {e}", "FAILED"
        raise
    finally:
        rec.ended_at = time.time()
        rec.cost_usd = model.pricing.cost(sum(p.prompt_tokens for p in rec.completions),
                                          sum(p.completion_tokens for p in rec.completions), rec.ended_at - rec.started_at)
        metrics, trace_id = recorder.finish(run_id, rec, tags, terminal)
    return SimulationResult(run_id, trace_id, rec.status, rec.error, task.name, model.name, quant, metrics, rec.checks,
                            rec.agent.final_text if rec.agent else "", kept)
