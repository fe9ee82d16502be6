"""Task files (tasks/*.yaml): what the agent is asked to do, in which repository, and how we check it."""

from __future__ import annotations

import hashlib
import json
import re
from enum import Enum
from typing import Literal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from beyond_vibes.configfile import load_model
from beyond_vibes.errors import ConfigError


class Archetype(str, Enum):
    architectural_planning = "architectural_planning"
    repo_maintenance = "repo_maintenance"
    feature_implementation = "feature_implementation"
    comparative_research = "comparative_research"


class Repository(BaseModel):
    """A git URL, or a local path (relative to the task file's folder's parent, i.e. the tasks dir's parent)
    that is either a git repository or a plain folder snapshotted into one."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    path: str | None = None
    branch: str | None = None
    ref: str | None = None  # commit sha or tag: the pinned starting point

    @model_validator(mode="after")
    def _one_source(self) -> "Repository":
        if bool(self.url) == bool(self.path):
            raise ValueError("give exactly one of url or path")
        return self


Network = Literal["none", "packages"]  # none, or the package index the user configured (pip, uv, npm)


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    command: str
    timeout_s: PositiveInt = 300
    network: Network = "none"  # `packages` for a check that resolves from the index (`uv lock`)


class Solution(BaseModel):
    """A reference solution: `tasks validate` proves the checks fail without it and pass with it."""

    model_config = ConfigDict(extra="forbid")
    commands: list[str] = Field(default_factory=list)
    patch: str | None = None  # path relative to the tasks dir

    @model_validator(mode="after")
    def _something(self) -> "Solution":
        if not self.commands and not self.patch:
            raise ValueError("give commands or a patch")
        return self


class Material(BaseModel):
    """A source the agent reads instead of the web, mounted read-only at /materials/<name> for the agent and the
    checks: a package from the index (pinned by version and the sha256 of the exact file: the sdist by default,
    since sources are what an agent reads; `file: wheel` where the sdist cannot be had), or a folder or archive
    the user points at (`path`, relative to the tasks folder's parent; its sha256 is the harness's digest of the
    folder, or the archive file's). A missing or wrong sha256 is a one-line error saying the right one (materials.py)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    package: str | None = None  # the package index's name (pip)
    version: str | None = None
    file: Literal["sdist", "wheel"] = "sdist"
    path: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_source(self) -> "Material":
        if bool(self.package) == bool(self.path):
            raise ValueError("give exactly one of package (with version) or path")
        if self.package and not self.version:
            raise ValueError(f"package {self.package}: give its version (materials are pinned)")
        return self

    def describe(self) -> str:
        return f"{self.package} {self.version} ({self.file})" if self.package else f"{self.path} (a local source)"


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    archetype: Archetype
    repository: Repository
    max_turns: PositiveInt = 40
    timeout_s: PositiveInt = 1800
    guidelines: dict[str, str] = Field(default_factory=dict)
    system_prompt: str | None = None
    prompt: str
    prompt_vars: dict[str, str] = Field(default_factory=dict)  # defaults for {vars} in the prompt
    tools: list[str] = Field(default_factory=lambda: ["read", "bash", "edit", "write"])
    # Run once in the workspace, in the sandbox, as the agent's user, before the agent starts (with the package
    # index): e.g. `uv venv && uv pip install -e .[dev]`. A failing one ends the run as an error.
    setup: list[str] = Field(default_factory=list)
    setup_timeout_s: PositiveInt = 900
    requires: list[str] = Field(default_factory=list)  # commands the task needs beyond the toolchain (node, make...)
    network: Network = "none"  # the agent's: none, or `packages` to let it reach the package index
    # A folder (relative to the tasks folder) the checks see read-only at /opt/bv/task-checks and the agent never
    # does: the harness's own hidden tests of the agent's work.
    check_files: str | None = None
    # Sources the agent reads as its references (read-only at /materials/<name>); see Material.
    materials: list[Material] = Field(default_factory=list)
    # Why the task cannot be done faithfully offline (e.g. a compared product ships no package): `tasks list`.
    online_only: str | None = None
    checks: list[Check] = Field(default_factory=list)
    # The paths the task is about (globs, or folders): a change elsewhere counts against objective diff hygiene.
    scope: list[str] | None = None
    solution: Solution | None = None
    source: Path = Field(default=Path("task.yaml"), exclude=True)

    @model_validator(mode="after")
    def _unique_materials(self) -> "Task":
        names = [m.name for m in self.materials]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"materials: the name {dup[0]!r} is used twice (each is mounted at /materials/<name>)")
        return self

    @property
    def file_sha256(self) -> str:
        return hashlib.sha256(self.source.read_bytes()).hexdigest() if self.source.exists() else ""

    @property
    def base_dir(self) -> Path:
        """Relative paths in a task (repository path, solution patch) resolve against the tasks dir's parent."""
        return self.source.resolve().parent.parent

    def render_prompt(self, variables: dict[str, str] | None = None) -> str:
        values = {**self.prompt_vars, **(variables or {})}
        missing = sorted({m for m in _VAR.findall(self.prompt) if m not in values})
        if missing:
            raise ConfigError(
                f"{self.source}: prompt: no value for {{{missing[0]}}}; pass --prompt-vars "
                f"'{{\"{missing[0]}\": \"...\"}}' or set prompt_vars.{missing[0]} in the task"
            )
        return _VAR.sub(lambda m: str(values[m.group(1)]), self.prompt) + self.materials_note()

    def materials_note(self) -> str:
        """What the prompt adds for a task with materials: where they are and how to cite them."""
        if not self.materials:
            return ""
        listed = "; ".join(f"/materials/{m.name}: {m.describe()}" for m in self.materials)
        return ("\n\nYou cannot browse the web. Your sources are these materials, unpacked read-only (the environment "
                f"variable BV_MATERIALS names the folder, /materials in the sandbox): {listed}. Cite a file of them as "
                "/materials/<name>/<path inside it>.\n")


_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_task(name_or_path: str, tasks_dir: Path) -> Task:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(tasks_dir) / f"{name_or_path}.yaml"
    if not path.exists():
        names = ", ".join(t.stem for t in task_files(tasks_dir)) or "none"
        raise ConfigError(f"{path}: no such task file; tasks in {tasks_dir}: {names}")
    task = load_model(path, Task, source=path)
    if task.name != path.stem:
        raise ConfigError(f"{path}: name: {task.name!r} must match the file name {path.stem!r}")
    return task


def task_files(tasks_dir: Path) -> list[Path]:
    return sorted(Path(tasks_dir).glob("*.yaml")) if Path(tasks_dir).exists() else []


def load_tasks(tasks_dir: Path) -> list[Task]:
    return [load_task(str(p), tasks_dir) for p in task_files(tasks_dir)]


def parse_prompt_vars(text: str | None) -> dict[str, str]:
    """--prompt-vars takes a JSON object; anything else is a one-line error."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--prompt-vars: not valid JSON ({e.msg} at column {e.colno}); example: '{{\"extra\": \"use uv 0.5\"}}'") from None
    if not isinstance(data, dict):
        raise ConfigError("--prompt-vars: expected a JSON object like '{\"extra\": \"...\"}'")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
