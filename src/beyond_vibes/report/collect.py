"""Read everything a report needs from the MLflow tracking store (and nothing from local files).

The report must work against any tracking server, so the only inputs are MLflow runs: simulations in
`<experiment>`, served models in `<experiment>-servers`, llama-bench references in `<experiment>-speed` and quick
evals in `<experiment>-quick-eval` (with their per-item tables). The side experiments are optional: they are looked
up by name and never created, so a report does not leave empty experiments behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.identity import model_label
from beyond_vibes.errors import ConfigError
from beyond_vibes.redact import safe_uri

# (model, quant, engine, config id): one configuration, the unit of comparison. The config id (beyond_vibes.identity)
# hashes everything else that can change an outcome (build, flags, template, sampling, agent, turns); runs recorded
# before it existed have "".
Config = tuple[str, str, str, str]

QUICK_EVAL_ITEMS = "quick_eval_items.json"  # beyond_vibes.quick_eval.run.ITEMS_TABLE (not imported: heavy)
PAGE = 1000


def config_label(config: tuple) -> str:
    """model:quant:engine, then #<config id, 6 characters> when the configuration has one."""
    name = ":".join(config[:3])
    return f"{name}#{config[3][:6]}" if len(config) > 3 and config[3] else name


@dataclass
class SimRun:
    """One simulation as the report sees it: tags flattened, metrics only where they were measured."""

    run_id: str
    model: str
    quant: str
    engine: str
    task: str
    archetype: str
    status: str
    family: str = ""
    runtime: str = ""
    provider: str = ""
    repeat: int | None = None
    server_id: str = ""
    start_time: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    config_id: str = ""

    @property
    def config(self) -> Config:
        return (self.model, self.quant, self.engine, self.config_id)

    @property
    def identity(self) -> dict:
        """The configuration's parts (what its config id hashes); {} for a run recorded before they were."""
        try:
            return json.loads(self.params.get(N.PARAM_CONFIG_IDENTITY) or "{}")
        except ValueError:
            return {}

    @property
    def passed(self) -> bool:
        """The `success` metric when logged (all checks passed), else the recorded status."""
        if N.M_SUCCESS in self.metrics:
            return self.metrics[N.M_SUCCESS] >= 0.5
        return self.status == N.STATUS_SUCCESS

    @property
    def hard_failure(self) -> bool:
        """A run that did not get to be judged on its work: the harness, agent or server broke, or time ran out."""
        return self.status in (N.STATUS_ERROR, N.STATUS_TIMEOUT)

    def judge_scores(self) -> dict[str, float]:
        return {k[len("judge_"):]: v for k, v in self.metrics.items() if k.startswith("judge_")}

    def row(self) -> dict:
        """The run as one flat JSON row (results.json)."""
        return {"run_id": self.run_id, "model": self.model, "quant": self.quant, "engine": self.engine,
                "family": self.family, "runtime": self.runtime, "provider": self.provider, "task": self.task,
                "archetype": self.archetype, "repeat": self.repeat, "status": self.status, "passed": self.passed,
                "config_id": self.config_id or None,
                "server_id": self.server_id or None, "start_time": self.start_time, "metrics": self.metrics,
                "params": self.params}


@dataclass
class ServerRun:
    server_id: str
    run_id: str
    metrics: dict[str, float]


@dataclass
class SpeedRef:
    """llama-bench's raw engine figures for one served configuration (the latest run)."""

    run_id: str
    metrics: dict[str, float]  # pp512_tps, tg128_tps and their _std
    model: str = ""
    quant: str = ""
    engine: str = ""


@dataclass
class QuickEvalRun:
    run_id: str
    set: str
    model: str
    quant: str
    engine: str
    family: str
    start_time: int
    metrics: dict[str, float]
    params: dict[str, str]
    items: list[dict] | None  # the per-item table; None when the artifact is missing or unreadable
    config_id: str = ""  # identity.config_id (its served id: a quick eval has no agent); "" before ids existed

    @property
    def config(self) -> Config:
        return (self.model, self.quant, self.engine, self.config_id)

    def outcomes(self) -> dict[str, bool]:
        """Item id -> passed, for scored items only (passed None = the request failed, not a wrong answer)."""
        return {str(r["id"]): bool(r["passed"]) for r in self.items or [] if r.get("id") is not None
                and r.get("passed") is not None}


@dataclass
class Collected:
    experiment: str
    sims: list[SimRun]
    servers: dict[str, ServerRun]
    speed: dict[str, SpeedRef]  # served id (identity.served_id) -> the latest llama-bench of that configuration
    quick_evals: list[QuickEvalRun]
    skipped_unfinished: int = 0  # runs with no bv.status yet (still running, or a writer that died)
    missing_run_ids: list[str] = field(default_factory=list)


def _search(client, exp_id: str, filter_string: str) -> list:
    """Every matching run, page by page (a tracking server returns at most `max_results` per call)."""
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string=filter_string, max_results=PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _side_experiment(client, name: str) -> str | None:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _sim(run) -> SimRun | None:
    t = run.data.tags
    status = t.get(N.TAG_STATUS)
    if not status:
        return None
    return SimRun(run_id=run.info.run_id, model=model_label(t), quant=t.get(N.TAG_QUANT, ""),
                  engine=t.get(N.TAG_ENGINE, ""), task=t.get(N.TAG_TASK, "?"), archetype=t.get(N.TAG_ARCHETYPE, ""),
                  status=status, family=t.get(N.TAG_FAMILY, ""), runtime=t.get(N.TAG_RUNTIME, ""),
                  provider=t.get(N.TAG_PROVIDER, ""), repeat=_int(t.get(N.TAG_REPEAT)),
                  server_id=t.get(N.TAG_SERVER_ID, ""), start_time=run.info.start_time or 0,
                  metrics=dict(run.data.metrics), params=dict(run.data.params),
                  tags={k: v for k, v in t.items() if k.startswith("bv.")}, config_id=t.get(N.TAG_CONFIG_ID, ""))


def simulations(client, exp_id: str, filter_string: str | None, run_ids: Iterable[str] | None) -> tuple[list[SimRun], int, list[str]]:
    """(finished simulation runs, how many had no status yet, requested run ids that were not found)."""
    from mlflow.exceptions import MlflowException

    query = f"tags.`{N.TAG_KIND}` = 'simulation'"
    if filter_string and filter_string.strip():
        query += f" and {filter_string.strip()}"  # MLflow's search grammar has AND only: no parentheses needed
    try:
        runs = _search(client, exp_id, query)
    except MlflowException as e:
        first = str(e.message if hasattr(e, "message") else e).strip().splitlines()[0][:300]
        raise ConfigError(f"--filter: {filter_string!r} is not a valid MLflow search filter: {first}; "
                          "e.g. \"tags.`bv.task` = 'fix_failing_test'\"") from None
    missing: list[str] = []
    if run_ids is not None:
        wanted = {r.strip() for r in run_ids if r.strip()}
        found = {r.info.run_id for r in runs}
        missing = sorted(wanted - found)
        runs = [r for r in runs if r.info.run_id in wanted]
    sims = [s for s in (_sim(r) for r in runs) if s is not None]
    return sims, len(runs) - len(sims), missing


def servers(client, experiment: str) -> dict[str, ServerRun]:
    exp_id = _side_experiment(client, f"{experiment}-servers")
    if exp_id is None:
        return {}
    out: dict[str, ServerRun] = {}
    for run in _search(client, exp_id, f"tags.`{N.TAG_KIND}` = 'server'"):
        sid = run.data.tags.get(N.TAG_SERVER_ID)
        if sid:
            out[sid] = ServerRun(sid, run.info.run_id, dict(run.data.metrics))
    return out


def speed_refs(client, experiment: str) -> dict[str, SpeedRef]:
    """A llama-bench reference per served configuration: same model file, build, engine flags (a bench on another
    build or batch size measures another engine, so it is no reference). A bench without a served id (recorded
    before ids existed) matches nothing."""
    exp_id = _side_experiment(client, f"{experiment}-speed")
    if exp_id is None:
        return {}
    out: dict[str, SpeedRef] = {}
    # Oldest first, so the latest measurement of a configuration wins.
    for run in sorted(_search(client, exp_id, f"tags.`{N.TAG_KIND}` = 'speed'"), key=lambda r: r.info.start_time or 0):
        t = run.data.tags
        if t.get(N.TAG_SERVED_ID) and any(k.endswith("_tps") for k in run.data.metrics):
            out[t[N.TAG_SERVED_ID]] = SpeedRef(run.info.run_id, dict(run.data.metrics), model_label(t),
                                               t.get(N.TAG_QUANT, ""), t.get(N.TAG_ENGINE, ""))
    return out


def _items(client, run_id: str) -> list[dict] | None:
    """The run's per-item table ({"columns": [...], "data": [[...]]}) as dicts; None if it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="bv-report-") as tmp:
        try:
            path = client.download_artifacts(run_id, QUICK_EVAL_ITEMS, tmp)
            data = json.loads(Path(path).read_text())
        except Exception:  # noqa: BLE001 - a run without its table still has its metrics
            return None
    cols = data.get("columns") or []
    return [dict(zip(cols, row)) for row in data.get("data") or []]


def quick_evals(client, experiment: str) -> list[QuickEvalRun]:
    """The latest finished quick-eval run per model/quant/engine/set, with its item table."""
    exp_id = _side_experiment(client, f"{experiment}-quick-eval")
    if exp_id is None:
        return []
    latest: dict[tuple, object] = {}
    for run in sorted(_search(client, exp_id, f"tags.`{N.TAG_KIND}` = 'quick_eval'"), key=lambda r: r.info.start_time or 0):
        t = run.data.tags
        if "accuracy" not in run.data.metrics:
            continue  # nothing scored: no accuracy to report
        # One row per configuration and set: another build or template is another row, never the latest of one.
        latest[(model_label(t), t.get(N.TAG_QUANT), t.get(N.TAG_ENGINE), t.get(N.TAG_CONFIG_ID, ""),
                t.get(N.TAG_SET))] = run
    out = []
    for (model, quant, engine, cid, set_name), run in sorted(latest.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        out.append(QuickEvalRun(run.info.run_id, set_name or "?", model or "?", quant or "", engine or "",
                                run.data.tags.get(N.TAG_FAMILY, ""), run.info.start_time or 0, dict(run.data.metrics),
                                dict(run.data.params), _items(client, run.info.run_id), cid or ""))
    return out


def collect(settings, experiment: str, filter_string: str | None = None, run_ids: Iterable[str] | None = None) -> Collected:
    from mlflow import MlflowClient

    from beyond_vibes.tracking import quiet_mlflow

    quiet_mlflow()
    # Item tables are small; a progress bar per download would only litter the command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        client = MlflowClient(settings.tracking_uri)  # a SQL store connects here
        exp = client.get_experiment_by_name(experiment)
    except Exception as e:  # noqa: BLE001 - an unreachable store is the user's to fix: one line
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ConfigError(f"MLFLOW_TRACKING_URI: cannot read the tracking store {safe_uri(settings.tracking_uri)}: "
                          f"{safe_uri(first)}") from None
    qe = quick_evals(client, experiment)
    if exp is None and not qe:
        raise ConfigError(f"--experiment: no experiment named {experiment!r} in {safe_uri(settings.tracking_uri)}; "
                          "run simulate, sweep or quick-eval first, or name the experiment they recorded into")
    # Quick evals alone (`<experiment>-quick-eval`) make a report too.
    sims, unfinished, missing = simulations(client, exp.experiment_id, filter_string, run_ids) if exp is not None \
        else ([], 0, sorted(run_ids or []))
    if sims and (filter_string or run_ids is not None):
        # A restricted report shows the quick evals of the configurations it covers, not the whole store's.
        configs = {s.config[:3] for s in sims}
        qe = [q for q in qe if q.config[:3] in configs or (q.model, q.quant) in {c[:2] for c in configs}]
    return Collected(experiment, sims, servers(client, experiment), speed_refs(client, experiment), qe,
                     unfinished, missing)
