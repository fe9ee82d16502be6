"""build_report: MLflow runs in, a dated report folder out (the `report` command and the sweep both call it)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes.errors import ConfigError
from beyond_vibes.redact import Redactor, safe_uri
from beyond_vibes.report.aggregate import DEFAULT_TASKS_PER_MONTH, GroupStats
from beyond_vibes.report.compare import Comparison
from beyond_vibes.report.promote import RoleDecision
from beyond_vibes.stats import Thresholds


@dataclass
class ReportResult:
    folder: Path  # <out_dir>/<YYYY-MM-DD>
    index_html: Path
    report_md: Path
    results_json: Path
    promotion_md: Path | None
    n_runs: int
    baseline: str | None
    configs: list[GroupStats] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)  # scope "all" and per archetype
    promotion: list[RoleDecision] | None = None


def read_run_ids(path: Path) -> list[str]:
    """One MLflow run id per line; blank lines and # comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"--run-ids-file: {path}: cannot read it ({e.strerror or e}); give a file with one run id per line") from None
    ids = [ln.split("#", 1)[0].strip() for ln in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise ConfigError(f"--run-ids-file: {path}: no run ids in it; write one MLflow run id per line")
    return ids


def build_report(settings, experiment: str | None, out_dir: Path | str, baseline: str | None = None,
                 filter_string: str | None = None, thresholds: Thresholds = Thresholds(),
                 roles_file: Path | str | None = None, run_ids: Iterable[str] | None = None,
                 tasks_per_month: int = DEFAULT_TASKS_PER_MONTH) -> ReportResult:
    """Write `<out_dir>/<YYYY-MM-DD>/` (index.html, report.md, results.json, promotion.md with roles) from the
    tracking store. `run_ids` restricts the report to those simulation runs (a sweep's own)."""
    from beyond_vibes.report.aggregate import aggregate
    from beyond_vibes.report.collect import collect, config_label
    from beyond_vibes.report.compare import compare_sims, parse_ref, require
    from beyond_vibes.report.data import ReportData
    from beyond_vibes.report.environment import environment
    from beyond_vibes.report.judging import judges_for
    from beyond_vibes.report.plots import plots
    from beyond_vibes.report.promote import load_roles, promote
    from beyond_vibes.report.quick import compare_quick_evals, summarise
    from beyond_vibes.report.render import write_all

    if tasks_per_month < 0:
        raise ConfigError(f"--tasks-per-month: {tasks_per_month} must not be negative")
    experiment = experiment or settings.mlflow_experiment
    # Bad input is found before the store is read (which can take a while on a remote server).
    ref = parse_ref(baseline) if baseline else None
    roles = load_roles(Path(roles_file)) if roles_file else None
    run_ids = list(run_ids) if run_ids is not None else None

    data = collect(settings, experiment, filter_string, run_ids)
    if not data.sims and not data.quick_evals:
        where = f" matching {filter_string!r}" if filter_string else ""
        where += " among the given run ids" if run_ids is not None else ""
        raise ConfigError(f"--experiment: no simulation or quick-eval runs in {experiment!r}{where}; "
                          "run simulate, sweep or quick-eval first, or loosen --filter")
    judges = judges_for(Path(settings.judges_dir), {r.archetype for r in data.sims})
    report = ReportData(experiment=experiment, generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        tracking_uri=safe_uri(settings.tracking_uri), filter_string=filter_string, baseline=None,
                        thresholds=thresholds, tasks_per_month=tasks_per_month, collected=data,
                        aggregates=aggregate(data, judges, tasks_per_month), judges=judges)
    if ref is not None:
        base = require(ref, {r.config for r in data.sims} or {q.config for q in data.quick_evals}, experiment)
        report.baseline = config_label(base)
        per_arch = roles.archetype_thresholds() if roles else None
        report.comparisons = compare_sims(data.sims, base, thresholds, per_arch)
        quick_ref = parse_ref(":".join(base[:3]))  # quick evals carry no config id: the same model:quant:engine
        report.quick_comparisons = compare_quick_evals(data.quick_evals, quick_ref, thresholds) or \
            compare_quick_evals(data.quick_evals, ref, thresholds)
    report.quick_evals = [summarise(q) for q in data.quick_evals]
    if roles is not None:
        report.promotion = promote(roles, data.sims, judges, Path(roles_file), experiment)
    report.environment = environment(data, judges)

    folder = Path(out_dir) / time.strftime("%Y-%m-%d")
    files = write_all(folder, report, plots(report.aggregates.by_config), Redactor(settings.secret_values()))
    return ReportResult(folder=folder, index_html=files["index_html"], report_md=files["report_md"],
                        results_json=files["results_json"], promotion_md=files.get("promotion_md"),
                        n_runs=len(data.sims), baseline=report.baseline, configs=report.aggregates.by_config,
                        comparisons=report.comparisons, promotion=report.promotion)
