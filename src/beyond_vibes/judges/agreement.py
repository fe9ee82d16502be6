"""How far to trust a judge: its agreement with human labels on records it was not compiled on."""

from __future__ import annotations

from beyond_vibes.judges.rubric import Rubric


def agreement(rubric: Rubric, gold: list[dict[str, int]], predicted: list[dict[str, int | None]]) -> dict:
    """Per criterion: n, exact agreement, quadratic-weighted Cohen's kappa, Spearman's rho, confusion matrix
    (rows = human, columns = judge, over the scale); overall: the means. A prediction that failed (None) counts
    as a disagreement for `exact` and is left out of kappa and rho."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    per = {}
    for c in rubric.criteria:
        pairs = [(g[c.name], p.get(c.name)) for g, p in zip(gold, predicted) if c.name in g]
        if not pairs:
            continue
        scored = [(g, p) for g, p in pairs if p is not None]
        hs, js = [g for g, _ in scored], [p for _, p in scored]
        exact = sum(g == p for g, p in pairs) / len(pairs)
        kappa = None
        if scored:
            if len(set(hs) | set(js)) == 1:
                kappa = 1.0  # both gave one and the same value throughout: complete agreement
            else:
                kappa = float(cohen_kappa_score(hs, js, weights="quadratic", labels=c.values))
        rho = None
        if len(scored) >= 3 and len(set(hs)) > 1 and len(set(js)) > 1:
            rho = float(spearmanr(hs, js).statistic)
        matrix = confusion_matrix(hs, js, labels=c.values).tolist() if scored else []
        per[c.name] = {"n": len(pairs), "exact": round(exact, 4), "kappa": None if kappa is None else round(kappa, 4),
                       "spearman": None if rho is None else round(rho, 4), "labels": c.values, "confusion": matrix}

    def mean(key: str) -> float | None:
        values = [v[key] for v in per.values() if v[key] is not None]
        return round(sum(values) / len(values), 4) if values else None

    return {"criteria": per, "exact": mean("exact"), "kappa": mean("kappa"), "spearman": mean("spearman")}


def score_match(rubric: Rubric, gold: dict[str, int], predicted: dict[str, int | None]) -> float:
    """One record: 1 - |judge - human| / scale width, averaged over the labelled criteria (the optimizers' metric)."""
    values = []
    for c in rubric.criteria:
        if c.name in gold:
            p = predicted.get(c.name)
            values.append(0.0 if p is None else 1 - abs(p - gold[c.name]) / (c.max - c.min))
    return sum(values) / len(values) if values else 0.0


def table(report: dict) -> str:
    """The agreement as a markdown table (compiled vs baseline)."""
    rows = ["| criterion | n | exact (compiled / baseline) | kappa (compiled / baseline) | spearman (compiled / baseline) |",
            "|---|---|---|---|---|"]
    comp, base = report["compiled"]["criteria"], report["baseline"]["criteria"]

    def f(v):
        return "n/a" if v is None else f"{v:.2f}"

    for name, c in comp.items():
        b = base.get(name, {})
        rows.append(f"| {name} | {c['n']} | {f(c['exact'])} / {f(b.get('exact'))} | {f(c['kappa'])} / {f(b.get('kappa'))} | "
                    f"{f(c['spearman'])} / {f(b.get('spearman'))} |")
    rows.append(f"| **all** | | {f(report['compiled']['exact'])} / {f(report['baseline']['exact'])} | "
                f"{f(report['compiled']['kappa'])} / {f(report['baseline']['kappa'])} | "
                f"{f(report['compiled']['spearman'])} / {f(report['baseline']['spearman'])} |")
    return "\n".join(rows)
