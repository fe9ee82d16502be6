"""`quick-eval` over several sets x models x quants, with an optional baseline: everything a user can get wrong is
checked (sets, models, quants, engines, model files, the baseline) before the first model loads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from beyond_vibes.errors import ConfigError
from beyond_vibes.quick_eval.compare import Comparison, compare, log_comparison
from beyond_vibes.quick_eval.run import SetRun, run_quick_eval
from beyond_vibes.quick_eval.sets import load_set
from beyond_vibes.stats import Thresholds


@dataclass
class Target:
    model: object  # catalog.Model
    quant: str | None

    @property
    def label(self) -> str:
        return f"{self.model.label}:{self.quant or 'api'}"


@dataclass
class QuickEvalResult:
    runs: list[SetRun]
    comparisons: list[Comparison] = field(default_factory=list)
    baseline: str | None = None
    ood_sets: list[str] = field(default_factory=list)  # out-of-domain sets (`--ood`): judged "within N points"
    ood_points: float = 5.0
    adapters: list[str] = field(default_factory=list)  # labels of the adapter variants (model+adapter:quant)
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)  # (set, candidate) -> out-of-domain verdict

    def ood_verdict(self, c: Comparison) -> str | None:
        return self.verdicts.get((c.scope, c.candidate))


def ood_verdict(base: dict[str, bool], candidate: dict[str, bool], points: float) -> str:
    """Does the candidate stay within `points` of its base on an out-of-domain set? Decided on the 95% interval of
    the change, paired by item (`stats.paired_difference`): within when its lower end is above -points, outside
    when its upper end is below, else inconclusive (the set is too small to tell)."""
    from beyond_vibes.stats import paired_difference

    d = paired_difference({k: [v] for k, v in candidate.items()}, {k: [v] for k, v in base.items()})
    if d is None:
        return "no shared items"
    change = f"{d.mean * 100:+.1f} points [{d.low * 100:+.1f}, {d.high * 100:+.1f}]"
    limit = -points / 100
    if d.low >= limit - 1e-12:
        return f"within {points:g} points of base: {change}"
    if d.high < limit:
        return f"outside: {change}, more than {points:g} below base"
    return f"inconclusive: {change} spans -{points:g}; more items would tell"


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def targets(catalog, models: str | None, quants: str | None, adapter: str | None = None) -> list[Target]:
    """Each model x quant; with `adapter`, every model that has it runs twice, base then adapter (an API model, the
    frontier upper bound, runs once). No model with that adapter is one line."""
    out: list[Target] = []
    for name in split_list(models) or [None]:
        model = catalog.model(name) if name else catalog.choose()[0]
        for quant in split_list(quants) or [None]:
            m, q = catalog.choose(model.name, quant)
            out.append(Target(m, q))
            if adapter and adapter in m.adapters:
                out.append(Target(m.with_adapter(adapter), q))
    if adapter and not any(t.model.adapter == adapter for t in out):
        known = sorted({f"{t.model.name}+{a}" for t in out for a in t.model.adapters}) or ["none"]
        raise ConfigError(f"--adapter: no evaluated model has an adapter {adapter!r} (adapters: {', '.join(known)}); "
                          "add it to the model's adapters in models.yaml or pick the model with --model")
    return out


def baseline_target(found: list[Target], baseline: str | None, adapter: str | None = None) -> Target | None:
    """`--baseline Q8_0` (that quant, when one model is evaluated) or `--baseline model:Q8_0`; with `--adapter` and
    no baseline, the adapter's base model."""
    if not baseline and adapter:  # the first model's base; every adapter is also compared with its own base
        return next(t for t in found if not t.model.adapter and any(
            a.model.adapter == adapter and a.model.name == t.model.name and a.quant == t.quant for a in found))
    if not baseline:
        return None
    for t in found:
        if baseline in (t.label, t.quant) and (":" in baseline or len({x.model.name for x in found}) == 1):
            return t
    raise ConfigError(f"--baseline: {baseline!r} is not among the evaluated targets ({', '.join(t.label for t in found)}); "
                      "add it to --quant/--model or name it as model:quant")


def parse_thresholds(value: str | None) -> Thresholds:
    if not value:
        return Thresholds()
    try:
        ship, acceptable, marginal = (float(x) for x in value.split(","))
    except ValueError:
        raise ConfigError(f"--thresholds: {value!r}: give three drops in points, e.g. 1,3,5 (ship < 1 <= acceptable "
                          "< 3 <= marginal <= 5 < too high)") from None
    if not 0 <= ship <= acceptable <= marginal:
        raise ConfigError(f"--thresholds: {value!r}: the three values must be increasing")
    return Thresholds(ship, acceptable, marginal)


def run_matrix(settings, catalog, set_names: list[str], models: str | None, quants: str | None,
               baseline: str | None = None, engine: str | None = None, engine_config: str | None = None,
               runtime: str | None = None, experiment: str | None = None, thresholds: Thresholds = Thresholds(),
               progress: Callable[[str, str, int, int], None] = lambda target, s, done, total: None,
               on_target: Callable[[str], None] = lambda target: None, adapter: str | None = None,
               ood: list[str] | None = None, ood_points: float = 5.0) -> QuickEvalResult:
    from beyond_vibes.serving import preflight

    if not set_names:
        raise ConfigError("--set: name at least one set (evals/<set>.yaml), e.g. --set math,code")
    ood = [s for s in ood or [] if s not in set_names]
    if ood and not (adapter or baseline):
        raise ConfigError("--ood: out-of-domain sets are judged against a base: give --adapter (or --baseline)")
    if ood_points < 0:
        raise ConfigError(f"--ood-points: {ood_points:g} must not be negative")
    sets = [load_set(name, settings.evals_dir) for name in [*set_names, *ood]]
    found = targets(catalog, models, quants, adapter)
    base = baseline_target(found, baseline, adapter)
    models_dir = catalog.path.resolve().parent
    engines = {}
    for t in found:
        if not t.model.is_local and (engine or engine_config or runtime):
            raise ConfigError(f"--engine/--engine-config/--runtime: {t.model.name} is an API model")
        eng = catalog.engine_for(t.model, engine, engine_config, runtime) if t.model.is_local else t.model.engine
        engines[t.label] = eng
        preflight(t.model, t.quant, settings, models_dir, None, eng, catalog.engine_spec(eng.engine))
    runs: list[SetRun] = []
    # The baseline first: a candidate is compared as soon as it is done.
    for t in sorted(found, key=lambda t: t is not base):
        on_target(t.label)
        eng = engines[t.label]
        runs += run_quick_eval(settings, t.model, t.quant, eng, catalog.engine_spec(eng.engine), sets, models_dir,
                               experiment, progress=lambda s, done, total, t=t: progress(t.label, s, done, total))
    result = QuickEvalResult(runs, baseline=base.label if base else None, ood_sets=ood, ood_points=ood_points,
                             adapters=[t.label for t in found if t.model.adapter])
    if base is None:
        return result
    exp = f"{experiment or settings.mlflow_experiment}-quick-eval"
    by_label = {(f"{r.model}:{r.quant or 'api'}", r.set.name): r for r in runs}
    own_base = {t.label: f"{t.model.name}:{t.quant or 'api'}" for t in found if t.model.adapter}
    for r in runs:
        label = f"{r.model}:{r.quant or 'api'}"
        # An adapter is compared with its own base (same model and quant); everything else with the baseline.
        b = by_label.get((own_base.get(label, base.label), r.set.name))
        if b is None or b is r:
            continue
        c = compare(b, r, thresholds)
        if c is not None:
            result.comparisons.append(c)
            if c.scope in ood and label in result.adapters:  # an adapter out of its domain (not an upper bound)
                result.verdicts[(c.scope, c.candidate)] = ood_verdict(b.outcomes(), r.outcomes(), ood_points)
            log_comparison(settings, r, c, b.run_id, exp, result.ood_verdict(c))
    return result
