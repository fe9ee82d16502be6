"""Curate simulations into an MLflow evaluation dataset: one self-contained record per run, for the judges.

A record holds what a judge needs and nothing it would have to fetch: the task (prompt, guidelines, archetype),
the outcome (status, reason, checks with output tails), the agent's final message, the diff, a compact tool-call
transcript and the tier-1 metrics; it is linked to its run and trace and keyed by the run key, so curating again
adds only new runs. Everything comes from the run's trace (`simulate` records it there) and metrics.

Truncation policy (so a record fits a small judge's context): the transcript lists every tool call as one line
(tool, what it did, first line of its result) and keeps the first 10 and last 10 calls of a longer run, with a
line saying how many were left out; the diff keeps its first 3,000 and last 1,000 characters; check output tails
and the final message keep their last 800 and first 1,500 characters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.identity import model_label
from beyond_vibes.record import unfence_diff
from beyond_vibes.settings import Settings

TRANSCRIPT_HEAD = TRANSCRIPT_TAIL = 10
DIFF_HEAD, DIFF_TAIL = 3000, 1000
FINAL_CHARS, CHECK_TAIL = 1500, 800
RECORD_METRICS = (N.M_TURNS, N.M_TOOL_CALLS, N.M_TOOL_ERRORS, N.M_HALLUCINATED_TOOL_CALLS, N.M_LOOP_DETECTED,
                  N.M_CHECKS_PASSED, N.M_CHECKS_TOTAL, N.M_WALL_S)


def clip(text: str, head: int, tail: int = 0) -> str:
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return text[:head] + f"\n[... {cut} characters left out ...]\n" + (text[-tail:] if tail else "")


# The agent's absolute paths, as ./ (shorter): /workspace in a sandbox, the per-user slot on the host (`none`).
WORKSPACE = re.compile(r"(?<![\w/.])/workspace\b/?|/\S*?/bv-\d+/workspaces/[^/\s]+/repo/?|/\S*?/bv-workspaces/[^/\s]+/repo/?")


def transcript(tool_spans: list[dict]) -> list[str]:
    """One line per tool call; a long run keeps its beginning and its end."""
    lines = []
    for i, s in enumerate(tool_spans, start=1):
        result = (s.get("result") or "").strip().strip("`").strip()
        shown = [ln.strip() for ln in result.splitlines() if ln.strip()]
        # First and last line: a command's verdict ("OK", "FAILED (...)") is usually at the end.
        gist = shown[0][:120] + (f" ... {shown[-1][:100]}" if len(shown) > 1 else "") if shown else ""
        mark = " [error]" if s.get("is_error") else ""
        lines.append(WORKSPACE.sub("./", f"{i}. {s['name']}{mark} -> {gist}"))
    if len(lines) > TRANSCRIPT_HEAD + TRANSCRIPT_TAIL:
        left_out = len(lines) - TRANSCRIPT_HEAD - TRANSCRIPT_TAIL
        lines = lines[:TRANSCRIPT_HEAD] + [f"[... {left_out} tool calls left out ...]"] + lines[-TRANSCRIPT_TAIL:]
    return lines


def record_from_trace(trace, metrics: dict[str, float], run_id: str, tags: dict[str, str]) -> dict:
    """The judge's record of one simulation, from its trace (root span in/out, tool spans) and run metrics."""
    spans = trace.data.spans
    root = next(s for s in spans if s.parent_id is None)
    inputs, out = root.inputs or {}, root.outputs or {}
    tools = sorted((s for s in spans if s.span_type == "TOOL"), key=lambda s: s.start_time_ns)
    tool_spans = [{"name": s.name, "result": s.outputs if isinstance(s.outputs, str) else json.dumps(s.outputs),
                   "is_error": (s.attributes or {}).get("is_error", False)} for s in tools]
    return {
        "run_key": tags.get(N.TAG_RUN_KEY, ""),
        "run_id": run_id,
        "trace_id": trace.info.trace_id,
        "task": inputs.get("task") or tags.get(N.TAG_TASK, ""),
        "archetype": inputs.get("archetype") or tags.get(N.TAG_ARCHETYPE, ""),
        "model": f"{model_label(tags)}:{tags.get(N.TAG_QUANT, '')}",  # an adapter is its own variant: model+adapter
        "prompt": inputs.get("prompt", ""),
        "guidelines": inputs.get("guidelines") or {},
        "status": out.get("status") or tags.get(N.TAG_STATUS, ""),
        "reason": out.get("reason"),
        "checks": [{"name": c.get("name"), "passed": c.get("passed"),
                    "output_tail": WORKSPACE.sub("./", (c.get("output_tail") or "")[-CHECK_TAIL:])}
                   for c in out.get("checks") or []],
        "final_message": clip(out.get("final_message") or "", FINAL_CHARS),
        "diff": clip(unfence_diff(out.get("diff") or ""), DIFF_HEAD, DIFF_TAIL),
        "transcript": transcript(tool_spans),
        "metrics": {k: metrics[k] for k in RECORD_METRICS if k in metrics},
    }


def render(record: dict) -> str:
    """The record as the judge reads it."""
    checks = "\n".join(f"- {c['name']}: {'pass' if c['passed'] else 'FAIL'}" + (
        f"\n  {c['output_tail'].strip()[-300:]}" if not c["passed"] and c.get("output_tail") else "")
        for c in record.get("checks") or []) or "(none)"
    guidelines = "\n".join(f"- {k}: {v}" for k, v in (record.get("guidelines") or {}).items()) or "(none)"
    metrics = ", ".join(f"{k} {v:g}" for k, v in (record.get("metrics") or {}).items())
    return (f"TASK ({record.get('archetype')}): {record.get('prompt', '').strip()}\n"
            f"GUIDELINES:\n{guidelines}\n"
            f"OUTCOME: {record.get('status')}" + (f" ({record['reason']})" if record.get("reason") else "") + "\n"
            f"CHECKS:\n{checks}\n"
            f"TOOL CALLS:\n" + ("\n".join(record.get("transcript") or []) or "(none)") + "\n"
            f"DIFF:\n{record.get('diff') or '(no changes)'}\n"
            f"AGENT'S FINAL MESSAGE:\n{record.get('final_message') or '(none)'}\n"
            f"METRICS: {metrics}")


@dataclass
class CurateResult:
    dataset: str
    dataset_id: str
    added: int
    already: int
    matched: int


def _filter(task: str | None, archetype: str | None, model: str | None, quant: str | None, engine: str | None,
            status: list[str] | None, since: str | None) -> str:
    parts = [f"tags.`{N.TAG_KIND}` = 'simulation'", "attributes.status != 'RUNNING'"]
    for tag, value in ((N.TAG_TASK, task), (N.TAG_ARCHETYPE, archetype), (N.TAG_MODEL, model), (N.TAG_QUANT, quant),
                       (N.TAG_ENGINE, engine)):
        if value:
            parts.append(f"tags.`{tag}` = '{value}'")
    if status and len(status) == 1:  # MLflow's filter has no IN/OR for tags: several statuses are filtered after
        parts.append(f"tags.`{N.TAG_STATUS}` = '{status[0]}'")
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since: {since!r} is not a date; use YYYY-MM-DD (or an ISO time)") from None
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        parts.append(f"attributes.start_time >= {int(when.timestamp() * 1000)}")
    return " and ".join(parts)


def curate(settings: Settings, dataset: str, task: str | None = None, archetype: str | None = None,
           model: str | None = None, quant: str | None = None, engine: str | None = None,
           status: list[str] | None = None, since: str | None = None, experiment: str | None = None) -> CurateResult:
    """Select simulations into the evaluation dataset `dataset` (created if new); runs already in it are skipped."""
    from beyond_vibes.tracking import require_sql_store, tracking_client

    require_sql_store(settings)
    client, exp_id = tracking_client(settings, experiment)
    import mlflow
    from mlflow.genai.datasets import create_dataset, get_dataset

    runs = client.search_runs([exp_id], filter_string=_filter(task, archetype, model, quant, engine, status, since),
                              max_results=5000)
    if status:
        runs = [r for r in runs if r.data.tags.get(N.TAG_STATUS) in status]
    try:
        ds = get_dataset(name=dataset)
    except Exception:  # noqa: BLE001 - MLflow raises a generic error for a missing dataset
        ds = create_dataset(name=dataset, experiment_id=exp_id, tags={"bv.kind": "curated"})
    have = {_inputs(r).get("run_key") for r in ds.to_df()["inputs"]}
    new = []
    for run in runs:
        key, trace_id = run.data.tags.get(N.TAG_RUN_KEY), run.data.tags.get(N.TAG_TRACE_ID)
        if not key or not trace_id or key in have:
            continue
        record = record_from_trace(mlflow.get_trace(trace_id), run.data.metrics, run.info.run_id, run.data.tags)
        have.add(key)
        new.append({
            "inputs": {k: record[k] for k in ("run_key", "task", "archetype", "prompt", "guidelines")},
            "outputs": {k: v for k, v in record.items() if k not in ("run_key", "task", "archetype", "prompt", "guidelines")},
            "source": {"source_type": "TRACE", "source_data": {"trace_id": trace_id, "run_id": run.info.run_id}},
            "tags": {N.TAG_RUN_KEY: key, N.TAG_MODEL: record["model"], N.TAG_STATUS: record["status"]},
        })
    if new:
        ds.merge_records(client.redact.data(new))  # dataset records are written outside the client: redact here
    return CurateResult(dataset, ds.dataset_id, len(new), len(runs) - len(new), len(runs))


def dataset_records(settings: Settings, dataset: str) -> list[dict]:
    """The judge records of a curated dataset (inputs and outputs joined)."""
    from beyond_vibes.tracking import require_sql_store, tracking_client

    require_sql_store(settings)
    tracking_client(settings)
    from mlflow.genai.datasets import get_dataset

    try:
        ds = get_dataset(name=dataset)
    except Exception:  # noqa: BLE001
        raise ConfigError(f"--dataset: no evaluation dataset {dataset!r}; make it with `beyond-vibes curate --dataset {dataset} ...`") from None
    df = ds.to_df()
    return [{**_inputs(inputs), **_inputs(outputs)} for inputs, outputs in zip(df["inputs"], df["outputs"])]


def _inputs(value) -> dict:
    if isinstance(value, str):
        return json.loads(value)
    return dict(value) if isinstance(value, dict) else {}
