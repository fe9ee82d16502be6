"""How far to trust a judge: its agreement with the labels (human or reviewer) on records it was not compiled on."""

from __future__ import annotations

from beyond_vibes.judges.rubric import Rubric


BOOTSTRAP_RESAMPLES = 2000


def exact_interval(matches: list[bool]) -> list[float]:
    """A bootstrap 95% percentile interval of the exact-agreement rate (seeded: the same records, the same interval)."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(matches, dtype=float)
    if len(data) < 2 or data.min() == data.max():
        return [round(float(data.mean()), 4)] * 2 if len(data) else []
    ci = bootstrap((data,), np.mean, confidence_level=0.95, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
                   random_state=np.random.default_rng(0)).confidence_interval
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def majority(values: list[int]) -> int | None:
    """The most common value (the lowest on a tie): what a judge that always answers one thing would best say."""
    return min(set(values), key=lambda v: (-values.count(v), v)) if values else None


def agreement(rubric: Rubric, gold: list[dict[str, int]], predicted: list[dict[str, int | None]],
              train_gold: list[dict[str, int]] | None = None) -> dict:
    """Per criterion: n, exact agreement with its bootstrap 95% interval, quadratic-weighted Cohen's kappa (absent
    when undefined: both sides one constant), Spearman's rho, confusion matrix (rows = label, columns = judge), and
    beside them the majority baseline: the exact agreement of always answering the training labels' most common
    value (`train_gold`; the held-out labels' own when none). A criterion whose agreement does not beat that
    baseline is untrusted. A prediction that failed (None) counts as a disagreement for `exact` and is left out of
    kappa and rho. Overall: the means, and `untrusted` when the mean exact does not beat the mean baseline."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    per = {}
    for c in rubric.criteria:
        pairs = [(g[c.name], p.get(c.name)) for g, p in zip(gold, predicted) if c.name in g]
        if not pairs:
            continue
        scored = [(g, p) for g, p in pairs if p is not None]
        hs, js = [g for g, _ in scored], [p for _, p in scored]
        matches = [g == p for g, p in pairs]
        exact = sum(matches) / len(pairs)
        kappa = None
        if scored and (len(set(hs)) > 1 or len(set(js)) > 1):  # both constant: expected disagreement 0, kappa 0/0
            kappa = float(cohen_kappa_score(hs, js, weights="quadratic", labels=c.values))
        base_values = [g[c.name] for g in (train_gold or gold) if c.name in g]
        always = majority(base_values)
        base_exact = sum(g == always for g, _ in pairs) / len(pairs)
        rho = None
        if len(scored) >= 3 and len(set(hs)) > 1 and len(set(js)) > 1:
            rho = float(spearmanr(hs, js).statistic)
        matrix = confusion_matrix(hs, js, labels=c.values).tolist() if scored else []
        per[c.name] = {"n": len(pairs), "exact": round(exact, 4), "exact_ci": exact_interval(matches),
                       "kappa": None if kappa is None else round(kappa, 4),
                       "spearman": None if rho is None else round(rho, 4), "labels": c.values, "confusion": matrix,
                       "majority": always, "majority_exact": round(base_exact, 4),
                       "majority_of": "train" if train_gold else "heldout", "trusted": exact > base_exact}

    def mean(key: str) -> float | None:
        values = [v[key] for v in per.values() if v[key] is not None]
        return round(sum(values) / len(values), 4) if values else None

    overall = {"exact": mean("exact"), "kappa": mean("kappa"), "spearman": mean("spearman"),
               "majority_exact": mean("majority_exact"), "n": sum(v["n"] for v in per.values())}
    trusted = overall["exact"] is not None and overall["exact"] > (overall["majority_exact"] or 0.0)
    return {"criteria": per, **overall, "trusted": trusted,
            "untrusted_criteria": [name for name, v in per.items() if not v["trusted"]]}


def trust_line(report: dict) -> str:
    """Why a judge is trusted or not, with its numbers: "untrusted: exact 0.50 <= majority baseline 0.55 (n 40)"."""
    if report.get("exact") is None:
        return "untrusted: no held-out agreement"
    verdict = "trusted" if report.get("trusted") else "untrusted"
    op = ">" if report.get("trusted") else "<="
    line = f"{verdict}: exact {report['exact']:.2f} {op} majority baseline {report.get('majority_exact') or 0:.2f}"
    bad = report.get("untrusted_criteria") or []
    return line + f" (n {report.get('n', '?')})" + (f"; untrusted criteria: {', '.join(bad)}" if bad else "")


def score_match(rubric: Rubric, gold: dict[str, int], predicted: dict[str, int | None]) -> float:
    """One record: 1 - |judge - label| / scale width, averaged over the labelled criteria (the optimizers' metric)."""
    values = []
    for c in rubric.criteria:
        if c.name in gold:
            p = predicted.get(c.name)
            values.append(0.0 if p is None else 1 - abs(p - gold[c.name]) / (c.max - c.min))
    return sum(values) / len(values) if values else 0.0


def table(report: dict) -> str:
    """The agreement as a markdown table: the compiled judge, its uncompiled baseline program and the majority
    baseline (always the training labels' most common value), with n and the 95% interval of exact agreement."""
    rows = ["| criterion | n | exact [95% CI] (compiled) | exact (uncompiled) | majority baseline | kappa (compiled / "
            "uncompiled) | spearman (compiled / uncompiled) | trust |", "|---|---|---|---|---|---|---|---|"]
    comp, base = report["compiled"]["criteria"], report["baseline"]["criteria"]

    def f(v):
        return "n/a" if v is None else f"{v:.2f}"

    def ci(c):
        return f" [{c['exact_ci'][0]:.2f}, {c['exact_ci'][1]:.2f}]" if c.get("exact_ci") else ""

    for name, c in comp.items():
        b = base.get(name, {})
        rows.append(f"| {name} | {c['n']} | {f(c['exact'])}{ci(c)} | {f(b.get('exact'))} | "
                    f"{f(c.get('majority_exact'))} (always {c.get('majority')}) | {f(c['kappa'])} / {f(b.get('kappa'))} | "
                    f"{f(c['spearman'])} / {f(b.get('spearman'))} | {'trusted' if c.get('trusted') else 'untrusted'} |")
    rc, rb = report["compiled"], report["baseline"]
    rows.append(f"| **all** | {rc.get('n', '')} | {f(rc['exact'])} | {f(rb['exact'])} | {f(rc.get('majority_exact'))} | "
                f"{f(rc['kappa'])} / {f(rb['kappa'])} | {f(rc['spearman'])} / {f(rb['spearman'])} | "
                f"{'trusted' if rc.get('trusted') else 'untrusted'} |")
    for src, r in (report.get("by_source") or {}).items():  # the same judge against each kind of label
        rows.append(f"| all, labels by {src} | {r.get('n', '')} | {f(r['exact'])} | | {f(r.get('majority_exact'))} | "
                    f"{f(r['kappa'])} | {f(r['spearman'])} | {'trusted' if r.get('trusted') else 'untrusted'} |")
    return "\n".join(rows)
