"""A simulation's record as plain data, and the numbers computed from it (no MLflow here: this runs in the
harness process, MLflow in the recording process)."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field

from beyond_vibes import names as N
from beyond_vibes.agents import AgentResult
from beyond_vibes.catalog import Pricing
from beyond_vibes.checks import CheckResult
from beyond_vibes.objective import objective_criteria, objective_metrics
from beyond_vibes.runtime.proxy import ProxyRecord


@dataclass
class SimulationRecord:
    """Everything a simulation produced, as plain data; the recorder turns it into MLflow. None means
    "not measured" and is never logged as a number."""

    prompt: str
    started_at: float
    ended_at: float = 0.0
    task: str = ""
    archetype: str = ""
    guidelines: dict[str, str] = field(default_factory=dict)
    workspace: str | None = None  # the repo's path, as the agent saw it (tool arguments use it)
    base_commit: str = ""
    checks_started_at: float | None = None
    status: str = N.STATUS_ERROR
    error: str | None = None
    agent: AgentResult | None = None
    proxy_records: list[ProxyRecord] = field(default_factory=list)
    checks: list[CheckResult] | None = None  # None: the checks never ran
    diff: str = ""
    server_log: str = ""
    load_s: float | None = None
    setup_s: float | None = None  # the task's setup commands
    peak_rss_mb: float | None = None
    peak_vram_mb: float | None = None
    cost_usd: float | None = None
    pricing: Pricing | None = None
    base_files: set[str] | None = None  # the files of the base commit (citation grounding); None: not listed
    scope: list[str] | None = None  # the task's declared scope (globs); None: it declares none

    @property
    def completions(self) -> list[ProxyRecord]:
        return [r for r in self.proxy_records if r.is_completion]

    def reason(self) -> str | None:
        """Why the run is not a success, in one line ("checks failed: tests_pass (ZeroDivisionError: ...)")."""
        if self.status == N.STATUS_SUCCESS:
            return None
        if self.status == N.STATUS_FAILED and self.checks:
            failed = [c for c in self.checks if not c.passed]
            return "checks failed: " + ", ".join(f"{c.name} ({check_failure(c)})" if check_failure(c) else c.name
                                                 for c in failed)
        return self.error or self.status

    def task_inputs(self) -> dict:
        return {"task": self.task, "archetype": self.archetype, "prompt": self.prompt, "guidelines": self.guidelines}

    def outcome(self) -> dict:
        """What a reviewer (or a judge) needs to know about the result, in the trace itself."""
        agent = self.agent
        return {
            "status": self.status,
            "reason": self.reason(),
            "checks": [{"name": c.name, "passed": c.passed, "exit_code": c.exit_code, "output_tail": c.output_tail[-800:]}
                       for c in self.checks or []],
            # Fenced, so the MLflow UI keeps its line breaks (span outputs render as Markdown).
            "diff": fence_diff(self.diff if len(self.diff) <= DIFF_CHARS else self.diff[:DIFF_CHARS] + "\n[truncated: full diff in diff.txt]"),
            "final_message": agent.final_text if agent else "",
            "stop_reason": agent.stop_reason if agent else None,
            "error": self.error,
        }


DIFF_CHARS = 20000  # in the trace; the artifact has it all


def fence_diff(diff: str) -> str:
    return f"```diff\n{diff.rstrip()}\n```" if diff.strip() else ""


def unfence_diff(text: str) -> str:
    """The diff from a trace's outcome (fenced since it renders as Markdown)."""
    if text.startswith("```diff\n") and text.rstrip().endswith("```"):
        return text[len("```diff\n"):text.rstrip().rfind("```")]
    return text


def check_failure(check: CheckResult, limit: int = 80) -> str:
    """The telling line of a failed check's output: the first line naming an exception (the first failure is
    usually the cause), else the last line mentioning a failure, else its last line."""
    if check.passed:
        return ""
    if check.exit_code is None:
        return "killed at its timeout"
    lines = [ln.strip() for ln in check.output_tail.splitlines() if ln.strip()]
    telling = [ln for ln in lines if re.search(r"(Error|Exception|assert|Traceback|FAIL)", ln) and not set(ln) <= set("-=")]
    pick = next((ln for ln in telling if re.search(r"\w+(Error|Exception)\b:", ln)), None)
    line = pick or (telling[-1] if telling else (lines[-1] if lines else f"exit {check.exit_code}"))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def weighted_rate(timings: list[tuple[float, float] | None]) -> float | None:
    """Tokens per second over several requests: total tokens / total seconds (not a mean of rates)."""
    pairs = [t for t in timings if t and t[0] > 0 and t[1] > 0]
    seconds = sum(s for _, s in pairs)
    return sum(n for n, _ in pairs) / seconds if seconds else None


def usage_complete(completions: list[ProxyRecord]) -> bool:
    """Every completion reported its token usage (so token totals, and a cost from them, are true)."""
    return bool(completions) and all(r.usage_reported for r in completions)


def speed_metrics(records: list[ProxyRecord]) -> dict[str, float]:
    """Token counts, median TTFT and prompt/generation speed of the completions; what was not measured is
    left out (no usage reported, no stream and no server timings...)."""
    done = [r for r in records if r.is_completion]
    ok = [r for r in done if not r.error]
    out: dict[str, float] = {}
    if done:
        out[N.M_REQUESTS] = float(len(done))
        out[N.M_REQUESTS_WITH_USAGE] = float(sum(r.usage_reported for r in done))
    if usage_complete(done):  # a total with a request that reported nothing would count it as 0 tokens: absent
        out[N.M_TOKENS_PROMPT] = float(sum(r.prompt_tokens for r in done))
        out[N.M_TOKENS_COMPLETION] = float(sum(r.completion_tokens for r in done))
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    if ttfts:
        out[N.M_TTFT_S] = statistics.median(ttfts)
    # Cold and warm apart: a request with nothing from the server's prompt cache pays for its whole prompt.
    cold = [r.ttft_s for r in ok if r.ttft_s is not None and r.cached == 0]
    warm = [r.ttft_s for r in ok if r.ttft_s is not None and (r.cached or 0) > 0]
    if cold:
        out[N.M_TTFT_COLD_S] = statistics.median(cold)
    if warm:
        out[N.M_TTFT_WARM_S] = statistics.median(warm)
    if done and all(r.cached is not None for r in done):
        out[N.M_TOKENS_PROMPT_CACHED] = float(sum(r.cached for r in done))
    for name, value in ((N.M_PROMPT_TPS, weighted_rate([r.prompt_timing() for r in ok])),
                        (N.M_GEN_TPS, weighted_rate([r.gen_timing() for r in ok]))):
        if value is not None:
            out[name] = value
    return out


def loop_detected(agent: AgentResult | None) -> bool:
    """The agent is stuck: one call, or a cycle of two or three (read, ls, read, ls...), three times in a row."""
    from beyond_vibes.objective import repeated_cycle

    return agent is not None and repeated_cycle([(c.name, c.args) for c in agent.tool_calls]) is not None


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
    metrics.update(objective_metrics(objective_criteria(rec)))
    metrics.update(speed_metrics(rec.proxy_records))
    for name, value in ((N.M_LOAD_S, rec.load_s), (N.M_PEAK_VRAM_MB, rec.peak_vram_mb),
                        (N.M_PEAK_RSS_MB, rec.peak_rss_mb), (N.M_COST_USD, rec.cost_usd), (N.M_SETUP_S, rec.setup_s)):
        if value is not None:
            metrics[name] = float(value)
    metrics[N.M_WALL_S] = max(0.0, rec.ended_at - rec.started_at)
    return {k: round(v, ROUNDING.get(k, 6)) for k, v in metrics.items()}


# Digits worth showing: milliseconds for latencies, a tenth of a token/s, whole megabytes, micro-dollars.
ROUNDING = {N.M_TTFT_S: 3, N.M_PROMPT_TPS: 1, N.M_GEN_TPS: 1, N.M_LOAD_S: 3, N.M_WALL_S: 2, N.M_PEAK_RSS_MB: 0,
            N.M_PEAK_VRAM_MB: 0, N.M_COST_USD: 6, N.M_SETUP_S: 2}
