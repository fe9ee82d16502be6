"""TraceRecorder: one MLflow run and one linked trace per simulation, built from real timestamps."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, SpanStatus, SpanStatusCode, SpanType

from beyond_vibes import names as N
from beyond_vibes.objective import SOURCE_ID as OBJECTIVE_SOURCE, objective_criteria
from beyond_vibes.record import SimulationRecord, check_failure, compute_metrics
from beyond_vibes.redact import Redactor
from beyond_vibes.runtime.proxy import ProxyRecord
from beyond_vibes.settings import Settings

TOOL_RESULT_CHARS = 4000  # in the span; the full text goes to the tool_outputs.jsonl artifact
PARAM_CHARS = 6000
log = logging.getLogger("beyond_vibes")


def _ns(t: float) -> int:
    return int(t * 1e9)


def _chat_output(r: ProxyRecord) -> dict:
    message: dict = {"role": "assistant", "content": r.response_text}
    if r.response_tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in r.response_tool_calls
        ]
    return {"choices": [{"index": 0, "message": message, "finish_reason": r.finish_reason}]}


def _chat_input(r: ProxyRecord) -> dict:
    req = dict(r.request or {})
    # No "model" key: MLflow would look the name up in litellm's price list (an import of seconds, and a price
    # for a model we price ourselves). The name is the span's `model_id` attribute instead.
    req.pop("model", None)
    # Tool schemas are the same on every request; keep their names so spans stay readable.
    if isinstance(req.get("tools"), list):
        req["tools"] = [((t.get("function") or {}).get("name") or t.get("name")) for t in req["tools"] if isinstance(t, dict)]
    return req or {"path": r.path}


class TraceRecorder:
    def __init__(self, client: MlflowClient, experiment_id: str, redactor: Redactor):
        self.client = client
        self.experiment_id = experiment_id
        self.redact = redactor

    def start_run(self, run_name: str, tags: dict[str, str], started_at: float | None = None) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=self._clean_tags(tags),
                                     start_time=int(started_at * 1000) if started_at else None)
        return run.info.run_id

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for k, v in self._clean_tags(tags).items():
            self.client.set_tag(run_id, k, v)

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        items = [Param(k, self.redact.text(str(v))[:PARAM_CHARS]) for k, v in params.items() if v is not None]
        self.client.log_batch(run_id, params=items)

    def _clean_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return {k: self.redact.text(str(v)) for k, v in tags.items() if v is not None}

    def finish(self, run_id: str, rec: SimulationRecord, tags: dict[str, str],
               terminal: str = "FINISHED") -> tuple[dict, str | None, list[str]]:
        """Log the trace, metrics, tags and artifacts, then end the run. Each part is attempted on its own (a
        failing MLflow call loses that part only) and the run is always ended. Returns (metrics, trace id, what
        could not be recorded)."""
        problems: list[str] = []

        def attempt(what: str, fn):
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - recorded as a warning; the other parts still go in
                problems.append(f"{what}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
                return None

        metrics = attempt("metrics", lambda: compute_metrics(rec)) or {}
        trace_id = attempt("trace", lambda: self.log_trace(run_id, rec, tags))
        if trace_id:
            attempt("objective assessments", lambda: self.log_objective(trace_id, rec))
        now_ms = int((rec.ended_at or time.time()) * 1000)
        attempt("metrics", lambda: self.client.log_batch(run_id, metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()]))
        done_tags = {**tags, N.TAG_STATUS: rec.status, N.TAG_TRACE_ID: trace_id,
                     N.TAG_ERROR: rec.error[:5000] if rec.error else None, N.TAG_REASON: rec.reason(),
                     N.TAG_DESCRIPTION: description(rec, metrics, tags, self.experiment_id, run_id, trace_id)}
        attempt("tags", lambda: self.set_tags(run_id, done_tags))
        attempt("artifacts", lambda: self.log_artifacts(run_id, rec, metrics))
        try:
            self.client.set_terminated(run_id, status=terminal, end_time=now_ms)
        except Exception as e:  # noqa: BLE001
            problems.append(f"end run: {type(e).__name__}: {e}")
        return metrics, trace_id, problems

    def log_artifacts(self, run_id: str, rec: SimulationRecord, metrics: dict) -> None:
        r = self.redact
        with tempfile.TemporaryDirectory(prefix="bv-artifacts-") as tmp:
            out = Path(tmp)
            (out / N.A_DIFF).write_text(r.text(rec.diff))
            (out / N.A_CHECKS).write_text(r.text(json.dumps([c.to_json() for c in rec.checks or []], indent=2)))
            events = rec.agent.events if rec.agent else []
            # message_update repeats the whole partial message on every token: the final message_end has it all.
            lines = [json.dumps({"t": e.t, **e.data}) for e in events if e.kind != "message_update"]
            (out / N.A_AGENT_EVENTS).write_text(r.text("\n".join(lines) + ("\n" if lines else "")))
            proxy = [json.dumps(p.to_json()) for p in rec.proxy_records]
            (out / N.A_PROXY_REQUESTS).write_text(r.text("\n".join(proxy) + ("\n" if proxy else "")))
            tools = [json.dumps({"id": c.id, "name": c.name, "args": c.args, "result": c.result, "is_error": c.is_error})
                     for c in (rec.agent.tool_calls if rec.agent else [])]
            (out / N.A_TOOL_OUTPUTS).write_text(r.text("\n".join(tools) + ("\n" if tools else "")))
            if rec.server_log:
                (out / N.A_SERVER_LOG).write_text(r.text(rec.server_log))
            summary = {"status": rec.status, "error": rec.error, "metrics": metrics,
                       "final_message": rec.agent.final_text if rec.agent else "",
                       "agent_stop_reason": rec.agent.stop_reason if rec.agent else None,
                       "agent_stderr_tail": rec.agent.stderr_tail if rec.agent else ""}
            (out / N.A_SUMMARY).write_text(r.text(json.dumps(summary, indent=2)))
            self.client.log_artifacts(run_id, str(out))

    def log_trace(self, run_id: str, rec: SimulationRecord, tags: dict[str, str]) -> str:
        """The trace tells the story on its own: the task in, the outcome out (status, why, checks, diff, stop
        reason), one LLM span per model request, one TOOL span per tool call, then a `checks` span."""
        r = self.redact
        agent = rec.agent
        root = self.client.start_trace(
            "simulation", span_type=SpanType.AGENT, inputs=r.data(rec.task_inputs()),
            tags=self._clean_tags({**tags, N.TAG_STATUS: rec.status}), experiment_id=self.experiment_id,
            start_time_ns=_ns(rec.started_at), run_id=run_id,
        )
        trace_id = root.trace_id
        seen = 0  # messages already shown by an earlier turn's span
        for n, p in enumerate(rec.completions, start=1):
            inputs, seen = _turn_input(p, seen)
            attributes = {"model_id": (p.request or {}).get("model"), "ttft_s": _round(p.ttft_s, 3),
                          "prompt_tps": _round(p.prompt_tps, 1), "gen_tps": _round(p.gen_tps, 1), "http_status": p.status,
                          "timings": p.timings, "proxy_index": p.index, "stream": p.stream}
            if p.usage_reported:
                attributes["mlflow.chat.tokenUsage"] = {"input_tokens": p.prompt_tokens, "output_tokens": p.completion_tokens,
                                                        "total_tokens": p.prompt_tokens + p.completion_tokens}
            if rec.pricing is not None and rec.pricing.priced and p.usage_reported:
                # Our own price (models.yaml), so MLflow neither looks one up nor imports litellm for it.
                cin, cout = p.prompt_tokens * rec.pricing.input_per_mtok / 1e6, p.completion_tokens * rec.pricing.output_per_mtok / 1e6
                attributes["mlflow.llm.cost"] = {"input_cost": cin, "output_cost": cout, "total_cost": cin + cout}
            span = self.client.start_span(
                f"turn-{n}", trace_id=trace_id, parent_id=root.span_id, span_type=SpanType.LLM,
                inputs=r.data(inputs), start_time_ns=_ns(p.started_at), attributes=attributes,
            )
            failed = p.error or p.status >= 400
            self.client.end_span(trace_id, span.span_id, outputs=r.data(_chat_output(p)),
                                 attributes={"error": r.text(p.error)} if p.error else None,
                                 status=SpanStatus(SpanStatusCode.ERROR, r.text(p.error or f"HTTP {p.status}")[:300]) if failed
                                 else SpanStatusCode.OK, end_time_ns=_ns(max(p.ended_at, p.started_at)))
        for call in agent.tool_calls if agent else []:
            span = self.client.start_span(
                tool_span_name(call.name, call.args, rec.workspace), trace_id=trace_id, parent_id=root.span_id,
                span_type=SpanType.TOOL, inputs=r.data(call.args), start_time_ns=_ns(call.started_at),
                attributes={"tool_call_id": call.id, "tool": call.name, "is_error": call.is_error, "known_tool": call.known_tool},
            )
            result = call.result if len(call.result) <= TOOL_RESULT_CHARS else call.result[:TOOL_RESULT_CHARS] + "\n[truncated: full text in tool_outputs.jsonl]"
            self.client.end_span(trace_id, span.span_id, outputs=r.text(fenced(result)),
                                 status=SpanStatus(SpanStatusCode.ERROR, r.text(first_line(call.result))) if call.is_error
                                 else SpanStatusCode.OK, end_time_ns=_ns(max(call.ended_at, call.started_at)))
        self._checks_span(trace_id, root.span_id, rec)
        reason = rec.reason()
        self.client.end_trace(
            trace_id, outputs=r.data(rec.outcome()), attributes={"status": rec.status, "error": r.text(rec.error or "")},
            status=SpanStatusCode.OK if rec.status == N.STATUS_SUCCESS else SpanStatus(SpanStatusCode.ERROR, r.text(reason or rec.status)),
            end_time_ns=_ns(max(rec.ended_at, rec.started_at)),
        )
        mlflow.flush_trace_async_logging()
        return trace_id

    def log_objective(self, trace_id: str, rec: SimulationRecord) -> None:
        """The objective criteria as feedback on the trace, source CODE: measured, not an LLM's opinion."""
        from mlflow.entities import AssessmentSource

        source = AssessmentSource(source_type="CODE", source_id=OBJECTIVE_SOURCE)
        for o in objective_criteria(rec):
            self.client.log_feedback(trace_id=trace_id, name=o.assessment_name, value=o.value, source=source,
                                     rationale=self.redact.text(o.rationale), metadata={"metrics": json.dumps(o.metrics)})

    def _checks_span(self, trace_id: str, parent_id: str, rec: SimulationRecord) -> None:
        if rec.checks is None:
            return
        r = self.redact
        start = rec.checks_started_at or rec.ended_at
        group = self.client.start_span("checks", trace_id=trace_id, parent_id=parent_id, span_type=SpanType.CHAIN,
                                       inputs={"base_commit": rec.base_commit}, start_time_ns=_ns(start))
        t = start
        for c in rec.checks:
            span = self.client.start_span(c.name, trace_id=trace_id, parent_id=group.span_id, span_type=SpanType.EVALUATOR,
                                          inputs={"command": r.text(c.command)}, start_time_ns=_ns(t))
            t += c.duration_s
            self.client.end_span(trace_id, span.span_id,
                                 outputs=r.text(f"{'passed' if c.passed else 'FAILED'} (exit {c.exit_code})\n\n" + fenced(c.output_tail)),
                                 attributes={"passed": c.passed, "exit_code": c.exit_code, "duration_s": round(c.duration_s, 3)},
                                 status=SpanStatusCode.OK if c.passed else SpanStatus(SpanStatusCode.ERROR, r.text(check_failure(c))),
                                 end_time_ns=_ns(t))
        passed = sum(c.passed for c in rec.checks)
        self.client.end_span(trace_id, group.span_id, outputs=f"{passed}/{len(rec.checks)} checks passed",
                             status=SpanStatusCode.OK if passed == len(rec.checks) else SpanStatusCode.ERROR,
                             end_time_ns=_ns(max(t, start)))


def _num(metrics: dict, name: str, spec: str, unit: str = "") -> str:
    value = metrics.get(name)
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def description(rec: SimulationRecord, metrics: dict, tags: dict, experiment_id: str, run_id: str,
                trace_id: str | None) -> str:
    """The run's overview in MLflow (its description): outcome and why, checks, the agent's work, speed, where."""
    lines = [f"### {rec.status.upper()}" + (f": {rec.reason()}" if rec.reason() else ""), ""]
    if rec.checks is not None:
        lines += ["| check | result | telling line |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {'pass' if c.passed else 'FAIL'} (exit {c.exit_code}) | {check_failure(c).replace('|', '/')} |"
                  for c in rec.checks]
        lines.append("")
    agent = rec.agent
    if agent is not None:
        loop = " · **loop detected**" if metrics.get(N.M_LOOP_DETECTED) else ""
        lines.append(f"**Agent** {agent.agent} {agent.version}: {_num(metrics, N.M_TURNS, '.0f')} turns, "
                     f"{_num(metrics, N.M_TOOL_CALLS, '.0f')} tool calls ({_num(metrics, N.M_TOOL_ERRORS, '.0f')} errors, "
                     f"{_num(metrics, N.M_HALLUCINATED_TOOL_CALLS, '.0f')} unknown tools){loop}; stopped: {agent.stop_reason}")
    lines.append(f"**Tokens** {_num(metrics, N.M_TOKENS_PROMPT, ',.0f')} prompt / {_num(metrics, N.M_TOKENS_COMPLETION, ',.0f')} "
                 f"completion · **TTFT** {_num(metrics, N.M_TTFT_S, '.2f', ' s')} (median) · **speed** prompt "
                 f"{_num(metrics, N.M_PROMPT_TPS, '.1f', ' tok/s')}, generation {_num(metrics, N.M_GEN_TPS, '.1f', ' tok/s')}")
    adapter = f" + LoRA adapter {tags[N.TAG_ADAPTER]}" if tags.get(N.TAG_ADAPTER) else ""
    lines.append(f"**Model** {tags.get(N.TAG_MODEL)}:{tags.get(N.TAG_QUANT)}{adapter} · engine {tags.get(N.TAG_ENGINE)} "
                 f"({tags.get(N.TAG_RUNTIME)}) · load {_num(metrics, N.M_LOAD_S, '.2f', ' s')} · peak RSS "
                 f"{_num(metrics, N.M_PEAK_RSS_MB, '.0f', ' MB')} · VRAM {_num(metrics, N.M_PEAK_VRAM_MB, '.0f', ' MB')}")
    setup = f" · task setup {_num(metrics, N.M_SETUP_S, '.1f', ' s')}" if N.M_SETUP_S in metrics else ""
    lines.append(f"**Sandbox** {tags.get(N.TAG_SANDBOX)}" + (" (unconfined: the agent ran as the harness's user)"
                 if tags.get(N.TAG_SANDBOX) == "none" else " (confined: its workspace, a private home and the toolchain; param `agent_network` says its network)") + setup)
    lines.append(f"**Wall** {_num(metrics, N.M_WALL_S, '.1f', ' s')} (`wall_s`: workspace checkout to the end of the checks; "
                 "the model server's load is `load_s`, recorded with the server)")
    lines.append("")
    if trace_id:
        lines.append(f"[Open the trace](#/experiments/{experiment_id}/traces?selectedEvaluationId={trace_id}) · "
                     f"artifacts: `{N.A_DIFF}` (what changed), `{N.A_CHECKS}`, `{N.A_TOOL_OUTPUTS}`, `{N.A_SERVER_LOG}`")
    if tags.get(N.TAG_SERVER_ID):
        lines.append(f"Served by `{tags[N.TAG_SERVER_ID]}` (experiment *…-servers*, tag `{N.TAG_SERVER_ID}`)")
    return "\n".join(lines)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def fenced(text: str) -> str:
    """A block the MLflow UI shows with its line breaks (span outputs render as Markdown)."""
    fence = "````" if "```" in text else "```"
    return f"{fence}\n{text.rstrip()}\n{fence}"


def first_line(text: str, limit: int = 200) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def tool_span_name(tool: str, args: dict, workspace: str | None = None) -> str:
    """What the call did, short: `bash: python3 -m unittest discover`, `edit: mathutils.py`."""
    def rel(path: str) -> str:
        if workspace and path.startswith(workspace.rstrip("/") + "/"):
            return path[len(workspace.rstrip("/")) + 1:]
        return path

    if tool == "bash" and isinstance(args.get("command"), str):
        detail = first_line(args["command"], 60) + (" ..." if len(args["command"].strip()) > 60 or "\n" in args["command"].strip() else "")
    elif isinstance(args.get("path"), str):
        detail = rel(args["path"])
    else:
        detail = ""
    return f"{tool or 'tool'}: {detail}" if detail else (tool or "tool")


def _turn_input(p: ProxyRecord, seen: int) -> tuple[dict, int]:
    """A turn's request, lighter: the messages earlier turns already showed are counted, not repeated (pi sends
    the whole conversation every time, so a 12-turn trace would hold it 12 times)."""
    req = _chat_input(p)
    messages = req.get("messages")
    if isinstance(messages, list):
        start = seen if 0 < seen <= len(messages) else 0
        req["messages"] = messages[start:]
        if start:
            req["earlier_messages"] = f"{start} message(s), shown in the turns before"
        seen = len(messages)
    return req, seen


# Run in the recording process (tracking.TrackingWorker): arguments and results are plain, picklable data.

def open_simulation_run(settings: Settings, redactor: Redactor, name: str, tags: dict, params: dict,
                        started_at: float) -> tuple[str, str]:
    """Reap runs whose writer died, then create this run (RUNNING, from when the simulation began) with its params.
    Returns (run id, experiment id)."""
    from beyond_vibes.tracking import reap_orphaned_runs, tracking_client

    client, exp_id = tracking_client(settings)
    reap_orphaned_runs(client, [exp_id])
    recorder = TraceRecorder(client, exp_id, redactor)
    run_id = recorder.start_run(name, tags, started_at)
    recorder.log_params(run_id, params)
    return run_id, exp_id


def finish_simulation_run(settings: Settings, redactor: Redactor, run_id: str, rec: SimulationRecord, tags: dict,
                          terminal: str) -> tuple[dict, str | None, list[str]]:
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings)
    return TraceRecorder(client, exp_id, redactor).finish(run_id, rec, tags, terminal)
