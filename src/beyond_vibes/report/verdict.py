"""The report's first screen: what the data decides, in words, before any table.

For all tasks, then per task set (archetype) when there are several, and per role when a roles file was given:
the two best configurations by pass rate, and their difference paired by task with its 95% interval
(`stats.paired_difference`). One wins when that interval excludes 0; otherwise they cannot be told apart yet, and
the verdict says about how many repeats of each task would resolve a difference of the size seen (or of 10 points
when none was seen): the two-proportion sample size at 5% significance and 80% power, spread over the tasks run.
That estimate treats runs as independent, so it is a floor: when tasks disagree, more tasks help more than repeats.
"""

from __future__ import annotations

import math
from collections import defaultdict

from beyond_vibes.report.aggregate import Aggregates, GroupStats
from beyond_vibes.report.collect import SimRun, config_label
from beyond_vibes.stats import Difference, paired_difference

MIN_EFFECT = 0.10  # the smallest difference worth resolving when none was observed


def runs_needed(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Runs per configuration for a two-sided two-proportion z-test to detect p1 vs p2 (None when p1 == p2)."""
    from scipy.stats import norm

    if p1 == p2:
        return None
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    pbar = (p1 + p2) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p1 - p2) ** 2
    return math.ceil(n)


def _rate(g: GroupStats) -> str:
    return f"{g.pass_rate:.0%} [{g.ci_low:.0%}, {g.ci_high:.0%}] (n={g.n} over {g.tasks} task(s))"


def _points(x: float) -> str:
    return f"{x * 100:+.0f}"


def _by_task(runs: list[SimRun]) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = defaultdict(list)
    for r in runs:
        out[r.task].append(r.passed)
    return out


def _difference(best: GroupStats, second: GroupStats, runs: list[SimRun]) -> Difference | None:
    return paired_difference(_by_task([r for r in runs if r.config == best.config]),
                             _by_task([r for r in runs if r.config == second.config]))


def decide(groups: list[GroupStats], runs: list[SimRun]) -> str:
    """One sentence for one scope: the winner and by how much, or why there is none yet."""
    ranked = sorted(groups, key=lambda g: (-g.pass_rate, g.hard_failure_rate, config_label(g.config)))
    best = ranked[0]
    if len(ranked) == 1:
        return f"one configuration only: {config_label(best.config)} passed {_rate(best)}; nothing to compare it with."
    second = ranked[1]
    if best.passes == 0:
        return (f"no configuration passed a task. The best upper bound is {best.ci_high:.0%} "
                f"({config_label(best.config)}, n={best.n}): too little data to tell these apart, and none is usable "
                "on this evidence.")
    diff = _difference(best, second, runs)
    both = f"{config_label(best.config)} at {_rate(best)} and {config_label(second.config)} at {_rate(second)}"
    if diff is None:
        return (f"**cannot tell apart**: {both} ran no task in common, so no paired difference can be made; run "
                "them on the same tasks.")
    interval = (f"{_points(diff.mean)} points [{_points(diff.low)}, {_points(diff.high)}] ({diff.method}, "
                f"{diff.tasks} shared task(s))")
    if diff.low > 0:
        return (f"**{config_label(best.config)} wins** over the runner-up {config_label(second.config)} by {interval}: "
                f"{_rate(best)} against {_rate(second)}.")
    if diff.high < 0:  # ranked first over all its tasks, yet worse on the tasks both ran
        return (f"**{config_label(second.config)} wins on the tasks both ran**: {config_label(best.config)} minus it is "
                f"{interval}, although {config_label(best.config)} ranks first over all its tasks ({_rate(best)} "
                f"against {_rate(second)}); they ran different task sets: compare them on the same tasks.")
    seen = best.pass_rate - second.pass_rate
    big = seen >= MIN_EFFECT - 1e-9  # 0.6 - 0.5 is 0.0999... in floating point
    p2 = second.pass_rate if big else max(0.0, best.pass_rate - MIN_EFFECT)
    need = runs_needed(best.pass_rate, p2)
    tasks = max(best.tasks, second.tasks, 1)
    size = f"{seen * 100:.0f} points (as seen)" if big else f"{MIN_EFFECT * 100:.0f} points"
    have = max(1, round(min(best.n, second.n) / tasks))
    more = ""
    if need:
        per_task = math.ceil(need / tasks)
        more = (f" Resolving a difference of {size} at 80% power needs about {need} runs per configuration, i.e. "
                f"{per_task} repeats of each of the {tasks} task(s) ({max(0, per_task - have)} more than the "
                f"{have} run now).")
    return f"**cannot tell apart yet**: {both}; difference {interval} includes 0.{more}"


def verdict(agg: Aggregates, runs: list[SimRun], promotion: list | None = None) -> list[str]:
    """A few lines: the decision for all tasks, per task set when there are several, per role when given."""
    if not agg.by_config:
        return []
    lines = [f"**All tasks**: {decide(agg.by_config, runs)}"]
    archetypes = sorted({g.archetype for g in agg.by_archetype})
    if len(archetypes) > 1:
        for arch in archetypes:
            scoped = [g for g in agg.by_archetype if g.archetype == arch]
            lines.append(f"**{arch}**: {decide(scoped, [r for r in runs if r.archetype == arch])}")
    for d in promotion or []:
        lines.append(f"**Role {d.role}**: {d.verdict} (the promotion gates, below).")
    if len(agg.by_config) > 2:
        lines.append(f"{len(agg.by_config) - 2} more configuration(s) below the two named; the summary table has "
                     "them all.")
    return lines
