"""The report's sections as plain tables of strings: one source for report.md, index.html and promotion.md, so
the two renderings can never disagree."""

from __future__ import annotations

from dataclasses import dataclass, field

from beyond_vibes.report.aggregate import TCO_FORMULA, GroupStats
from beyond_vibes.report.collect import config_label
from beyond_vibes.report.compare import Comparison
from beyond_vibes.report.data import ReportData
from beyond_vibes.report.promote import RoleDecision
from beyond_vibes.report.quick import Rate

NA = "n/a"
NONE_RECORDED = "none recorded"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    muted: set[int] = field(default_factory=set)  # rows shown greyed (an untrusted judge's scores)


@dataclass
class Section:
    title: str
    anchor: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    empty: str | None = None  # shown instead of tables when there is nothing to show


def pct(x: float | None, digits: int = 1) -> str:
    return NA if x is None else f"{x * 100:.{digits}f}%"


def ci(rate: float | None, low: float | None, high: float | None) -> str:
    return NA if rate is None else f"{pct(rate)} [{pct(low)}, {pct(high)}]"


def num(x: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return NA if x is None else f"{x:{fmt}}{unit}"


def money(x: float | None) -> str:
    if x is None:
        return NA
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def pass_at_k(g: GroupStats) -> str:
    return " · ".join(f"@{k} {v:.2f}" for k, v in g.pass_at_k.items()) or NA


def with_ref(value: float | None, ref: float | None, name: str) -> str:
    base = num(value)
    return f"{base} ({name} {ref:.1f})" if ref is not None else base


def _pain(g: GroupStats) -> str:
    if g.review_pain is None:
        return NA
    return f"{g.review_pain:.2f} ({'judge' if g.review_pain_source == 'judge' else 'tool errors/call'})"


def _ci(g: GroupStats) -> str:
    method = {"clustered by task": "clustered", "Wilson (independent runs)": "Wilson"}.get(g.ci_method, "")
    return ci(g.pass_rate, g.ci_low, g.ci_high) + (f" ({method})" if method else "")


def _ttft(g: GroupStats) -> str:
    """Warm / cold TTFT where the server said what it served from its prompt cache, else the plain median."""
    if g.ttft_warm_s_median is None and g.ttft_cold_s_median is None:
        return num(g.ttft_s_median, ".3f") + (" (cache not reported)" if g.ttft_s_median is not None else "")
    return f"{num(g.ttft_warm_s_median, '.3f')} / {num(g.ttft_cold_s_median, '.3f')}"


def summary_table(groups: list[GroupStats]) -> Table:
    headers = ["configuration (model:quant:engine#id)", "family", "runs", "tasks", "pass rate [95% CI]", "pass@k (avg over tasks)",
               "hard failures", "median TTFT (s): warm / cold", "prompt tok/s (pp512 ref)", "gen tok/s (tg128 ref)",
               "peak VRAM (MB)", "load (s)", "mean tokens/task", "cost/task", "TCO 12 months", "review pain"]
    rows = [[config_label(g.config), g.family, str(g.n), str(g.tasks), _ci(g), pass_at_k(g),
             f"{g.hard_failures} ({pct(g.hard_failure_rate)})", _ttft(g),
             with_ref(g.prompt_tps_median, g.speed_pp512_tps, "pp512"), with_ref(g.gen_tps_median, g.speed_tg128_tps, "tg128"),
             num(g.peak_vram_mb, ".0f"), num(g.load_s_median, ".2f"), num(g.tokens_mean, ".0f"), money(g.cost_per_task),
             money(g.tco_12m), _pain(g)] for g in groups]
    return Table(headers, rows)


def _judges_cell(g: GroupStats) -> str:
    return "; ".join(f"{c} {s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]" for c, s in g.judge.items()) or NA


def _agreement_cell(g: GroupStats) -> str:
    return "; ".join(f"κ {a['kappa']:.2f}, exact {a['exact']:.0%}" if a.get("exact") is not None else f"κ {a['kappa']:.2f}"
                     for a in g.judge_agreement.values()) or NA


def archetype_table(groups: list[GroupStats]) -> Table:
    headers = ["configuration", "archetype", "runs", "tasks", "pass rate [95% CI]", "pass@k", "hard failures",
               "judge scores (mean [95% bootstrap CI])", "judge agreement (held-out)"]
    rows = [[config_label(g.config), g.archetype or NA, str(g.n), str(g.tasks), ci(g.pass_rate, g.ci_low, g.ci_high),
             pass_at_k(g), f"{g.hard_failures} ({pct(g.hard_failure_rate)})", _judges_cell(g), _agreement_cell(g)]
            for g in groups]
    return Table(headers, rows)


def task_table(groups: list[GroupStats]) -> Table:
    headers = ["configuration", "task", "archetype", "runs", "passes", "pass rate [95% CI]", "pass@k",
               "hard failures", "same outcome across repeats", "median TTFT (s)", "gen tok/s", "mean tokens", "cost/task"]
    rows = [[config_label(g.config), g.task or NA, g.archetype or NA, str(g.n), str(g.passes),
             ci(g.pass_rate, g.ci_low, g.ci_high), pass_at_k(g), str(g.hard_failures), pct(g.repeat_consistency, 0),
             num(g.ttft_s_median, ".3f"), num(g.gen_tps_median), num(g.tokens_mean, ".0f"), money(g.cost_per_task)]
            for g in groups]
    return Table(headers, rows)


def judge_table(data: ReportData) -> Table:
    headers = ["configuration", "archetype", "criterion", "mean [95% bootstrap CI]", "n", "judge version",
               "held-out κ", "held-out exact", "trust"]
    rows, muted = [], set()
    for g in data.aggregates.by_archetype:
        info = data.judges.get(g.archetype or "")
        for c, s in g.judge.items():
            trusted = info is not None and info.criterion_trusted(c)
            why = "trusted" if trusted else (info.trust if info and not info.trusted else
                                              f"untrusted criterion ({info.trust})" if info else "untrusted: no compiled judge")
            if not trusted:
                muted.add(len(rows))
            rows.append([config_label(g.config), g.archetype or NA, c, f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]",
                         str(s.n), (info.version if info else None) or NA, num(info.kappa if info else None, ".2f"),
                         pct(info.exact if info else None, 0), why])
    return Table(headers, rows, muted=muted)


def comparison_table(comparisons: list[Comparison], scope_name: str) -> Table:
    headers = ["candidate", scope_name, "paired", "baseline → candidate", "drop (points)", "pass→fail", "fail→pass",
               "flip rate", "McNemar p", "decision"]
    rows = [[c.candidate, c.scope, str(c.n_paired), f"{pct(c.baseline_rate)} → {pct(c.candidate_rate)}",
             num(c.drop_points, "+.1f"), str(c.lost), str(c.gained), pct(c.flip_rate), f"{c.p_value:.3g}", c.decision]
            for c in comparisons]
    return Table(headers, rows)


def _rate(r: Rate | None) -> str:
    if r is None:
        return NA
    return f"{pct(r.rate)} [{pct(r.ci_low)}, {pct(r.ci_high)}] (n={r.n})" if r.n else pct(r.rate)


def quick_table(data: ReportData) -> Table:
    levels = sorted({lv for q in data.quick_evals for lv in q.by_difficulty},
                    key=lambda lv: (["easy", "medium", "hard"].index(lv) if lv in ("easy", "medium", "hard") else 9, lv))
    headers = ["set", "model:quant:engine", "accuracy [95% CI]", *levels, "items/s", "gen tok/s", "set version"]
    rows = [[q.set, q.label, _rate(q.accuracy), *[_rate(q.by_difficulty.get(lv)) for lv in levels],
             num(q.items_per_s, ".2f"), num(q.gen_tps), q.set_version or NA] for q in data.quick_evals]
    return Table(headers, rows)


def promotion_sections(decisions: list[RoleDecision]) -> list[Section]:
    out = []
    for d in decisions:
        rows = []
        for c in d.challengers:
            for g in c.gates:
                if g.name in ("acceptance", "hard_failures"):
                    inc, ch = pct(g.incumbent), pct(g.challenger)
                elif g.name == "review_pain":
                    inc, ch = num(g.incumbent, ".3f"), num(g.challenger, ".3f")
                elif g.name == "cost_tier":
                    inc, ch = num(g.incumbent, ".0f"), num(g.challenger, ".0f")
                else:
                    inc, ch = "", f"{g.challenger:.0f} families"
                rows.append([f"{c.challenger} ({c.family})", g.name, g.rule, inc, ch, "pass" if g.passed else "FAIL",
                             g.detail])
        notes = [f"Incumbent: {d.incumbent} ({d.incumbent_family}). **Verdict: {d.verdict}.**",
                 *(f"{c.challenger}: judged on {len(c.tasks)} common task(s) ({', '.join(c.tasks) or 'none'}); "
                   f"{'all gates hold' if c.promotable else 'blocked by ' + ', '.join(g.name for g in c.gates if not g.passed)}"
                   for c in d.challengers)]
        out.append(Section(f"Role: {d.role}", f"role-{d.role}", notes,
                           [Table(["challenger", "gate", "rule", "incumbent", "challenger", "result", "detail"], rows)]))
    return out


PROMOTION_RULES = [
    "A challenger replaces the incumbent only if every gate holds, on the tasks both ran (within the role's tasks):",
    "acceptance: pass rate >= the incumbent's; review_pain: <= the incumbent's, where review pain is the mean over "
    "runs of (1 - judge score normalised to 0..1 on its criterion's scale, averaged over criteria) when every run of "
    "both has judge scores, else tool errors per tool call (none when no call was made); hard_failures: share of error/timeout runs <= the "
    "incumbent's; cost_tier: tier <= the incumbent's (0 unpriced or free, 1 < $0.01/task, 2 < $0.10/task, 3 more); "
    "diversity: after the swap the role's lineup (the challenger as incumbent plus the other challengers; the old "
    "incumbent retires) spans more than one model family.",
    "Among challengers that pass every gate the one with the highest pass rate wins (then lower review pain, cost "
    "tier, hard failures).",
]


def _env_rows(env: dict) -> list[list[str]]:
    rows = []
    host = env.get("report_host", {})
    rows.append(["report host", f"{host.get('cpu_model')} × {host.get('cpu_count')} CPUs, "
                 f"{num(host.get('ram_gb'), '.1f', ' GiB')} RAM; GPUs: {', '.join(host.get('gpus') or []) or 'none found'}"])
    rows.append(["packages", ", ".join(f"{k} {v or 'not installed'}" for k, v in env.get("packages", {}).items())])
    rec = env.get("recorded", {})
    rows.append(["run hosts", ", ".join(rec.get("hosts") or []) or NA])
    rows.append(["llama.cpp builds", ", ".join(rec.get("llama_cpp_builds") or []) or NA])
    rows.append(["agent versions", ", ".join(rec.get("agent_versions") or []) or NA])
    for config, params in (rec.get("per_config") or {}).items():
        rows.append([f"{config}", "; ".join(f"{k}={', '.join(v)}" for k, v in params.items())])
    for s, versions in (rec.get("quick_eval_sets") or {}).items():
        rows.append([f"quick-eval set {s}", ", ".join(versions) or NA])
    for a, j in (rec.get("judges") or {}).items():
        rows.append([f"judge {a}", f"version {j.get('version')}, LM {j.get('judge_lm')}"])
    if rec.get("judge_versions_on_runs"):
        rows.append(["judges seen on runs", ", ".join(rec["judge_versions_on_runs"])])
    return rows


def variants_table(sims) -> Table:
    """Configurations that share a model:quant:engine name but differ in something else (build, flags, template,
    sampling, agent, turns): one row each, with what differs from the first of its name. Never pooled."""
    from collections import defaultdict

    from beyond_vibes.identity import differences

    by_name: dict[tuple, dict[str, object]] = defaultdict(dict)
    counts: dict[tuple, int] = defaultdict(int)
    for r in sorted(sims, key=lambda r: r.start_time):
        by_name[r.config[:3]].setdefault(r.config_id, r)
        counts[r.config] += 1
    rows = []
    for name, variants in sorted(by_name.items()):
        if len(variants) < 2:
            continue
        first = next(iter(variants.values()))
        for cid, run in variants.items():
            diff = "; ".join(differences(first.identity, run.identity)) if run is not first else "(the first recorded)"
            if run is not first and not (first.identity and run.identity):
                diff = "not recorded (a run from before configuration identities)"
            rows.append([config_label(run.config), str(counts[run.config]), diff or "nothing recorded differs"])
    return Table(["configuration", "runs", "differs from the first of its name in"], rows)


def sections(data: ReportData) -> list[Section]:
    agg = data.aggregates
    c = data.collected
    from beyond_vibes.report.verdict import verdict

    decision = verdict(agg, c.sims, data.promotion)
    out = [Section("Decision", "decision", decision, [], None if decision else NONE_RECORDED)] if agg.by_config else []
    out += [Section("Summary per configuration (model × quant × engine, #id)", "summary",
                   [f"{len(c.sims)} simulation runs in `{data.experiment}`"
                    + (f" matching `{data.filter_string}`" if data.filter_string else "")
                    + (f"; {c.skipped_unfinished} unfinished run(s) left out" if c.skipped_unfinished else "")
                    + (f"; {len(c.missing_run_ids)} requested run id(s) not found" if c.missing_run_ids else "") + ".",
                    "Pass rate: runs whose checks all passed (the `success` metric, else `bv.status`), with a 95% "
                    "interval: where tasks were repeated, clustered by task (p ± t(tasks-1) × the cluster-robust standard "
                    "error, never narrower than Wilson: repeats of one task are not independent trials), else Wilson; "
                    "the column says which. pass@k: unbiased estimator 1 - C(n-c,k)/C(n,k) per task, averaged over tasks, "
                    "for k up to the fewest runs any task has. Hard failures: runs that ended in error or timeout. "
                    "Speeds: medians over runs that measured them, beside llama-bench's pp512/tg128 for the same "
                    "served configuration (model file, build, engine flags: its served id) when recorded. Load time: median over the served models the runs used.",
                    f"{TCO_FORMULA}, with {data.tasks_per_month} tasks per month; n/a where no cost was logged "
                    "(a local model: hardware and power are not priced here)."],
                   [summary_table(agg.by_config)] if agg.by_config else [], None if agg.by_config else NONE_RECORDED)]
    variants = variants_table(c.sims)
    if variants.rows:
        out.append(Section("Configurations that share a name", "configurations",
                           ["A row is one configuration: its id (after #) hashes the model file, quant, engine, runtime, "
                            "llama.cpp build, engine flags, chat template, sampling, agent and turn limit. Runs that "
                            "differ in any of them are never pooled; here is what differs."], [variants], None))
    out.append(Section("Per archetype", "archetypes", [], [archetype_table(agg.by_archetype)] if agg.by_archetype else [],
                       None if agg.by_archetype else NONE_RECORDED))
    out.append(Section("Per task", "tasks", [], [task_table(agg.by_task)] if agg.by_task else [],
                       None if agg.by_task else NONE_RECORDED))
    jt = judge_table(data)
    out.append(Section("Judge scores", "judges",
                       ["Means of the `judge_<criterion>` metrics with a 95% percentile-bootstrap interval; beside "
                        "them the compiled judge's agreement with its labels on held-out records (weighted "
                        "Cohen's κ, exact match) and its trust: a judge or criterion that does not beat always "
                        "answering the labels' most common value is untrusted, shown greyed, and left out of every "
                        "decision (review pain, promotion)."] if jt.rows else [],
                       [jt] if jt.rows else [], None if jt.rows else NONE_RECORDED))
    if data.baseline:
        out.append(Section(f"Against the baseline {data.baseline}", "baseline",
                           ["Paired by (task, seed, repeat; ad-hoc runs by start order). Drop in points over the paired runs; decision: < "
                            f"{data.thresholds.ship:g} ship, < {data.thresholds.acceptable:g} acceptable, <= "
                            f"{data.thresholds.marginal:g} marginal, else too high (per-archetype rows use the roles "
                            "file's thresholds when it sets them). McNemar: exact two-sided test on the discordant "
                            "pairs."],
                           [comparison_table(data.comparisons, "scope")] if data.comparisons else [],
                           None if data.comparisons else "no other configuration to compare"))
    else:
        out.append(Section("Against a baseline", "baseline", [], [], "none chosen (--baseline model:quant[:engine])"))
    qe_tables = [quick_table(data)] if data.quick_evals else []
    if data.quick_comparisons:
        qe_tables.append(comparison_table(data.quick_comparisons, "set"))
        qe_tables[-1].caption = f"Against the baseline {data.baseline}, paired by item id"
    out.append(Section("Quick evals", "quick-evals",
                       ["Accuracy over scored items per set and difficulty with 95% Wilson intervals (from each "
                        "run's item table)."] if data.quick_evals else [], qe_tables,
                       None if data.quick_evals else NONE_RECORDED))
    if data.promotion is not None:
        out.append(Section("Promotion", "promotion", PROMOTION_RULES, [], None))
        out.extend(promotion_sections(data.promotion))
    out.append(Section("Environment", "environment", [], [Table(["", ""], _env_rows(data.environment))]))
    return out
