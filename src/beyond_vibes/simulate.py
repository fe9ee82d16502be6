"""One simulation end to end on a served model: workspace, recording proxy, agent, checks, MLflow record."""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.agents import Agent, AgentEndpoint, AgentJob, AgentResult, get_agent
from beyond_vibes.catalog import EngineConfig, EngineSpec, Model
from beyond_vibes.checks import CheckResult, harness_problem, run_checks, run_setup
from beyond_vibes.confinement import Sandbox, get_sandbox, toolchain_dir, toolchain_id, user_name
from beyond_vibes.procs import deferred_signals, interrupt_reason
from beyond_vibes.identity import (adapter_identity, adapter_params, adapter_tags, config_parts, identity_param,
                                   identity_tags)
from beyond_vibes.runkey import run_key
from beyond_vibes.runtime.proxy import DUMMY_KEY, RecordingProxy
from beyond_vibes.materials import fetch_materials
from beyond_vibes.sandbox import Workspace, local_repository, pin_task, workspace
from beyond_vibes.serving import ServedModel, owner_tags, preflight, serve_model
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel
from beyond_vibes.tasks import Task
from beyond_vibes.record import SimulationRecord, usage_complete
from beyond_vibes.redact import Redactor
from beyond_vibes.tracking import tracking_worker


log = logging.getLogger("beyond_vibes")


@dataclass
class SimulateOptions:
    prompt_vars: dict[str, str] = field(default_factory=dict)
    max_turns: int | None = None
    timeout_s: float | None = None
    agent: str = "pi"
    engine: EngineConfig | None = None  # overrides the model's own (Catalog.engine_for)
    engine_spec: EngineSpec | None = None  # where the engine comes from (Catalog.engine_spec)
    sandbox: str = "auto"  # what confines the agent, its setup and checks: auto (bwrap, else container), bwrap, container, none
    repeat: int | None = None  # a sweep's repeat index; None: an ad-hoc run (paired by start order)
    experiment: str | None = None
    keep_workspace: bool = False
    extra_tags: dict[str, str] = field(default_factory=dict)  # e.g. a sweep's bv.sweep and bv.cell_key


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
    run_key: str = ""
    server_id: str | None = None
    experiment_id: str | None = None


def decide_status(agent: AgentResult | None, server_failure: str | None, checks: list[CheckResult],
                  timeout_s: float) -> tuple[str, str | None]:
    """(status, why). Timeout > error (the model server, the agent process, a model error, a check that could not
    start) > success > failed."""
    if agent is not None and agent.timed_out:
        return N.STATUS_TIMEOUT, f"timed out after {timeout_s:.0f} s"
    if server_failure:
        return N.STATUS_ERROR, server_failure
    if harness := harness_problem(checks):
        return N.STATUS_ERROR, harness
    if agent is not None and (crash := agent.crash()):
        return N.STATUS_ERROR, crash
    if agent is not None and agent.stop_reason == "error":
        return N.STATUS_ERROR, f"the model request failed: {agent.error}"
    return (N.STATUS_SUCCESS, None) if all(c.passed for c in checks) else (N.STATUS_FAILED, None)


@dataclass(frozen=True)
class _Plan:
    prompt: str
    max_turns: int
    timeout_s: float
    agent: Agent
    agent_version: str
    sandbox: Sandbox
    toolchain: str


_warned_none = False


def _plan(task: Task, settings: Settings, opts: SimulateOptions) -> _Plan:
    """Everything about the task, agent and sandbox that bad input can break, before anything starts."""
    global _warned_none
    prompt = task.render_prompt(opts.prompt_vars)
    agent = get_agent(opts.agent, settings)
    version = agent.version()
    if local_repository(task) is None:
        pin_task(task)  # the pinned commit exists somewhere (and is in the mirror cache) before a model loads
    else:
        fetch_materials(task)  # a wrong sha256 is one line before a model loads, whatever the repository
    sandbox = get_sandbox(opts.sandbox)
    if sandbox.name == "none" and not _warned_none:
        _warned_none = True
        log.warning("--sandbox none: the agent runs unconfined as %s: it can read your files and reach any network",
                    user_name(__import__("os").getuid()))
    return _Plan(prompt, opts.max_turns or task.max_turns, float(opts.timeout_s or task.timeout_s), agent, version,
                 sandbox, toolchain_id(toolchain_dir()))


ADHOC = "adhoc"  # bv.repeat of a run outside a sweep: it has no repeat index, and pairs by start order


def simulation_key(task: Task, served: ServedModel, plan: _Plan, commit: str, repeat: int | str, sandbox: str = "bwrap") -> str:
    m = served.model
    return run_key(
        task=task.name, task_sha256=task.file_sha256, prompt=plan.prompt, repo_commit=commit, model=m.name,
        quant=served.quant, model_sha256=served.resolved.sha256, chat_template_sha256=served.chat_template_sha256,
        engine=served.engine.flags() if m.is_local else {"base_url": m.base_url, "model_id": m.model_id},
        image=served.server.image,
        runtime=served.runtime, llama_build=served.server.build, sampling=m.sampling.model_dump(mode="json"),
        max_turns=plan.max_turns, timeout_s=plan.timeout_s, agent=plan.agent.name, agent_version=plan.agent_version,
        repeat=repeat, sandbox=sandbox, toolchain=plan.toolchain, network=task.network,
        # Only with an adapter: a base model's keys stay what they were, so older runs still resume.
        **({"adapter": adapter_identity(served.resolved)} if served.resolved.adapter is not None else {}),
    )


def simulate(task: Task, model: Model, quant: str | None, settings: Settings, options: SimulateOptions | None = None,
             models_dir: Path | None = None, resolved: ResolvedModel | None = None) -> SimulationResult:
    """One simulation on a server of its own (started, recorded and stopped here)."""
    opts = options or SimulateOptions()
    _plan(task, settings, opts)  # fail on bad task input before a model server starts
    engine = opts.engine or model.engine
    resolved = preflight(model, quant, settings, models_dir, resolved, engine, opts.engine_spec)
    tracking_worker(settings)  # the recording process opens the store meanwhile
    with serve_model(model, quant, settings, engine, models_dir, resolved, opts.experiment, opts.engine_spec) as served:
        return run_simulation(task, served, settings, opts)


def run_simulation(task: Task, served: ServedModel, settings: Settings, options: SimulateOptions | None = None) -> SimulationResult:
    """One simulation on an already served model; many may share one server (each has its own proxy)."""
    opts = options or SimulateOptions()
    plan = _plan(task, settings, opts)
    model = served.model
    tracking = tracking_worker(settings)  # the recording process opens the store meanwhile
    started = time.time()  # wall_s, the MLflow run and the trace all span workspace -> checks done
    with workspace(task, keep=opts.keep_workspace, sandbox=plan.sandbox) as ws:
        # An ad-hoc run is its own cell: two of them are two runs (curated apart), never one rerun.
        key = simulation_key(task, served, plan, ws.commit,
                             opts.repeat if opts.repeat is not None else f"adhoc-{uuid.uuid4().hex}", plan.sandbox.name)
        tags = {
            N.TAG_KIND: "simulation", N.TAG_TASK: task.name, N.TAG_ARCHETYPE: task.archetype.value, N.TAG_MODEL: model.name,
            N.TAG_FAMILY: model.family, N.TAG_QUANT: served.quant or "api", N.TAG_ENGINE: served.engine_name,
            N.TAG_RUNTIME: served.runtime, N.TAG_AGENT: plan.agent.name,
            N.TAG_PROVIDER: model.provider, N.TAG_RUN_KEY: key, N.TAG_STATUS: "running", N.TAG_SERVER_ID: served.server_id,
            N.TAG_SANDBOX: plan.sandbox.name,
            **identity_tags(_identity(served, plan)), **adapter_tags(served.resolved), **owner_tags(), **opts.extra_tags,
        }
        tags[N.TAG_REPEAT] = str(opts.repeat) if opts.repeat is not None else ADHOC
        params = _params(task, served, plan, ws, opts)
        run_name = f"{model.label}:{served.quant or 'api'} · {task.name}"
        # The recording process works with this run's settings (its experiment) and our secrets to redact.
        record_settings = settings.model_copy(update={"mlflow_experiment": opts.experiment or settings.mlflow_experiment})
        redactor = Redactor(settings.secret_values())
        opened = tracking.submit("beyond_vibes.recorder:open_simulation_run", redactor, run_name, tags, params, started,
                                 settings=record_settings)
        rec, trace_id, metrics = _run(task, served, plan, ws, tags, started, lambda *args: tracking.call(
            "beyond_vibes.recorder:finish_simulation_run", redactor, opened.result()[0], *args, settings=record_settings))
    run_id, experiment_id = opened.result()
    return SimulationResult(run_id, trace_id, rec.status, rec.error, task.name, model.name, served.quant, metrics,
                            rec.checks or [], rec.agent.final_text if rec.agent else "",
                            ws.root if opts.keep_workspace else None, key, served.server_id, experiment_id)


def _params(task: Task, served: ServedModel, plan: _Plan, ws: Workspace, opts: SimulateOptions) -> dict:
    model, server, resolved = served.model, served.server, served.resolved
    return {
        N.PARAM_TEMPERATURE: model.sampling.temperature, N.PARAM_SEED: model.sampling.seed,
        N.PARAM_TOP_P: model.sampling.top_p, N.PARAM_MAX_TOKENS: model.sampling.max_tokens,
        N.PARAM_MAX_TURNS: plan.max_turns, N.PARAM_TIMEOUT_S: plan.timeout_s, N.PARAM_MODEL_SHA256: resolved.sha256 or None,
        N.PARAM_MODEL_SOURCE: resolved.source, N.PARAM_MODEL_REVISION: resolved.revision or None,
        N.PARAM_MODEL_FILE: resolved.path.name if resolved.path else model.model_id,
        N.PARAM_AGENT_VERSION: plan.agent_version, N.PARAM_TASK_FILE_SHA256: task.file_sha256,
        N.PARAM_CTX: served.context_window, N.PARAM_REPO_COMMIT: ws.commit,
        N.PARAM_LLAMA_BUILD: server.build if model.is_local else None,
        N.PARAM_ENGINE_ARGS: " ".join(server.engine_args) if model.is_local else None,
        N.PARAM_ENGINE_CONFIG: served.engine.name if model.is_local else None,
        N.PARAM_ENGINE_FLAGS: json.dumps(served.engine.flags(), sort_keys=True) if model.is_local else None,
        N.PARAM_IMAGE: server.image,
        N.PARAM_CHAT_TEMPLATE_SHA256: served.chat_template_sha256,
        N.PARAM_PROMPT_VARS: json.dumps(opts.prompt_vars, sort_keys=True) if opts.prompt_vars else None,
        N.PARAM_SANDBOX: plan.sandbox.name, N.PARAM_TOOLCHAIN: plan.toolchain, N.PARAM_NETWORK: task.network,
        N.PARAM_CONFIG_IDENTITY: identity_param(_identity(served, plan)), **adapter_params(served.resolved),
    }


def _identity(served: ServedModel, plan: _Plan) -> dict:
    return config_parts(served, plan.agent.name, plan.agent_version, plan.max_turns)


def _run(task: Task, served: ServedModel, plan: _Plan, ws: Workspace, tags: dict[str, str], started: float, finish):
    """The run itself; its MLflow run is being opened meanwhile. `finish(record, tags, terminal)` records the end.
    Returns (record, trace id, metrics, run id)."""
    model, server = served.model, served.server
    rec = SimulationRecord(prompt=plan.prompt, started_at=started, load_s=server.load_s, pricing=model.pricing,
                           task=task.name, archetype=task.archetype.value, guidelines=dict(task.guidelines),
                           workspace=ws.view().workspace, base_commit=ws.commit, scope=task.scope)
    log_start = server.log_size()
    served.occupancy.enter(started)
    terminal = "FINISHED"
    try:
        rec.setup_s, setup_failure = run_setup(task, ws)
        if setup_failure:  # before any model call: the harness's (or the task's) error, never the model's
            rec.status, rec.error, terminal = N.STATUS_ERROR, setup_failure, "FAILED"
        else:
            terminal = _agent_and_checks(rec, task, served, plan, ws)
    except KeyboardInterrupt as e:
        rec.status, rec.error, terminal = N.STATUS_ERROR, interrupt_reason(e), "KILLED"
        raise
    except Exception as e:  # recorded on the run, then re-raised for the caller to report
        rec.status, rec.error, terminal = N.STATUS_ERROR, server.failure() or f"{type(e).__name__}: {e}", "FAILED"
        raise
    finally:
        with deferred_signals():
            rec.ended_at = time.time()
            rec.server_log = server.log_text(log_start)
            done = rec.completions
            tokens_priced = model.pricing.input_per_mtok > 0 or model.pricing.output_per_mtok > 0
            machine_s = served.occupancy.share_s(rec.started_at, rec.ended_at)  # shared with concurrent runs
            served.occupancy.leave(rec.ended_at)
            rec.cost_usd = None if tokens_priced and not usage_complete(done) else model.pricing.cost(
                sum(p.prompt_tokens for p in done), sum(p.completion_tokens for p in done), machine_s)
            metrics, trace_id, problems = finish(rec, tags, terminal)
            for problem in problems:
                log.warning("could not record %s (the run is recorded without it)", problem)
    return rec, trace_id, metrics


def _agent_and_checks(rec: SimulationRecord, task: Task, served: ServedModel, plan: _Plan, ws: Workspace) -> str:
    """The agent on the model through a recording proxy, then the checks; fills `rec`, returns the MLflow status."""
    model, server = served.model, served.server
    window = server.memory.window() if server.memory is not None else nullcontext(None)
    with window as memory:
        try:
            endpoint_max = model.sampling.max_tokens or min(4096, served.context_window // 2)
            with RecordingProxy(server.base_url, server.model_id, model.sampling, server.api_key) as proxy:
                endpoint = AgentEndpoint(proxy.base_url, server.model_id, DUMMY_KEY, served.context_window, endpoint_max)
                job = AgentJob(ws=ws, prompt=plan.prompt, system_prompt=task.system_prompt, tools=task.tools,
                               max_turns=plan.max_turns, timeout_s=plan.timeout_s, abort=server.dead,
                               network=task.network)
                try:
                    rec.agent = plan.agent.run(job, endpoint)
                finally:
                    rec.proxy_records = list(proxy.records)
        finally:
            if memory is not None:
                rec.peak_rss_mb, rec.peak_vram_mb = memory.peak_rss_mb, memory.peak_vram_mb
    failure = server.failure()
    rec.diff = ws.diff()
    rec.base_files = set(ws.git.run("ls-tree", "-r", "--name-only", ws.commit).splitlines())
    rec.checks_started_at = time.time()
    rec.checks = run_checks(task.checks, ws)
    rec.status, rec.error = decide_status(rec.agent, failure, rec.checks, plan.timeout_s)
    # The run did its job unless the harness, the server or the agent broke: then MLflow says FAILED too.
    return "FAILED" if rec.status == N.STATUS_ERROR else "FINISHED"
