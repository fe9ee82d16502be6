"""Quick-eval results for the report: accuracy per set and difficulty with Wilson intervals (from the per-item
tables, so every rate has its interval), and item-by-item comparisons against the baseline's same set."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from beyond_vibes import names as N
from beyond_vibes.report.collect import QuickEvalRun, config_label
from beyond_vibes.report.compare import Comparison, ConfigRef, compare
from beyond_vibes.stats import Thresholds, wilson_interval

DIFFICULTIES = ("easy", "medium", "hard")


@dataclass
class Rate:
    passes: int
    n: int
    rate: float
    ci_low: float
    ci_high: float


def rate(passes: int, n: int) -> Rate | None:
    if n <= 0:
        return None
    low, high = wilson_interval(passes, n)
    return Rate(passes, n, passes / n, low, high)


@dataclass
class QuickEvalSummary:
    set: str
    model: str
    quant: str
    engine: str
    run_id: str
    accuracy: Rate | None
    by_difficulty: dict[str, Rate] = field(default_factory=dict)
    items_per_s: float | None = None
    gen_tps: float | None = None
    set_version: str | None = None
    config_id: str = ""
    # How it was served and asked (identity.planned_identity: model file, build, engine flags, chat template,
    # sampling, adapter), from the run's config_identity param; empty for runs from before identities.
    identity: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return config_label((self.model, self.quant, self.engine, self.config_id))

    def as_dict(self) -> dict:
        return asdict(self)


def summarise(run: QuickEvalRun) -> QuickEvalSummary:
    m = run.metrics
    scored = [r for r in run.items or [] if r.get("passed") is not None]
    if scored:
        acc = rate(sum(bool(r["passed"]) for r in scored), len(scored))
        levels: dict[str, list[bool]] = defaultdict(list)
        for r in scored:
            levels[str(r.get("difficulty") or "unknown")].append(bool(r["passed"]))
        by_level = {lv: rate(sum(v), len(v)) for lv, v in sorted(levels.items(), key=lambda kv: (
            DIFFICULTIES.index(kv[0]) if kv[0] in DIFFICULTIES else 9, kv[0]))}
    else:  # no item table: the logged metrics (intervals only for the overall accuracy)
        n = int(m.get("n_items", 0))
        acc = Rate(round(m["accuracy"] * n), n, m["accuracy"], m.get("accuracy_ci_low", m["accuracy"]),
                   m.get("accuracy_ci_high", m["accuracy"])) if "accuracy" in m else None
        by_level = {lv: Rate(0, 0, m[f"accuracy_{lv}"], m[f"accuracy_{lv}"], m[f"accuracy_{lv}"])
                    for lv in DIFFICULTIES if f"accuracy_{lv}" in m}
    return QuickEvalSummary(run.set, run.model, run.quant, run.engine, run.run_id, acc, by_level,
                            m.get("items_per_s"), m.get("gen_tps"), run.params.get("set_version"), run.config_id,
                            _identity(run.params.get(N.PARAM_CONFIG_IDENTITY)))


def _identity(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def compare_quick_evals(runs: list[QuickEvalRun], baseline: ConfigRef, thresholds: Thresholds = Thresholds()) -> list[Comparison]:
    """Per set: every other model/quant/engine against the baseline's run of the same set, paired by item id."""
    out = []
    by_set: dict[str, list[QuickEvalRun]] = defaultdict(list)
    for r in runs:
        by_set[r.set].append(r)
    for set_name, rs in sorted(by_set.items()):
        base = [r for r in rs if baseline.matches(r.config)]
        if not base:
            continue
        ref = max(base, key=lambda r: r.start_time)
        for r in rs:
            if r is ref or r.items is None or ref.items is None:
                continue
            out.append(compare(ref.outcomes(), r.outcomes(), config_label(ref.config), config_label(r.config),
                               set_name, thresholds))
    return out
