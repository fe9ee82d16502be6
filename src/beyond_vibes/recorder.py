"""TraceRecorder: one MLflow run and one linked trace per simulation, built from real timestamps."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, SpanStatusCode, SpanType

from beyond_vibes import names as N
from beyond_vibes.record import SimulationRecord, compute_metrics
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
        r = self.redact
        agent = rec.agent
        root = self.client.start_trace(
            "simulation", span_type=SpanType.AGENT, inputs=r.data({"prompt": rec.prompt}),
            tags=self._clean_tags({**tags, N.TAG_STATUS: rec.status}), experiment_id=self.experiment_id,
            start_time_ns=_ns(rec.started_at), run_id=run_id,
        )
        trace_id = root.trace_id
        for n, p in enumerate(rec.completions, start=1):
            attributes = {"model_id": (p.request or {}).get("model"), "ttft_s": p.ttft_s, "prompt_tps": p.prompt_tps,
                          "gen_tps": p.gen_tps, "http_status": p.status, "timings": p.timings, "proxy_index": p.index,
                          "stream": p.stream}
            if p.usage_reported:
                attributes["mlflow.chat.tokenUsage"] = {"input_tokens": p.prompt_tokens, "output_tokens": p.completion_tokens,
                                                        "total_tokens": p.prompt_tokens + p.completion_tokens}
            if rec.pricing is not None and rec.pricing.priced and p.usage_reported:
                # Our own price (models.yaml), so MLflow neither looks one up nor imports litellm for it.
                cin, cout = p.prompt_tokens * rec.pricing.input_per_mtok / 1e6, p.completion_tokens * rec.pricing.output_per_mtok / 1e6
                attributes["mlflow.llm.cost"] = {"input_cost": cin, "output_cost": cout, "total_cost": cin + cout}
            span = self.client.start_span(
                f"turn-{n}", trace_id=trace_id, parent_id=root.span_id, span_type=SpanType.LLM,
                inputs=r.data(_chat_input(p)), start_time_ns=_ns(p.started_at), attributes=attributes,
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


# Run in the recording process (tracking.TrackingWorker): arguments and results are plain, picklable data.

def open_simulation_run(settings: Settings, redactor: Redactor, name: str, tags: dict, params: dict) -> str:
    """Reap runs whose writer died, then create this run (RUNNING) with its params."""
    from beyond_vibes.tracking import reap_orphaned_runs, tracking_client

    client, exp_id = tracking_client(settings)
    reap_orphaned_runs(client, [exp_id])
    recorder = TraceRecorder(client, exp_id, redactor)
    run_id = recorder.start_run(name, tags)
    recorder.log_params(run_id, params)
    return run_id


def finish_simulation_run(settings: Settings, redactor: Redactor, run_id: str, rec: SimulationRecord, tags: dict,
                          terminal: str) -> tuple[dict, str | None, list[str]]:
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings)
    return TraceRecorder(client, exp_id, redactor).finish(run_id, rec, tags, terminal)
