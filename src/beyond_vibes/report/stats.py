"""Statistics behind quick-eval comparisons and the sweep report.

Small, plain functions: confidence intervals for pass rates (Wilson) and judge
scores (percentile bootstrap), the unbiased pass@k estimator, paired flip counts
between a baseline and a candidate with an exact McNemar test, and the
accuracy-drop decision matrix used to call a quant or build "ship" or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion successes/n.

    center = (p + z²/2n) / (1 + z²/n); half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    z = _z(confidence)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, float(center - half)), min(1.0, float(center + half)))


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (for judge scores); deterministic for a seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("values must not be empty")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    _z(confidence)  # validates the range
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(low), float(high))


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
