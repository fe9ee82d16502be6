"""The statistics of the report and the quick evals alike (neither package imports the other for them), on scipy.

Intervals for pass rates: Wilson (`scipy.stats.binomtest(...).proportion_ci`) when every trial is independent, a
clustered standard error over tasks (as Inspect AI reports it) when tasks were repeated: ten repeats of two tasks are
two clusters, not twenty independent trials. The difference between two configurations paired by task, a percentile
bootstrap for judge scores (`scipy.stats.bootstrap`), the unbiased pass@k estimator, paired flips between a baseline
and a candidate with an exact McNemar test, the paired comparison itself, and the accuracy-drop decision matrix used
to call a quant or build "ship" or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion successes/n (scipy's binomtest)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    _check_confidence(confidence)
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (for judge scores; scipy's bootstrap); deterministic for a seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("values must not be empty")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    _check_confidence(confidence)
    if data.size < 2 or data.min() == data.max():
        return (float(data.mean()), float(data.mean()))
    ci = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return (float(ci.low), float(ci.high))


WILSON = "Wilson (independent runs)"
CLUSTER = "clustered by task"
PAIRED = "paired by task"
NEWCOMBE = "Newcombe, one shared task"


def pass_rate_interval(outcomes_by_task: Mapping[str, Sequence[bool]], confidence: float = 0.95
                       ) -> tuple[float, float, str]:
    """(low, high, method) for the pooled pass rate of runs grouped by task.

    One run per task: the runs are independent trials, Wilson. With repeats, runs of one task are correlated: the
    interval is p ± t(k-1) * SE with the cluster-robust standard error of the pooled rate over k tasks (SE² =
    k/(k-1) * Σ(passes_i - p * runs_i)² / N², as Inspect AI's clustered stderr), and never narrower than Wilson
    over the N runs (a cluster-robust SE is 0 when every task has the same rate, which is not certainty). With a
    single task repeated there is no between-task spread: Wilson over its runs, said so."""
    from scipy.stats import t as student_t

    clusters = [list(map(bool, v)) for v in outcomes_by_task.values() if len(v)]
    n = sum(len(c) for c in clusters)
    if n == 0:
        raise ValueError("no outcomes")
    passes = sum(sum(c) for c in clusters)
    low, high = wilson_interval(passes, n, confidence)
    if all(len(c) == 1 for c in clusters) or len(clusters) < 2:
        return low, high, WILSON
    k, p = len(clusters), passes / n
    residuals = np.array([sum(c) - p * len(c) for c in clusters], dtype=float)
    se = float(np.sqrt(k / (k - 1) * (residuals ** 2).sum()) / n)
    half = float(student_t.ppf(1 - (1 - confidence) / 2, k - 1)) * se
    return max(0.0, min(low, p - half)), min(1.0, max(high, p + half)), CLUSTER


@dataclass(frozen=True)
class Difference:
    """Pass rate of A minus B over the tasks both ran, paired by task, with its interval and how it was made."""

    mean: float
    low: float
    high: float
    tasks: int
    method: str


def paired_difference(a: Mapping[str, Sequence[bool]], b: Mapping[str, Sequence[bool]], confidence: float = 0.95
                      ) -> Difference | None:
    """A's minus B's pass rate over the tasks both ran (None when they share none). Each task's rate difference is
    one observation: mean ± t(k-1) × sd/√k, so the interval reflects how much the difference varies from task to task;
    never narrower than Newcombe's interval from the two Wilson intervals (a task-to-task spread of 0 is not
    certainty), and Newcombe's alone with a single task."""
    from scipy.stats import t as student_t

    _check_confidence(confidence)
    shared = sorted(t for t in a if t in b and len(a[t]) and len(b[t]))
    if not shared:
        return None
    runs_a = [bool(x) for t in shared for x in a[t]]
    runs_b = [bool(x) for t in shared for x in b[t]]
    d = np.array([np.mean([bool(x) for x in a[t]]) - np.mean([bool(x) for x in b[t]]) for t in shared], dtype=float)
    mean = float(d.mean())
    # Newcombe (1998) method 10 on the pooled rates of the shared tasks.
    pa, pb = sum(runs_a) / len(runs_a), sum(runs_b) / len(runs_b)
    la, ua = wilson_interval(sum(runs_a), len(runs_a), confidence)
    lb, ub = wilson_interval(sum(runs_b), len(runs_b), confidence)
    low = pa - pb - float(np.hypot(pa - la, ub - pb))
    high = pa - pb + float(np.hypot(ua - pa, pb - lb))
    if len(d) < 2:
        return Difference(mean, max(-1.0, low), min(1.0, high), 1, NEWCOMBE)
    half = float(student_t.ppf(1 - (1 - confidence) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return Difference(mean, max(-1.0, min(low, mean - half)), min(1.0, max(high, mean + half)), len(d), PAIRED)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k)/C(n, k) (Chen et al. 2021), from n samples with c correct.

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) to avoid huge binomials.
    """
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be positive, got n={n}, k={k}")
    if k > n:
        raise ValueError(f"k must not exceed n, got k={k} > n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n], got c={c}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass(frozen=True)
class Flips:
    """Paired outcomes of a baseline and a candidate on the same items."""

    both_pass: int
    both_fail: int
    lost: int  # baseline passed, candidate failed
    gained: int  # baseline failed, candidate passed

    @property
    def n(self) -> int:
        return self.both_pass + self.both_fail + self.lost + self.gained

    @property
    def flip_rate(self) -> float | None:
        """Share of paired items whose outcome changed; None with no paired items."""
        return (self.lost + self.gained) / self.n if self.n else None


def flip_counts(baseline: Mapping[str, bool], candidate: Mapping[str, bool]) -> Flips:
    """Count outcome flips over the items present in both runs (unpaired items are ignored)."""
    both_pass = both_fail = lost = gained = 0
    for key in baseline.keys() & candidate.keys():
        b, c = bool(baseline[key]), bool(candidate[key])
        if b and c:
            both_pass += 1
        elif b:
            lost += 1
        elif c:
            gained += 1
        else:
            both_fail += 1
    return Flips(both_pass=both_pass, both_fail=both_fail, lost=lost, gained=gained)


def mcnemar_p(flips: Flips) -> float:
    """Exact two-sided McNemar p-value: binomial test of lost vs lost+gained at p=0.5.

    No discordant pairs gives 1.0 (no evidence of a difference).
    """
    discordant = flips.lost + flips.gained
    if discordant == 0:
        return 1.0
    return float(binomtest(flips.lost, discordant, 0.5, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Thresholds:
    """Accuracy-drop boundaries, in percentage points."""

    ship: float = 1.0
    acceptable: float = 3.0
    marginal: float = 5.0


def decision(drop_points: float, thresholds: Thresholds = Thresholds()) -> str:
    """Verdict for an accuracy drop in percentage points.

    Decision matrix from the lm-evaluation-harness quantization guide
    (<1% ship, 1-3% acceptable, 3-5% marginal, >5% too high), with defaults:

    - drop < 1.0          -> "ship" (a negative drop, an improvement, is "ship")
    - 1.0 <= drop < 3.0   -> "acceptable"
    - 3.0 <= drop <= 5.0  -> "marginal"
    - drop > 5.0          -> "too high"
    """
    if drop_points < thresholds.ship:
        return "ship"
    if drop_points < thresholds.acceptable:
        return "acceptable"
    if drop_points <= thresholds.marginal:
        return "marginal"
    return "too high"


def accuracy_drop(baseline_accuracy: float, accuracy: float) -> float:
    """Drop from baseline in percentage points (accuracies as fractions 0..1); negative = improvement."""
    return (baseline_accuracy - accuracy) * 100.0


@dataclass
class Comparison:
    baseline: str
    candidate: str
    scope: str  # "all", an archetype, or a quick-eval set
    n_paired: int
    baseline_rate: float | None  # over the paired items only
    candidate_rate: float | None
    drop_points: float | None
    both_pass: int
    both_fail: int
    lost: int  # pass -> fail
    gained: int  # fail -> pass
    flip_rate: float | None
    p_value: float
    decision: str

    def as_dict(self) -> dict:
        return asdict(self)


def compare(baseline: Mapping[str, bool], candidate: Mapping[str, bool], baseline_label: str, candidate_label: str,
            scope: str, thresholds: Thresholds) -> Comparison:
    """Paired on the keys both have: rates over the pairs, the drop in points, flips each way, McNemar, decision."""
    f = flip_counts(baseline, candidate)
    if not f.n:
        return Comparison(baseline_label, candidate_label, scope, 0, None, None, None, 0, 0, 0, 0, None, 1.0,
                          "n/a (nothing paired)")
    base_rate, cand_rate = (f.both_pass + f.lost) / f.n, (f.both_pass + f.gained) / f.n
    drop = (base_rate - cand_rate) * 100.0
    return Comparison(baseline_label, candidate_label, scope, f.n, base_rate, cand_rate, drop, f.both_pass,
                      f.both_fail, f.lost, f.gained, f.flip_rate, mcnemar_p(f), decision(drop, thresholds))
