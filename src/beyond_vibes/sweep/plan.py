"""A sweep plan (`plans/<name>.yaml`): models x quants x engines x engine configs x tasks x seeds x repeats,
expanded into cells grouped by served model. Every name is checked and every model file resolved before anything
starts; each cell gets a key (`bv.cell_key`) computed from what is known before serving, so a resume can ask the
tracking server which cells are done."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from beyond_vibes.catalog import Catalog, EngineConfig, EngineSpec, Model
from beyond_vibes.configfile import load_model
from beyond_vibes.errors import ConfigError
from beyond_vibes.runkey import run_key
from beyond_vibes.settings import Settings
from beyond_vibes.tasks import Archetype, Task, load_task, load_tasks


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    quants: list[str] = Field(default_factory=list)  # empty: the model's first quant
    adapters: list[str | None] = Field(default_factory=list)  # names in its models.yaml adapters; null: the base


class SweepPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    experiment: str | None = None  # default: BV_EXPERIMENT
    models: list[PlanModel] = Field(min_length=1)
    engines: list[str] = Field(default_factory=list)  # cpu|cuda|rocm|vulkan; empty: each model's own
    engine_configs: list[str | None] = Field(default_factory=list)  # names in models.yaml; null: the model's own
    runtime: str | None = None  # process|container; default: each model's own
    tasks: list[str] = Field(default_factory=list)
    archetypes: list[Archetype] = Field(default_factory=list)  # every task of these archetypes
    repeats: PositiveInt = 1
    seeds: list[int] = Field(default_factory=list)  # empty: each model's own sampling seed
    agent: str = "pi"
    max_turns: PositiveInt | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    parallel: PositiveInt | None = None  # simulations at once per served model; default: its parallel slots
    sandbox: Literal["auto", "bwrap", "container", "none"] = "auto"  # what confines agents, setups, checks
    prompt_vars: dict[str, str] = Field(default_factory=dict)
    models_file: Path | None = None  # default: BV_MODELS_FILE

    @model_validator(mode="after")
    def _some_tasks(self) -> "SweepPlan":
        if not self.tasks and not self.archetypes:
            raise ValueError("name `tasks` or `archetypes` (what the models are asked to do)")
        return self


@dataclass
class Cell:
    task: Task
    repeat: int
    seed: int | None
    key: str

    @property
    def label(self) -> str:
        seed = f" seed {self.seed}" if self.seed is not None else ""
        return f"{self.task.name} #{self.repeat}{seed}"


@dataclass
class Group:
    """One served model (model file + engine config) and the cells it runs."""

    model: Model
    quant: str | None
    engine: EngineConfig
    spec: EngineSpec
    model_sha256: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def label(self) -> str:
        eng = f" · {self.engine.engine.value}" if self.model.is_local else ""
        cfg = f" · {self.engine.name}" if self.model.is_local and self.engine.name not in ("", "default") else ""
        return f"{self.model.label}:{self.quant or 'api'}{eng}{cfg}"


def load_plan(path: Path) -> SweepPlan:
    return load_model(Path(path), SweepPlan)


def plan_tasks(plan: SweepPlan, settings: Settings, where: Path) -> list[Task]:
    tasks: dict[str, Task] = {}
    for name in plan.tasks:
        try:
            tasks[name] = load_task(name, settings.tasks_dir)
        except ConfigError as e:
            raise ConfigError(f"{where}: tasks: {e}") from None
    if plan.archetypes:
        for t in load_tasks(settings.tasks_dir):
            if t.archetype in plan.archetypes:
                tasks.setdefault(t.name, t)
    if not tasks:
        raise ConfigError(f"{where}: archetypes: no task in {settings.tasks_dir} has archetype "
                          f"{', '.join(a.value for a in plan.archetypes)}")
    return list(tasks.values())


def resolved_sandbox(name: str) -> str:
    """`auto` as this machine resolves it (a run records the sandbox it had, so the cell must name the same)."""
    from beyond_vibes.confinement import get_sandbox

    return get_sandbox(name).name if name == "auto" else name


def cell_key(task: Task, prompt: str, model: Model, quant: str | None, model_sha256: str, engine: EngineConfig,
             seed: int | None, plan: SweepPlan, agent_version: str, repeat: int, build: str = "",
             chat_template_sha256: str | None = None, adapter: dict | None = None) -> str:
    """Everything known before serving; a rebuilt llama-server (another build), a changed chat template or another
    adapter is a new cell, not "done"."""
    sampling = model.sampling.model_dump(mode="json") | ({"seed": seed} if seed is not None else {})
    return run_key(kind="sweep-cell", task=task.name, task_sha256=task.file_sha256, prompt=prompt, model=model.name,
                   quant=quant, model_sha256=model_sha256, build=build, chat_template_sha256=chat_template_sha256,
                   engine=engine.flags() if model.is_local else {"base_url": model.base_url, "model_id": model.model_id},
                   sampling=sampling, max_turns=plan.max_turns or task.max_turns,
                   timeout_s=float(plan.timeout_s or task.timeout_s), agent=plan.agent, agent_version=agent_version,
                   repeat=repeat, sandbox=resolved_sandbox(plan.sandbox), **({"adapter": adapter} if adapter else {}))


def expand(plan: SweepPlan, where: Path, catalog: Catalog, settings: Settings) -> list[Group]:
    """The plan's groups and cells; a bad name anywhere is one ConfigError naming the plan file and field."""
    from beyond_vibes.agents import get_agent
    from beyond_vibes.identity import adapter_identity, engine_build
    from beyond_vibes.serving import preflight

    tasks = plan_tasks(plan, settings, where)
    prompts = {}
    for t in tasks:
        try:
            prompts[t.name] = t.render_prompt(plan.prompt_vars)
        except ConfigError as e:
            raise ConfigError(f"{where}: prompt_vars: {e}") from None
    try:
        agent_version = get_agent(plan.agent, settings).version()
    except ConfigError as e:
        raise ConfigError(f"{where}: agent: {e}") from None
    models_dir = catalog.path.resolve().parent
    groups: list[Group] = []
    for i, pm in enumerate(plan.models):
        try:
            model = catalog.model(pm.name)
        except ConfigError as e:
            raise ConfigError(f"{where}: models.{i}.name: {e}") from None
        for quant, adapter in [(q, a) for q in pm.quants or [None] for a in pm.adapters or [None]]:
            try:
                model, q = catalog.choose(pm.name, quant)
            except ConfigError as e:
                raise ConfigError(f"{where}: models.{i}.quants: {e}") from None
            model = model.with_adapter(adapter, f"{where}: models.{i}.adapters")
            for engine_name in plan.engines or [None]:
                for config in plan.engine_configs or [None]:
                    try:
                        engine = (catalog.engine_for(model, engine_name, config, plan.runtime) if model.is_local
                                  else model.engine)
                    except ConfigError as e:
                        field_ = "engines" if engine_name else "engine_configs" if config else "runtime"
                        raise ConfigError(f"{where}: {field_}: {e}") from None
                    spec = catalog.engine_spec(engine.engine)
                    resolved = preflight(model, q, settings, models_dir, None, engine, spec)
                    group = Group(model, q, engine, spec, resolved.sha256 or "")
                    build = engine_build(settings, model, engine, spec) if model.is_local else ""
                    template = resolved.chat_template_sha256
                    for t in tasks:
                        for seed in plan.seeds or [None]:
                            for r in range(plan.repeats):
                                key = cell_key(t, prompts[t.name], model, q, group.model_sha256, engine, seed, plan,
                                               agent_version, r, build, template, adapter_identity(resolved))
                                group.cells.append(Cell(t, r, seed, key))
                    groups.append(group)
    return groups
