"""TraceRecorder: one MLflow run and one linked trace per simulation, built from real timestamps."""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, SpanStatusCode, SpanType

from beyond_vibes import names as N
from beyond_vibes.agents import AgentResult
from beyond_vibes.checks import CheckResult
from beyond_vibes.redact import Redactor
from beyond_vibes.runtime.proxy import ProxyRecord

TOOL_RESULT_CHARS = 4000  # in the span; the full text goes to the tool_outputs.jsonl artifact
PARAM_CHARS = 6000
log = logging.getLogger("beyond_vibes")


def _ns(t: float) -> int:
    return int(t * 1e9)


@dataclass
class SimulationRecord:
    """Everything a simulation produced, as plain data; the recorder turns it into MLflow. None means
    "not measured" and is never logged as a number."""

    prompt: str
    started_at: float
    ended_at: float = 0.0
    status: str = N.STATUS_ERROR
    error: str | None = None
    agent: AgentResult | None = None
    proxy_records: list[ProxyRecord] = field(default_factory=list)
    checks: list[CheckResult] | None = None  # None: the checks never ran
    diff: str = ""
    server_log: str = ""
    load_s: float | None = None
    peak_rss_mb: float | None = None
    peak_vram_mb: float | None = None
    cost_usd: float | None = None

    @property
    def completions(self) -> list[ProxyRecord]:
        return [r for r in self.proxy_records if r.is_completion]


def weighted_rate(timings: list[tuple[float, float] | None]) -> float | None:
    """Tokens per second over several requests: total tokens / total seconds (not a mean of rates)."""
    pairs = [t for t in timings if t and t[0] > 0 and t[1] > 0]
    seconds = sum(s for _, s in pairs)
    return sum(n for n, _ in pairs) / seconds if seconds else None


def speed_metrics(records: list[ProxyRecord]) -> dict[str, float]:
    """Token counts, median TTFT and prompt/generation speed of the completions; what was not measured is
    left out (no usage reported, no stream and no server timings...)."""
    done = [r for r in records if r.is_completion]
    ok = [r for r in done if not r.error]
    out: dict[str, float] = {}
    if any(r.usage_reported for r in done):
        out[N.M_TOKENS_PROMPT] = float(sum(r.prompt_tokens for r in done))
        out[N.M_TOKENS_COMPLETION] = float(sum(r.completion_tokens for r in done))
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    if ttfts:
        out[N.M_TTFT_S] = statistics.median(ttfts)
    for name, value in ((N.M_PROMPT_TPS, weighted_rate([r.prompt_timing() for r in ok])),
                        (N.M_GEN_TPS, weighted_rate([r.gen_timing() for r in ok]))):
        if value is not None:
            out[name] = value
    return out


def loop_detected(agent: AgentResult | None, repeats: int = 3) -> bool:
    """The same tool call (name and arguments) `repeats` times in a row: the agent is stuck."""
    if agent is None:
        return False
    run, last = 0, None
    for call in agent.tool_calls:
        key = (call.name, json.dumps(call.args, sort_keys=True))
        run = run + 1 if key == last else 1
        last = key
        if run >= repeats:
            return True
    return False


def compute_metrics(rec: SimulationRecord) -> dict[str, float]:
    metrics: dict[str, float] = {N.M_SUCCESS: 1.0 if rec.status == N.STATUS_SUCCESS else 0.0}
    if rec.checks is not None:
        metrics[N.M_CHECKS_PASSED] = float(sum(c.passed for c in rec.checks))
        metrics[N.M_CHECKS_TOTAL] = float(len(rec.checks))
    if rec.agent is not None:
        calls = rec.agent.tool_calls
        metrics.update({
            N.M_TURNS: float(len(rec.agent.turns)),
            N.M_TOOL_CALLS: float(len(calls)),
            N.M_TOOL_ERRORS: float(sum(c.is_error for c in calls)),
            N.M_HALLUCINATED_TOOL_CALLS: float(sum(not c.known_tool for c in calls)),
            N.M_LOOP_DETECTED: 1.0 if loop_detected(rec.agent) else 0.0,
        })
    metrics.update(speed_metrics(rec.proxy_records))
    for name, value in ((N.M_LOAD_S, rec.load_s), (N.M_PEAK_VRAM_MB, rec.peak_vram_mb),
                        (N.M_PEAK_RSS_MB, rec.peak_rss_mb), (N.M_COST_USD, rec.cost_usd)):
        if value is not None:
            metrics[name] = float(value)
    metrics[N.M_WALL_S] = max(0.0, rec.ended_at - rec.started_at)
    return metrics


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
    # Tool schemas are the same on every request; keep their names so spans stay readable.
    if isinstance(req.get("tools"), list):
        req["tools"] = [((t.get("function") or {}).get("name") or t.get("name")) for t in req["tools"] if isinstance(t, dict)]
    return req or {"path": r.path}


class TraceRecorder:
    def __init__(self, client: MlflowClient, experiment_id: str, redactor: Redactor):
        self.client = client
        self.experiment_id = experiment_id
        self.redact = redactor

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=self._clean_tags(tags))
        return run.info.run_id

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for k, v in self._clean_tags(tags).items():
            self.client.set_tag(run_id, k, v)

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        items = [Param(k, self.redact.text(str(v))[:PARAM_CHARS]) for k, v in params.items() if v is not None]
        self.client.log_batch(run_id, params=items)

    def _clean_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return {k: self.redact.text(str(v)) for k, v in tags.items() if v is not None}

    def finish(self, run_id: str, rec: SimulationRecord, tags: dict[str, str], terminal: str = "FINISHED") -> tuple[dict, str | None]:
        """Log the trace, metrics, tags and artifacts, then end the run. Each part is attempted on its own (a
        failing MLflow call loses that part only, with a one-line warning) and the run is always ended."""
        problems: list[str] = []

        def attempt(what: str, fn):
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - recorded as a warning; the other parts still go in
                problems.append(f"{what}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
                return None

        metrics = attempt("metrics", lambda: compute_metrics(rec)) or {}
        trace_id = attempt("trace", lambda: self.log_trace(run_id, rec, tags))
        now_ms = int((rec.ended_at or time.time()) * 1000)
        attempt("metrics", lambda: self.client.log_batch(run_id, metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()]))
        done_tags = {**tags, N.TAG_STATUS: rec.status, N.TAG_TRACE_ID: trace_id,
                     N.TAG_ERROR: rec.error[:5000] if rec.error else None}
        attempt("tags", lambda: self.set_tags(run_id, done_tags))
        attempt("artifacts", lambda: self.log_artifacts(run_id, rec, metrics))
        try:
            self.client.set_terminated(run_id, status=terminal, end_time=now_ms)
        except Exception as e:  # noqa: BLE001
            problems.append(f"end run: {type(e).__name__}: {e}")
        for p in problems:
            log.warning("run %s: could not record %s", run_id, p)
        return metrics, trace_id

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
        r = self.redact
        agent = rec.agent
        root = self.client.start_trace(
            "simulation", span_type=SpanType.AGENT, inputs=r.data({"prompt": rec.prompt}),
            tags=self._clean_tags({**tags, N.TAG_STATUS: rec.status}), experiment_id=self.experiment_id,
            start_time_ns=_ns(rec.started_at), run_id=run_id,
        )
        trace_id = root.trace_id
        for n, p in enumerate(rec.completions, start=1):
            usage = {"input_tokens": p.prompt_tokens, "output_tokens": p.completion_tokens,
                     "total_tokens": p.prompt_tokens + p.completion_tokens}
            span = self.client.start_span(
                f"turn-{n}", trace_id=trace_id, parent_id=root.span_id, span_type=SpanType.LLM,
                inputs=r.data(_chat_input(p)), start_time_ns=_ns(p.started_at),
                attributes={"mlflow.chat.tokenUsage": usage, "ttft_s": p.ttft_s, "prompt_tps": p.prompt_tps,
                            "gen_tps": p.gen_tps, "http_status": p.status, "timings": p.timings,
                            "proxy_index": p.index, "stream": p.stream},
            )
            status = SpanStatusCode.ERROR if (p.error or p.status >= 400) else SpanStatusCode.OK
            self.client.end_span(trace_id, span.span_id, outputs=r.data(_chat_output(p)),
                                 attributes={"error": r.text(p.error)} if p.error else None,
                                 status=status, end_time_ns=_ns(max(p.ended_at, p.started_at)))
        for call in agent.tool_calls if agent else []:
            span = self.client.start_span(
                call.name or "tool", trace_id=trace_id, parent_id=root.span_id, span_type=SpanType.TOOL,
                inputs=r.data(call.args), start_time_ns=_ns(call.started_at),
                attributes={"tool_call_id": call.id, "is_error": call.is_error, "known_tool": call.known_tool},
            )
            result = call.result if len(call.result) <= TOOL_RESULT_CHARS else call.result[:TOOL_RESULT_CHARS] + "\n[truncated: full text in tool_outputs.jsonl]"
            self.client.end_span(trace_id, span.span_id, outputs=r.data({"result": result, "is_error": call.is_error}),
                                 status=SpanStatusCode.ERROR if call.is_error else SpanStatusCode.OK,
                                 end_time_ns=_ns(max(call.ended_at, call.started_at)))
        final = agent.final_text if agent else ""
        self.client.end_trace(
            trace_id, outputs=r.data({"final_message": final, "status": rec.status}),
            attributes={"status": rec.status, "error": r.text(rec.error or "")},
            status=SpanStatusCode.OK if rec.status in (N.STATUS_SUCCESS, N.STATUS_FAILED) else SpanStatusCode.ERROR,
            end_time_ns=_ns(max(rec.ended_at, rec.started_at)),
        )
        mlflow.flush_trace_async_logging()
        return trace_id
