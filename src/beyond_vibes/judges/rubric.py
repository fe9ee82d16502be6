"""judges/<archetype>.yaml + judges/common.yaml: what a judge scores, each criterion with an anchored scale."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from beyond_vibes.configfile import load_model
from beyond_vibes.errors import ConfigError
from beyond_vibes.tasks import Archetype

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    question: str
    kind: Literal["scale", "bool"] = "scale"
    min: int = 1
    max: int = 5
    higher_is_better: bool = True
    anchors: dict[int, str] = Field(default_factory=dict)  # scale points described in words (1, 3, 5 at least)

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r} must be lower_snake_case (it becomes a field name and an MLflow assessment name)")
        return v

    @model_validator(mode="after")
    def _scale(self) -> "Criterion":
        if self.kind == "bool":
            self.min, self.max = 0, 1
        if self.min >= self.max:
            raise ValueError(f"{self.name}: min must be below max")
        bad = [k for k in self.anchors if not self.min <= k <= self.max]
        if bad:
            raise ValueError(f"{self.name}: anchors {bad} are outside the scale {self.min}-{self.max}")
        if self.kind == "scale" and not {self.min, self.max} <= set(self.anchors):
            raise ValueError(f"{self.name}: anchor both ends of the scale ({self.min} and {self.max})")
        return self

    @property
    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1))

    def describe(self) -> str:
        direction = "" if self.higher_is_better else " (higher is worse)"
        scale = "0 = no, 1 = yes" if self.kind == "bool" else f"{self.min}-{self.max}"
        anchors = "; ".join(f"{k} = {v.rstrip('.')}" for k, v in sorted(self.anchors.items()))
        return f"- {self.name} ({scale}{direction}): {self.question} Anchors: {anchors}"


class _CommonFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    criteria: list[Criterion]


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    archetype: Archetype
    description: str
    criteria: list[Criterion]
    include_common: bool = True  # add judges/common.yaml's tier-1 signals
    source: Path = Field(default=Path("rubric.yaml"), exclude=True)
    sha256: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _unique(self) -> "Rubric":
        names = [c.name for c in self.criteria]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate criteria: {', '.join(dupes)}")
        return self

    def criterion(self, name: str) -> Criterion | None:
        return next((c for c in self.criteria if c.name == name), None)

    def text(self) -> str:
        """The rubric as the judge reads it."""
        return f"{self.description.strip()}\n\nCriteria:\n" + "\n".join(c.describe() for c in self.criteria)


def rubric_path(judges_dir: Path, archetype: str) -> Path:
    return Path(judges_dir) / f"{archetype}.yaml"


def load_rubric(archetype: str, judges_dir: Path) -> Rubric:
    """The archetype's rubric with the common criteria appended; `sha256` covers both files (staleness)."""
    known = [a.value for a in Archetype]
    if archetype not in known:
        raise ConfigError(f"unknown archetype {archetype!r}; choose one of {', '.join(known)}")
    path = rubric_path(judges_dir, archetype)
    if not path.exists():
        raise ConfigError(f"{path}: no rubric for archetype {archetype}; write one (see judges/repo_maintenance.yaml)")
    rubric = load_model(path, Rubric, source=path)
    if rubric.archetype.value != archetype:
        raise ConfigError(f"{path}: archetype: {rubric.archetype.value!r} must match the file name {archetype!r}")
    digest = hashlib.sha256(path.read_bytes())
    if rubric.include_common:
        common_path = Path(judges_dir) / "common.yaml"
        common = load_model(common_path, _CommonFile)
        clash = {c.name for c in common.criteria} & {c.name for c in rubric.criteria}
        if clash:
            raise ConfigError(f"{path}: criteria: {', '.join(sorted(clash))} already defined in {common_path}")
        rubric.criteria = [*rubric.criteria, *common.criteria]
        digest.update(common_path.read_bytes())
    rubric.sha256 = digest.hexdigest()
    return rubric
