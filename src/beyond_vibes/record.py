"""A simulation's record as plain data, and the numbers computed from it (no MLflow here: this runs in the
harness process, MLflow in the recording process)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from beyond_vibes import names as N
from beyond_vibes.agents import AgentResult
from beyond_vibes.catalog import Pricing
from beyond_vibes.checks import CheckResult
from beyond_vibes.runtime.proxy import ProxyRecord


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
    pricing: Pricing | None = None

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
