"""Agreement with the labels per judge kind, side by side: the objective criteria (code) where a rubric criterion
means the same thing, the compiled DSPy judge and the aligned MLflow make_judge judges (their held-out figures). The objective criteria are recomputed
from each label's own record (checks, diff, final message) and the task's files at its base commit; a label on
a 1-5 scale counts as "good" at 4 or more (the anchors put 3 at "partly"), a bool label as is.

MLflow Guidelines verdicts have no labels to agree with yet (labels score the rubric, not the task guidelines):
they are listed as not measured, never given a number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from beyond_vibes.judges.agreement import exact_interval, majority

# rubric criterion -> the objective criterion that measures the same thing, per archetype
OBJECTIVE_TWINS = {
    "repo_maintenance": {"determinism": "determinism", "diff_hygiene": "diff_hygiene"},
    "feature_implementation": {"completeness": "determinism"},
    "comparative_research": {"citation_grounding": "citation_grounding"},
}
GOOD_AT = 4


@dataclass
class KindAgreement:
    kind: str  # "objective (code)", "dspy (compiled)", "mlflow Guidelines"
    criterion: str
    n: int
    exact: float | None
    exact_ci: list[float]
    majority_exact: float | None
    by_source: dict[str, tuple[int, float]]
    note: str = ""

    @property
    def trusted(self) -> bool:
        return self.exact is not None and self.majority_exact is not None and self.exact > self.majority_exact


def _files(folder: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__")]
        out |= {str(Path(dirpath, f).relative_to(folder)) for f in filenames}
    return out


def base_files_of(task) -> set[str] | None:
    """The files of a local-folder task's repository (the demo tasks the shipped labels come from); None for a git
    task (its files are not at hand without a checkout)."""
    path = getattr(task.repository, "path", None)
    if not path:
        return None
    folder = (task.base_dir / path).resolve()
    return _files(folder) if folder.is_dir() else None


def objective_of(record: dict, task) -> dict[str, object]:
    """The objective criteria of a label's record, by name (value only)."""
    from beyond_vibes.objective import objective_criteria

    rec = SimpleNamespace(
        completions=[], agent=None, archetype=record.get("archetype", ""), diff=record.get("diff") or "",
        checks=[SimpleNamespace(name=c["name"], passed=c["passed"]) for c in record.get("checks") or []] or None,
        scope=task.scope if task else None, base_files=base_files_of(task) if task else None)
    rec.agent = SimpleNamespace(final_text=record.get("final_message") or "", tool_calls=[])
    return {o.name: o.value for o in objective_criteria(rec)}


def _good(label_value: int, criterion) -> bool:
    if criterion.kind == "bool":
        return bool(label_value) == criterion.higher_is_better
    return label_value >= GOOD_AT if criterion.higher_is_better else label_value < GOOD_AT


def _objective_good(value) -> bool:
    return value is True or (isinstance(value, float) and value >= 1.0)


def objective_agreement(settings, archetype: str, labels, rubric) -> list[KindAgreement]:
    from beyond_vibes.tasks import load_task

    tasks: dict[str, object] = {}
    out = []
    for crit_name, objective in OBJECTIVE_TWINS.get(archetype, {}).items():
        criterion = rubric.criterion(crit_name)
        if criterion is None:
            continue
        pairs = []  # (label good, objective good, source)
        for lb in labels:
            if crit_name not in lb.scores:
                continue
            task_name = lb.record.get("task") or ""
            if task_name not in tasks:
                try:
                    tasks[task_name] = load_task(task_name, settings.tasks_dir)
                except Exception:  # noqa: BLE001 - a label of a task that no longer exists: its record alone
                    tasks[task_name] = None
            values = objective_of(lb.record, tasks[task_name])
            if objective in values:
                pairs.append((_good(lb.scores[crit_name], criterion), _objective_good(values[objective]), lb.source))
        if not pairs:
            out.append(KindAgreement("objective (code)", f"{crit_name} ~ objective.{objective}", 0, None, [], None, {},
                                     "no label record it applies to"))
            continue
        matches = [g == o for g, o, _ in pairs]
        always = majority([int(g) for g, _, _ in pairs])
        sources = {}
        for src in sorted({s for _, _, s in pairs}):
            sub = [g == o for g, o, s in pairs if s == src]
            sources[src] = (len(sub), round(sum(sub) / len(sub), 4))
        out.append(KindAgreement("objective (code)", f"{crit_name} ~ objective.{objective}", len(pairs),
                                 round(sum(matches) / len(matches), 4), exact_interval(matches),
                                 round(sum(int(g) == always for g, _, _ in pairs) / len(pairs), 4), sources,
                                 f"labels binarised: good = {GOOD_AT}+ (all labels; no training split: code learns nothing)"))
    return out


def dspy_agreement(meta: dict | None) -> list[KindAgreement]:
    if not meta:
        return [KindAgreement("dspy (compiled)", "all", 0, None, [], None, {}, "not compiled")]
    from beyond_vibes.judges.compile import heldout_majority

    comp = (meta.get("agreement") or {}).get("compiled") or {}
    if "majority_exact" not in comp:  # compiled before the baseline was recorded: from its confusion matrices
        comp = heldout_majority(comp) or comp
    by = {src: (r.get("n", 0), r.get("exact")) for src, r in ((meta.get("agreement") or {}).get("by_source") or {}).items()}
    out = []
    for name, c in (comp.get("criteria") or {}).items():
        out.append(KindAgreement("dspy (compiled)", name, c.get("n", 0), c.get("exact"), c.get("exact_ci") or [],
                                 c.get("majority_exact"), {}, f"held out; judge LM {meta.get('judge_lm')}"))
    out.append(KindAgreement("dspy (compiled)", "all", comp.get("n", 0), comp.get("exact"), [], comp.get("majority_exact"),
                             by, f"held out; judge LM {meta.get('judge_lm')}"))
    return out


def guidelines_agreement() -> KindAgreement:
    return KindAgreement("mlflow Guidelines", "task guidelines", 0, None, [], None, {},
                         "not measured: no labels of the task guidelines yet")


def aligned_agreement(settings, archetype: str) -> list[KindAgreement]:
    """The aligned make_judge judges' held-out agreement, per criterion (as measured by `judges align`)."""
    import json

    from beyond_vibes.judges.aligned import aligned_path

    path = aligned_path(settings.judges_dir, archetype)
    data = json.loads(path.read_text()) if path.exists() else {}
    if not data.get("criteria"):
        return [KindAgreement("mlflow make_judge (aligned)", "all", 0, None, [], None, {}, "not aligned")]
    out = []
    for name, c in data["criteria"].items():
        a = c["agreement"]["aligned"]
        by = {src: (r["n"], r["exact"]) for src, r in (c["agreement"].get("by_source") or {}).items() if r}
        out.append(KindAgreement("mlflow make_judge (aligned)", name, a["n"], a["exact"], a.get("exact_ci") or [],
                                 a.get("majority_exact"), by,
                                 f"held out; unaligned {c['agreement']['unaligned']['exact']:.2f}; judge LM "
                                 f"{data.get('judge_lm')}; SIMBA, {c['train']} train"))
    return out
