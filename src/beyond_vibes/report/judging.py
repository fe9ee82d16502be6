"""What the report knows about the judges: held-out agreement (from compiled/<archetype>.meta.json) and each
criterion's scale (from the rubric), so scores can be shown beside how far the judge is trusted and normalised
to 0..1 for review pain. The only local files a report reads; every one is optional."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SCALE = (1.0, 5.0, True)  # the rubric schema's default: 1..5, higher is better


@dataclass
class JudgeInfo:
    archetype: str
    version: str | None = None
    kappa: float | None = None
    exact: float | None = None
    judge_lm: str | None = None
    scales: dict[str, tuple[float, float, bool]] | None = None  # criterion -> (min, max, higher_is_better)
    trusted: bool = False  # beats the majority baseline on its held-out labels (no compiled judge: not trusted)
    trust: str = "untrusted: no compiled judge"
    untrusted_criteria: tuple[str, ...] = ()

    def criterion_trusted(self, criterion: str) -> bool:
        return self.trusted and criterion not in self.untrusted_criteria

    def scale(self, criterion: str) -> tuple[float, float, bool]:
        return (self.scales or {}).get(criterion, DEFAULT_SCALE)

    def goodness(self, criterion: str, score: float) -> float:
        """A score as 0 (worst) .. 1 (best) on its criterion's scale."""
        low, high, higher_better = self.scale(criterion)
        g = (score - low) / (high - low) if high > low else 0.0
        g = min(1.0, max(0.0, g))
        return g if higher_better else 1.0 - g

    def as_dict(self) -> dict:
        return {"archetype": self.archetype, "version": self.version, "kappa": self.kappa, "exact": self.exact,
                "judge_lm": self.judge_lm, "trusted": self.trusted, "trust": self.trust,
                "untrusted_criteria": list(self.untrusted_criteria)}


def _scales(judges_dir: Path, archetype: str) -> dict[str, tuple[float, float, bool]] | None:
    try:
        from beyond_vibes.judges.rubric import load_rubric

        rubric = load_rubric(archetype, judges_dir)
    except Exception:  # noqa: BLE001 - no or broken rubric: fall back to the default 1..5 scale
        return None
    return {c.name: ((0.0, 1.0) if c.kind == "bool" else (float(c.min), float(c.max))) + (c.higher_is_better,)
            for c in rubric.criteria}


def judge_info(judges_dir: Path, archetype: str) -> JudgeInfo:
    info = JudgeInfo(archetype, scales=_scales(judges_dir, archetype))
    meta_path = Path(judges_dir) / "compiled" / f"{archetype}.meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return info
    compiled = ((meta.get("agreement") or {}).get("compiled") or {}) if isinstance(meta, dict) else {}
    info.version, info.judge_lm = meta.get("version"), meta.get("judge_lm")
    info.kappa, info.exact = compiled.get("kappa"), compiled.get("exact")
    from beyond_vibes.judges.compile import judge_trust_of

    trust = judge_trust_of(meta if isinstance(meta, dict) else None)
    info.trusted, info.trust, info.untrusted_criteria = trust.trusted, trust.line, trust.untrusted_criteria
    return info


def judges_for(judges_dir: Path, archetypes: set[str]) -> dict[str, JudgeInfo]:
    return {a: judge_info(judges_dir, a) for a in sorted(archetypes) if a}
