"""A candidate quant against the baseline on the same set, item by item: accuracy drop, flips each way, McNemar's
exact test and the decision (ship / acceptable / marginal / too high)."""

from __future__ import annotations

from dataclasses import dataclass

from beyond_vibes.quick_eval.run import SetRun
from beyond_vibes.report.stats import Flips, Thresholds, accuracy_drop, decision, flip_counts, mcnemar_p


@dataclass
class Comparison:
    set: str
    baseline: str  # model:quant
    candidate: str
    baseline_accuracy: float
    accuracy: float
    drop_points: float  # percentage points; negative: the candidate is better
    flips: Flips
    p_value: float
    decision: str

    def metrics(self) -> dict[str, float]:
        """What is logged on the candidate's run."""
        return {"drop_vs_baseline_points": round(self.drop_points, 3), "flips_lost": self.flips.lost,
                "flips_gained": self.flips.gained, "flip_rate": round(self.flips.flip_rate or 0.0, 4),
                "mcnemar_p": round(self.p_value, 6)}


def compare(baseline: SetRun, candidate: SetRun, thresholds: Thresholds = Thresholds()) -> Comparison | None:
    """Paired on the items both runs scored; None when they share none."""
    base, cand = baseline.outcomes(), candidate.outcomes()
    flips = flip_counts(base, cand)
    if flips.n == 0:
        return None
    paired = [k for k in base if k in cand]
    base_acc = sum(base[k] for k in paired) / len(paired)
    acc = sum(cand[k] for k in paired) / len(paired)
    drop = accuracy_drop(base_acc, acc)
    return Comparison(baseline.set.name, f"{baseline.model}:{baseline.quant}", f"{candidate.model}:{candidate.quant}",
                      base_acc, acc, drop, flips, mcnemar_p(flips), decision(drop, thresholds))


def log_comparison(settings, run: SetRun, comparison: Comparison, baseline_run_id: str, experiment: str) -> None:
    import time

    from mlflow.entities import Metric, RunTag

    from beyond_vibes.tracking import tracking_client

    client, _ = tracking_client(settings, experiment)
    now = int(time.time() * 1000)
    client.log_batch(run.run_id, metrics=[Metric(k, v, now, 0) for k, v in comparison.metrics().items()],
                     tags=[RunTag("bv.baseline_run", baseline_run_id), RunTag("bv.baseline", comparison.baseline),
                           RunTag("bv.decision", comparison.decision)])
