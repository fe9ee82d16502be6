"""Candidates against a baseline, paired item by item: quality drop, flips each way, McNemar, decision.

Simulations pair by (task, seed, repeat): the same task, sampling seed and repeat index under the baseline and the
candidate (ad-hoc runs, which have no repeat index, by their start order).
Pairing (rather than comparing two pass rates) is what makes a small sweep informative: McNemar's test only looks
at the pairs whose outcome changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beyond_vibes.errors import ConfigError
from beyond_vibes.report.collect import Config, SimRun, config_label
from beyond_vibes.stats import Comparison, Thresholds, compare


@dataclass(frozen=True)
class ConfigRef:
    """`model:quant[:engine][#config id]` as a user writes it (no engine: whichever single engine it ran on; no id:
    whichever single configuration of those it ran as)."""

    model: str
    quant: str
    engine: str | None = None
    config_id: str | None = None  # a prefix of the config id

    def matches(self, config: tuple) -> bool:
        cid = config[3] if len(config) > 3 else ""
        return (config[0] == self.model and config[1] == self.quant and self.engine in (None, config[2])
                and (self.config_id is None or cid.startswith(self.config_id)))

    def __str__(self) -> str:
        name = ":".join(p for p in (self.model, self.quant, self.engine) if p)
        return f"{name}#{self.config_id}" if self.config_id else name


def parse_ref(text: str, where: str = "--baseline") -> ConfigRef:
    name, _, cid = str(text).partition("#")
    parts = [p.strip() for p in name.split(":")]
    if len(parts) not in (2, 3) or not all(parts) or ("#" in str(text) and not cid.strip()):
        raise ConfigError(f"{where}: {text!r}: write model:quant, model:quant:engine or model:quant:engine#<config id>, "
                          "e.g. qwen3-8b:Q8_0:cuda")
    return ConfigRef(*parts, *([cid.strip()] if cid.strip() else []))


def resolve(ref: ConfigRef, configs: Iterable[Config], where: str = "--baseline") -> Config | None:
    """The one recorded configuration `ref` names; None when it has no runs; an error when it is ambiguous."""
    found = sorted({c for c in configs if ref.matches(c)})
    if len(found) > 1:
        if len({c[2] for c in found}) > 1:
            engines = ", ".join(sorted({c[2] for c in found}))
            raise ConfigError(f"{where}: {ref} ran on several engines ({engines}); name one, e.g. {ref}:{found[0][2]}")
        ids = ", ".join(config_label(c) for c in found)
        raise ConfigError(f"{where}: {ref} ran as several configurations ({ids}; the report's \"Configurations\" "
                          f"section says how they differ); name one, e.g. {config_label(found[0])}")
    return found[0] if found else None


def require(ref: ConfigRef, configs: Iterable[Config], experiment: str, where: str = "--baseline") -> Config:
    configs = sorted(set(configs))
    found = resolve(ref, configs, where)
    if found is None:
        known = ", ".join(config_label(c) for c in configs[:12]) or "none"
        raise ConfigError(f"{where}: {ref} has no runs in experiment {experiment!r}; choose one of: {known} "
                          "(or run it first)")
    return found


def pair_key(task: str, seed: str | None, repeat: int | None, order: int) -> str:
    """What a run pairs on: its task, sampling seed and repeat index; an ad-hoc run (no repeat) by its start order
    among the ad-hoc runs of its task and seed."""
    return f"{task}#seed {seed if seed not in (None, '') else '-'}#" + (f"r{repeat}" if repeat is not None else f"adhoc {order}")


def paired_outcomes(runs: Iterable[SimRun]) -> dict[str, bool]:
    """(task, seed, repeat) -> passed. Plan seeds each restart repeat numbering at 0, so the seed is part of the
    pair. When one (task, seed, repeat) ran more than once (a rerun), the latest run counts."""
    from beyond_vibes import names as N

    adhoc: dict[tuple, int] = defaultdict(int)
    out: dict[str, bool] = {}
    for r in sorted(runs, key=lambda r: r.start_time):
        seed = r.params.get(N.PARAM_SEED)
        order = 0
        if r.repeat is None:
            order = adhoc[(r.task, seed)]
            adhoc[(r.task, seed)] += 1
        out[pair_key(r.task, seed, r.repeat, order)] = r.passed
    return out


def compare_sims(sims: list[SimRun], baseline: Config, thresholds: Thresholds = Thresholds(),
                 archetype_thresholds: Mapping[str, Thresholds] | None = None) -> list[Comparison]:
    """Every other configuration against the baseline: over all tasks, then per archetype (with that archetype's
    stricter thresholds when the roles file sets them)."""
    by_config: dict[Config, list[SimRun]] = defaultdict(list)
    for r in sims:
        by_config[r.config].append(r)
    base_runs = by_config.get(baseline, [])
    out = []
    for config in sorted(c for c in by_config if c != baseline):
        runs = by_config[config]
        out.append(compare(paired_outcomes(base_runs), paired_outcomes(runs), config_label(baseline),
                           config_label(config), "all", thresholds))
        for arch in sorted({r.archetype for r in runs} & {r.archetype for r in base_runs}):
            limits = (archetype_thresholds or {}).get(arch, thresholds)
            out.append(compare(paired_outcomes(r for r in base_runs if r.archetype == arch),
                               paired_outcomes(r for r in runs if r.archetype == arch), config_label(baseline),
                               config_label(config), arch, limits))
    return out
