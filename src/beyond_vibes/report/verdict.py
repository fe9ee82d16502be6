"""The report's first screen: what the data decides, in words, before any table.

The two best configurations by pass rate: one wins when their 95% intervals do not overlap; otherwise they cannot
be told apart yet, and the verdict says about how many runs would resolve a difference of the size seen (or of
10 points when none was seen): the two-proportion sample size at 5% significance and 80% power, spread over the
tasks run. Overlap of two intervals is a conservative screen, not a test: the paired comparison against a
baseline (McNemar) is the test, further down.
"""

from __future__ import annotations

import math

from beyond_vibes.report.aggregate import GroupStats
from beyond_vibes.report.collect import config_label

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


def verdict(groups: list[GroupStats]) -> list[str]:
    """A few sentences: the decision, or why there is none yet."""
    if not groups:
        return []
    ranked = sorted(groups, key=lambda g: (-g.pass_rate, g.hard_failure_rate, config_label(g.config)))
    best = ranked[0]
    if len(ranked) == 1:
        return [f"One configuration only: {config_label(best.config)} passed {_rate(best)}. Nothing to compare it "
                "with."]
    second = ranked[1]
    if best.passes == 0:
        return [f"No configuration passed a task. The best upper bound is {best.ci_high:.0%} "
                f"({config_label(best.config)}, n={best.n}): too little data to tell these apart, and none is "
                "usable on this evidence."]
    lines = []
    if best.ci_low > second.ci_high:
        lines.append(f"**{config_label(best.config)} wins**: {_rate(best)} against the runner-up "
                     f"{config_label(second.config)} at {_rate(second)}; +{(best.pass_rate - second.pass_rate) * 100:.0f} "
                     "points, and the intervals do not overlap.")
    else:
        seen = best.pass_rate - second.pass_rate
        big = seen >= MIN_EFFECT - 1e-9  # 0.6 - 0.5 is 0.0999... in floating point
        p2 = second.pass_rate if big else max(0.0, best.pass_rate - MIN_EFFECT)
        need = runs_needed(best.pass_rate, p2)
        tasks = max(best.tasks, second.tasks, 1)
        size = f"{seen * 100:.0f} points (as seen)" if big else f"{MIN_EFFECT * 100:.0f} points"
        more = (f" Resolving a difference of {size} at 80% power needs about {need} runs per configuration, i.e. "
                f"{math.ceil(need / tasks)} repeats of each of the {tasks} task(s)." if need else "")
        lines.append(f"**Cannot tell apart yet**: {config_label(best.config)} at {_rate(best)} and "
                     f"{config_label(second.config)} at {_rate(second)}; the intervals overlap.{more}")
    if len(ranked) > 2:
        lines.append(f"{len(ranked) - 2} more configuration(s) below; the summary table has them all.")
    return lines
