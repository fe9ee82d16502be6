"""A candidate quant against the baseline on the same set, item by item: accuracy drop, flips each way, McNemar's
exact test and the decision (ship / acceptable / marginal / too high)."""

from __future__ import annotations

from beyond_vibes.quick_eval.run import SetRun
from beyond_vibes.stats import Comparison, Thresholds, compare as compare_paired


def compare(baseline: SetRun, candidate: SetRun, thresholds: Thresholds = Thresholds()) -> Comparison | None:
    """Paired on the items both runs scored (the report's comparison, scope = the set); None when they share none."""
    c = compare_paired(baseline.outcomes(), candidate.outcomes(), f"{baseline.model}:{baseline.quant or 'api'}",
                       f"{candidate.model}:{candidate.quant or 'api'}", baseline.set.name, thresholds)
    return c if c.n_paired else None


def comparison_metrics(c: Comparison) -> dict[str, float]:
    """What is logged on the candidate's run."""
    return {"drop_vs_baseline_points": round(c.drop_points, 3), "flips_lost": c.lost, "flips_gained": c.gained,
            "flip_rate": round(c.flip_rate or 0.0, 4), "mcnemar_p": round(c.p_value, 6)}


def log_comparison(settings, run: SetRun, comparison: Comparison, baseline_run_id: str, experiment: str,
                   ood_verdict: str | None = None) -> None:
    """The comparison on the candidate's run; `ood_verdict`: on an out-of-domain set, within N points of base?"""
    import time

    from mlflow.entities import Metric, RunTag

    from beyond_vibes.tracking import tracking_client

    client, _ = tracking_client(settings, experiment)
    now = int(time.time() * 1000)
    client.log_batch(run.run_id, metrics=[Metric(k, v, now, 0) for k, v in comparison_metrics(comparison).items()],
                     tags=[RunTag("bv.baseline_run", baseline_run_id), RunTag("bv.baseline", comparison.baseline),
                           RunTag("bv.decision", comparison.decision),
                           *([RunTag("bv.ood_verdict", ood_verdict)] if ood_verdict else [])])
