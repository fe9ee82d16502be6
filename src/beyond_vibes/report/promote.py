"""Promotion: does a challenger replace a role's incumbent? Only when every gate holds.

roles.yaml:

    roles:
      coder:
        incumbent: qwen3-8b:Q8_0            # model:quant[:engine]
        challengers: [gemma3-12b:Q4_K_M, llama3.1-8b:Q6_K]
        tasks: [feature_implementation]     # optional: task names or archetypes to judge the role on
    thresholds:                             # optional: stricter drop thresholds (points) per archetype
      repo_maintenance: {ship: 0.5, acceptable: 1, marginal: 2}

Gates, each computed on the tasks both the incumbent and the challenger ran (within the role's tasks):
  acceptance    challenger pass rate >= incumbent pass rate
  review_pain   challenger <= incumbent; pain = mean over runs of (1 - judge score normalised to 0..1, averaged over
                criteria) when every run of both has scores from a trusted judge, else tool errors per tool call;
                an untrusted judge's scores (or criteria) never count, and the gate's note says which were ignored
  hard_failures challenger rate of error/timeout runs <= incumbent's
  cost_tier     challenger tier <= incumbent tier (0 unpriced/free, 1 < $0.01/task, 2 < $0.10, 3 more)
  diversity     after the swap the role's lineup (the challenger as incumbent + the other challengers; the old
                incumbent retires) still spans more than one model family
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from beyond_vibes.errors import ConfigError
from beyond_vibes.report.aggregate import TOOL_ERRORS_PER_CALL, cost_tier, ignored_judges, review_pain
from beyond_vibes.report.collect import Config, SimRun, config_label
from beyond_vibes.report.compare import parse_ref, resolve
from beyond_vibes.report.judging import JudgeInfo
from beyond_vibes.stats import Thresholds

EPS = 1e-12  # rates are ratios of small integers: equal ones must compare equal


class ThresholdSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ship: float = Field(ge=0)
    acceptable: float = Field(ge=0)
    marginal: float = Field(ge=0)

    @model_validator(mode="after")
    def _increasing(self) -> "ThresholdSpec":
        if not self.ship <= self.acceptable <= self.marginal:
            raise ValueError("ship <= acceptable <= marginal must hold")
        return self

    def thresholds(self) -> Thresholds:
        return Thresholds(self.ship, self.acceptable, self.marginal)


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incumbent: str
    challengers: list[str] = Field(min_length=1)
    tasks: list[str] = Field(default_factory=list)


class RolesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: dict[str, Role] = Field(min_length=1)
    thresholds: dict[str, ThresholdSpec] = Field(default_factory=dict)

    def archetype_thresholds(self) -> dict[str, Thresholds]:
        return {k: v.thresholds() for k, v in self.thresholds.items()}


def load_roles(path: Path) -> RolesFile:
    from beyond_vibes.configfile import load_model

    return load_model(Path(path), RolesFile)


@dataclass
class Gate:
    name: str
    rule: str
    incumbent: float | None
    challenger: float | None
    passed: bool
    detail: str = ""


@dataclass
class ChallengerResult:
    challenger: str
    family: str
    tasks: list[str]
    gates: list[Gate]

    @property
    def promotable(self) -> bool:
        return all(g.passed for g in self.gates)

    def gate(self, name: str) -> Gate:
        return next(g for g in self.gates if g.name == name)


@dataclass
class RoleDecision:
    role: str
    incumbent: str
    incumbent_family: str
    challengers: list[ChallengerResult] = field(default_factory=list)
    winner: str | None = None

    @property
    def verdict(self) -> str:
        return f"promote {self.winner} (replaces {self.incumbent})" if self.winner else f"keep {self.incumbent}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict
        for c, res in zip(d["challengers"], self.challengers):
            c["promotable"] = res.promotable
        return d


def _le(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a <= b + EPS


def _rate(runs: list[SimRun], pick) -> float | None:
    return sum(pick(r) for r in runs) / len(runs) if runs else None


def _mean_cost(runs: list[SimRun]) -> float | None:
    costs = [r.metrics["cost_usd"] for r in runs if "cost_usd" in r.metrics]
    return sum(costs) / len(costs) if costs else None


def _family(runs: list[SimRun], config: Config) -> str:
    families = [r.family for r in runs if r.family]
    return max(set(families), key=families.count) if families else config[0]


def gates(incumbent: list[SimRun], challenger: list[SimRun], judges: dict[str, JudgeInfo],
          families_after: list[str]) -> list[Gate]:
    """The five gates for one challenger against the incumbent, on runs already narrowed to common tasks."""
    inc_rate, ch_rate = _rate(incumbent, lambda r: r.passed), _rate(challenger, lambda r: r.passed)
    inc_pain, source = review_pain(incumbent, judges, "judge")
    ch_pain, _ = review_pain(challenger, judges, "judge")
    if inc_pain is None or ch_pain is None:  # not every run judged: both on tool errors, the same footing
        (inc_pain, source), (ch_pain, _) = (review_pain(incumbent, judges, TOOL_ERRORS_PER_CALL),
                                             review_pain(challenger, judges, TOOL_ERRORS_PER_CALL))
    ignored = ignored_judges(incumbent + challenger, judges)
    pain_note = (f"from {source}" if source else "not measured") + (f"; {'; '.join(ignored)}" if ignored else "")
    inc_hard, ch_hard = _rate(incumbent, lambda r: r.hard_failure), _rate(challenger, lambda r: r.hard_failure)
    inc_tier, ch_tier = cost_tier(_mean_cost(incumbent)), cost_tier(_mean_cost(challenger))
    distinct = sorted(set(families_after))
    return [
        Gate("acceptance", "challenger pass rate >= incumbent's", inc_rate, ch_rate, _le(inc_rate, ch_rate),
             "" if incumbent and challenger else "no tasks in common"),
        Gate("review_pain", "challenger review pain <= incumbent's", inc_pain, ch_pain, _le(ch_pain, inc_pain),
             pain_note),
        Gate("hard_failures", "challenger error/timeout rate <= incumbent's", inc_hard, ch_hard, _le(ch_hard, inc_hard)),
        Gate("cost_tier", "challenger cost tier <= incumbent's", float(inc_tier), float(ch_tier), ch_tier <= inc_tier,
             f"mean cost/task {_fmt_cost(_mean_cost(incumbent))} vs {_fmt_cost(_mean_cost(challenger))}"),
        Gate("diversity", "lineup after the swap spans > 1 model family", None, float(len(distinct)), len(distinct) > 1,
             "families after swap: " + ", ".join(distinct)),
    ]


def _fmt_cost(c: float | None) -> str:
    return "unpriced" if c is None else f"${c:.4f}"


def _role_runs(role_name: str, role: Role, sims: list[SimRun], source: Path) -> list[SimRun]:
    if not role.tasks:
        return sims
    known = {r.task for r in sims} | {r.archetype for r in sims}
    for i, t in enumerate(role.tasks):
        if t not in known:
            raise ConfigError(f"{source}: roles.{role_name}.tasks.{i}: {t!r} matches no task or archetype of the "
                              f"recorded runs; use one of: {', '.join(sorted(known))}")
    wanted = set(role.tasks)
    return [r for r in sims if r.task in wanted or r.archetype in wanted]


def promote(roles: RolesFile, sims: list[SimRun], judges: dict[str, JudgeInfo], source: Path,
            experiment: str) -> list[RoleDecision]:
    configs = {r.config for r in sims}
    by_config: dict[Config, list[SimRun]] = defaultdict(list)
    for r in sims:
        by_config[r.config].append(r)

    def find(text: str, where: str) -> Config:
        found = resolve(parse_ref(text, where), configs, where)
        if found is None:
            known = ", ".join(config_label(c) for c in sorted(configs)[:12]) or "none"
            raise ConfigError(f"{where}: {text} has no runs in experiment {experiment!r}; use one of: {known}")
        return found

    decisions = []
    for name, role in roles.roles.items():
        inc = find(role.incumbent, f"{source}: roles.{name}.incumbent")
        chs = [find(c, f"{source}: roles.{name}.challengers.{i}") for i, c in enumerate(role.challengers)]
        scoped = _role_runs(name, role, sims, source)
        fam = {c: _family(by_config[c], c) for c in [inc, *chs]}
        decision = RoleDecision(name, config_label(inc), fam[inc])
        for ch in chs:
            inc_runs = [r for r in scoped if r.config == inc]
            ch_runs = [r for r in scoped if r.config == ch]
            common = {r.task for r in inc_runs} & {r.task for r in ch_runs}
            inc_runs = [r for r in inc_runs if r.task in common]
            ch_runs = [r for r in ch_runs if r.task in common]
            lineup = [ch] + [c for c in chs if c != ch]
            decision.challengers.append(ChallengerResult(
                config_label(ch), fam[ch], sorted(common), gates(inc_runs, ch_runs, judges, [fam[c] for c in lineup])))
        winners = [c for c in decision.challengers if c.promotable]
        if winners:
            best = max(winners, key=lambda c: (c.gate("acceptance").challenger or 0.0,
                                               -(c.gate("review_pain").challenger or 0.0),
                                               -(c.gate("cost_tier").challenger or 0.0),
                                               -(c.gate("hard_failures").challenger or 0.0)))
            decision.winner = best.challenger
        decisions.append(decision)
    return decisions
