"""Per-group statistics of simulation runs: pass rate with its Wilson interval, pass@k, hard failures, speed beside
the engine's llama-bench reference, memory, load time, tokens, cost, TCO and judge scores.

Absent metrics stay absent: a median or mean is taken over the runs that measured the value, and a group where no
run measured it gets None ("n/a"), never 0.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from beyond_vibes import names as N
from beyond_vibes.report.collect import Collected, Config, ServerRun, SimRun, SpeedRef
from beyond_vibes.report.judging import JudgeInfo
from beyond_vibes.stats import bootstrap_interval, pass_at_k, pass_rate_interval

DEFAULT_TASKS_PER_MONTH = 1000
TCO_FORMULA = "TCO_12m = cost per task (mean cost_usd per run) x tasks per month x 12"

# Cost tiers for promotion: unpriced (a local model logs no cost) or free = 0, then per task < $0.01, < $0.10, more.
COST_TIER_BOUNDS = (0.01, 0.10)


def cost_tier(cost_per_task: float | None) -> int:
    if cost_per_task is None or cost_per_task <= 0:
        return 0
    if cost_per_task < COST_TIER_BOUNDS[0]:
        return 1
    if cost_per_task < COST_TIER_BOUNDS[1]:
        return 2
    return 3


def tco_12m(cost_per_task: float | None, tasks_per_month: int) -> float | None:
    return None if cost_per_task is None else cost_per_task * tasks_per_month * 12


@dataclass
class JudgeScore:
    mean: float
    ci_low: float
    ci_high: float
    n: int


@dataclass
class GroupStats:
    """One group of runs: a model/quant/engine, optionally narrowed to one task or one archetype."""

    model: str
    quant: str
    engine: str
    family: str
    task: str | None
    archetype: str | None
    n: int
    passes: int
    pass_rate: float
    ci_low: float
    ci_high: float
    pass_at_k: dict[int, float]
    hard_failures: int
    hard_failure_rate: float
    tasks: int
    ttft_s_median: float | None = None
    prompt_tps_median: float | None = None
    gen_tps_median: float | None = None
    speed_pp512_tps: float | None = None  # llama-bench reference for the same served configuration (served id)
    speed_tg128_tps: float | None = None
    peak_vram_mb: float | None = None
    peak_rss_mb: float | None = None
    load_s_median: float | None = None
    tokens_prompt_mean: float | None = None
    tokens_completion_mean: float | None = None
    tokens_mean: float | None = None
    tool_errors_mean: float | None = None
    cost_per_task: float | None = None
    tco_12m: float | None = None
    cost_tier: int = 0
    review_pain: float | None = None
    review_pain_source: str | None = None  # "judge" or TOOL_ERRORS_PER_CALL
    judge: dict[str, JudgeScore] = field(default_factory=dict)
    judge_agreement: dict[str, dict] = field(default_factory=dict)  # archetype -> {kappa, exact, version}
    # Reproducibility, per task: the share of its repeats that ended with the most common outcome (status and
    # checks passed). Absent with fewer than 2 repeats: one run says nothing about consistency.
    repeat_consistency: float | None = None

    config_id: str = ""
    ci_method: str = ""  # how the pass-rate interval was computed (stats.WILSON or stats.CLUSTER)
    ttft_cold_s_median: float | None = None  # over runs' cold requests (nothing from the prompt cache)
    ttft_warm_s_median: float | None = None  # over runs' warm requests (a cached prompt prefix)

    @property
    def config(self) -> Config:
        return (self.model, self.quant, self.engine, self.config_id)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        return d


def _values(runs: Iterable[SimRun], metric: str) -> list[float]:
    return [r.metrics[metric] for r in runs if metric in r.metrics]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def pass_at_k_over_tasks(runs: list[SimRun]) -> dict[int, float]:
    """Unbiased pass@k per task (n runs, c passes), averaged over tasks, for k = 1 .. the fewest runs any task has
    (a k larger than a task's runs has no estimate for it, and leaving that task out would bias the mean)."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in runs:
        per_task[r.task].append(r.passed)
    if not per_task:
        return {}
    k_max = min(len(v) for v in per_task.values())
    return {k: statistics.fmean(pass_at_k(len(v), sum(v), k) for v in per_task.values()) for k in range(1, k_max + 1)}


def run_pain(run: SimRun, judge: JudgeInfo | None) -> float | None:
    """Review pain of one run from its judge scores: mean over the *trusted* criteria of (1 - score normalised to
    0..1). A judge that does not beat its majority baseline (or has no compiled meta) gives no pain at all."""
    info = judge or JudgeInfo(run.archetype)
    if run.tags.get(N.TAG_JUDGE_SELF) == "true":  # judged by its own model
        return None
    scores = {c: v for c, v in run.judge_scores().items() if info.criterion_trusted(c)}
    if not scores:
        return None
    return statistics.fmean(1.0 - info.goodness(c, v) for c, v in scores.items())


def ignored_judges(runs: list[SimRun], judges: dict[str, JudgeInfo]) -> list[str]:
    """Why judge scores these runs carry are left out of decisions: one line per untrusted judge."""
    out = []
    if mine := sum(1 for r in runs if r.judge_scores() and r.tags.get(N.TAG_JUDGE_SELF) == "true"):
        out.append(f"{mine} run(s) judged by their own model: scores ignored")
    for archetype in sorted({r.archetype for r in runs if r.judge_scores()}):
        info = judges.get(archetype) or JudgeInfo(archetype)
        if not info.trusted:
            out.append(f"{archetype} judge scores ignored ({info.trust})")
        elif info.untrusted_criteria:
            out.append(f"{archetype} judge criteria ignored: {', '.join(info.untrusted_criteria)} (untrusted)")
    return out


TOOL_ERRORS_PER_CALL = "tool_errors_per_call"


def review_pain(runs: list[SimRun], judges: dict[str, JudgeInfo], source: str | None = None) -> tuple[float | None, str | None]:
    """(review pain, its source). With trusted judge scores on every run: mean judge pain (0 = the judge found
    nothing to fix, 1 = worst on every criterion); otherwise tool errors per tool call over the runs (a model that
    made no tool call did no work to review: None, never a flattering 0). `source` forces one, so two groups can be
    compared on the same footing. Untrusted judges' scores never count."""
    pains = [run_pain(r, judges.get(r.archetype)) for r in runs]
    if source in (None, "judge") and runs and all(p is not None for p in pains):
        return statistics.fmean(pains), "judge"
    if source == "judge":
        return None, None
    counted = [r for r in runs if N.M_TOOL_ERRORS in r.metrics and N.M_TOOL_CALLS in r.metrics]
    calls = sum(r.metrics[N.M_TOOL_CALLS] for r in counted)
    if not calls:
        return None, None
    return sum(r.metrics[N.M_TOOL_ERRORS] for r in counted) / calls, TOOL_ERRORS_PER_CALL


def _judge_scores(runs: list[SimRun]) -> dict[str, JudgeScore]:
    by_criterion: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for c, v in r.judge_scores().items():
            by_criterion[c].append(v)
    out = {}
    for c, vals in sorted(by_criterion.items()):
        low, high = bootstrap_interval(vals)
        out[c] = JudgeScore(statistics.fmean(vals), low, high, len(vals))
    return out


def _family(runs: list[SimRun]) -> str:
    families = [r.family for r in runs if r.family]
    return statistics.mode(families) if families else runs[0].model


def summarise(runs: list[SimRun], servers: dict[str, ServerRun], speed: dict[str, SpeedRef],
              judges: dict[str, JudgeInfo], tasks_per_month: int = DEFAULT_TASKS_PER_MONTH,
              task: str | None = None, archetype: str | None = None) -> GroupStats:
    """Statistics of one non-empty group of runs of one configuration."""
    model, quant, engine, config_id = runs[0].config
    n, passes = len(runs), sum(r.passed for r in runs)
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in runs:
        by_task[r.task].append(r.passed)
    low, high, ci_method = pass_rate_interval(by_task)
    hard = sum(r.hard_failure for r in runs)
    ref = speed.get(runs[0].tags.get(N.TAG_SERVED_ID, ""))  # the same served configuration, or no reference
    linked = [servers[sid] for sid in {r.server_id for r in runs if r.server_id} if sid in servers]
    # Load time belongs to the served model: one value per server (a run's own load_s only when its server is unknown).
    loads = [s.metrics[N.M_LOAD_S] for s in linked if N.M_LOAD_S in s.metrics]
    loads += [r.metrics[N.M_LOAD_S] for r in runs if N.M_LOAD_S in r.metrics and r.server_id not in servers]
    vram = _values(runs, N.M_PEAK_VRAM_MB) + [s.metrics[N.M_PEAK_VRAM_MB] for s in linked if N.M_PEAK_VRAM_MB in s.metrics]
    rss = _values(runs, N.M_PEAK_RSS_MB) + [s.metrics[N.M_PEAK_RSS_MB] for s in linked if N.M_PEAK_RSS_MB in s.metrics]
    tokens = [r.metrics.get(N.M_TOKENS_PROMPT, 0.0) + r.metrics.get(N.M_TOKENS_COMPLETION, 0.0) for r in runs
              if N.M_TOKENS_PROMPT in r.metrics or N.M_TOKENS_COMPLETION in r.metrics]
    cost = _mean(_values(runs, N.M_COST_USD))
    pain, pain_source = review_pain(runs, judges)
    # Agreement goes beside scores: only for archetypes whose runs here were judged.
    archetypes = sorted({r.archetype for r in runs if r.archetype and r.judge_scores()})
    agreement = {a: {"kappa": judges[a].kappa, "exact": judges[a].exact, "version": judges[a].version}
                 for a in archetypes if a in judges and judges[a].kappa is not None}
    return GroupStats(
        model=model, quant=quant, engine=engine, config_id=config_id, family=_family(runs), task=task, archetype=archetype, n=n,
        passes=passes, pass_rate=passes / n, ci_low=low, ci_high=high, ci_method=ci_method,
        pass_at_k=pass_at_k_over_tasks(runs),
        hard_failures=hard, hard_failure_rate=hard / n, tasks=len({r.task for r in runs}),
        ttft_s_median=_median(_values(runs, N.M_TTFT_S)), ttft_cold_s_median=_median(_values(runs, N.M_TTFT_COLD_S)),
        ttft_warm_s_median=_median(_values(runs, N.M_TTFT_WARM_S)), prompt_tps_median=_median(_values(runs, N.M_PROMPT_TPS)),
        gen_tps_median=_median(_values(runs, N.M_GEN_TPS)),
        speed_pp512_tps=ref.metrics.get("pp512_tps") if ref else None,
        speed_tg128_tps=ref.metrics.get("tg128_tps") if ref else None,
        peak_vram_mb=max(vram) if vram else None, peak_rss_mb=max(rss) if rss else None,
        load_s_median=_median(loads), tokens_prompt_mean=_mean(_values(runs, N.M_TOKENS_PROMPT)),
        tokens_completion_mean=_mean(_values(runs, N.M_TOKENS_COMPLETION)), tokens_mean=_mean(tokens),
        tool_errors_mean=_mean(_values(runs, N.M_TOOL_ERRORS)), cost_per_task=cost,
        tco_12m=tco_12m(cost, tasks_per_month), cost_tier=cost_tier(cost), review_pain=pain,
        review_pain_source=pain_source, judge=_judge_scores(runs), judge_agreement=agreement,
        repeat_consistency=repeat_consistency(runs) if task is not None else None)


def repeat_consistency(runs: list[SimRun]) -> float | None:
    """Of one configuration's runs of one task: the share whose outcome (status, checks passed) is the most common
    one; None with fewer than two runs."""
    if len(runs) < 2:
        return None
    outcomes = [(r.status, r.metrics.get(N.M_CHECKS_PASSED)) for r in runs]
    return max(outcomes.count(o) for o in set(outcomes)) / len(outcomes)


def grouped(runs: list[SimRun], key: Callable[[SimRun], tuple]) -> dict[tuple, list[SimRun]]:
    out: dict[tuple, list[SimRun]] = defaultdict(list)
    for r in runs:
        out[key(r)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


@dataclass
class Aggregates:
    by_config: list[GroupStats]
    by_archetype: list[GroupStats]
    by_task: list[GroupStats]

    def config(self, config: Config) -> GroupStats | None:
        return next((g for g in self.by_config if g.config == config), None)


def aggregate(data: Collected, judges: dict[str, JudgeInfo], tasks_per_month: int = DEFAULT_TASKS_PER_MONTH) -> Aggregates:
    args = (data.servers, data.speed, judges, tasks_per_month)
    return Aggregates(
        by_config=[summarise(rs, *args) for rs in grouped(data.sims, lambda r: r.config).values()],
        by_archetype=[summarise(rs, *args, archetype=k[4]) for k, rs in
                      grouped(data.sims, lambda r: (*r.config, r.archetype)).items()],
        by_task=[summarise(rs, *args, task=k[4], archetype=rs[0].archetype) for k, rs in
                 grouped(data.sims, lambda r: (*r.config, r.task)).items()],
    )
