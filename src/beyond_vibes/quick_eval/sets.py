"""Quick-eval question sets: `evals/<set>.yaml` (how to ask and score) + `evals/<set>.jsonl` (the items).

Every problem a user can make in either file is one ConfigError naming the file (and the JSONL line number) and
the fix; nothing runs with a broken set.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from beyond_vibes.configfile import jsonl_objects, load_model
from beyond_vibes.errors import ConfigError, validation_message
from beyond_vibes.tasks import Archetype

SCORERS = ("numeric", "code", "analysis", "judge")


class Difficulty(str, Enum):
    easy = "easy"
    medium = "medium"
    hard = "hard"


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    response: str


class EvalSet(BaseModel):
    """`evals/<set>.yaml`."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: int | str = 1  # bump when an item's meaning changes: scored items of another version are not re-used
    domain: str
    scorer: str
    description: str = ""
    system_prompt: str = ""
    few_shot: int = Field(0, ge=0)
    max_tokens: PositiveInt = 256
    tolerance: float = Field(1e-6, ge=0)  # numeric: relative tolerance (and the same absolute one near zero)
    time_limit_s: float = Field(10.0, gt=0)  # code: per item, the tests included
    memory_limit_mb: PositiveInt = 512  # code: address-space limit of the subprocess
    judge: Archetype | None = None  # judge: the archetype whose compiled judge scores the answers
    pass_score: float | None = None  # judge: the mean normalised criterion score (0..1) an item needs to pass
    examples: list[Example] = Field(default_factory=list)
    items_file: Path | None = None  # set by the loader: the JSONL next to the YAML

    @field_validator("scorer")
    @classmethod
    def _scorer(cls, v: str) -> str:
        if v not in SCORERS:
            raise ValueError(f"unknown scorer {v!r}; choose one of {', '.join(SCORERS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "EvalSet":
        if self.few_shot > len(self.examples):
            raise ValueError(f"few_shot is {self.few_shot} but only {len(self.examples)} examples are given; "
                             "add examples or lower few_shot")
        if self.scorer == "judge" and not self.judge:
            raise ValueError("scorer judge needs `judge: <archetype>` (the compiled judge that scores the answers)")
        return self

    def fingerprint(self) -> str:
        """What changes how every item is asked or scored (the set version included): part of the re-use key."""
        data = self.model_dump(mode="json", exclude={"items_file", "description", "domain"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Item(BaseModel):
    """One line of `evals/<set>.jsonl`."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    expected: Any  # numeric: a number; analysis: a string or a list of acceptable strings; code: a reference solution
    difficulty: Difficulty = Difficulty.medium
    tests: list[str] | None = None  # code: assert statements run after the answer's code

    @field_validator("expected")
    @classmethod
    def _present(cls, v: Any) -> Any:
        if v is None or v == "" or v == []:
            raise ValueError("field required (the answer the scorer compares with)")
        return v

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _check_item(s: EvalSet, item: Item, where: str) -> None:
    if s.scorer == "numeric":
        from beyond_vibes.quick_eval.scorers import parse_number

        if isinstance(item.expected, bool) or parse_number(str(item.expected)) is None:
            raise ConfigError(f"{where}: expected: {item.expected!r} is not a number (the numeric scorer needs one)")
    elif s.scorer == "code" and not item.tests:
        raise ConfigError(f"{where}: tests: field required (the code scorer runs the answer against them)")
    elif s.scorer == "analysis" and not (isinstance(item.expected, (str, int, float))
                                         or (isinstance(item.expected, list) and all(isinstance(x, str) for x in item.expected))):
        raise ConfigError(f"{where}: expected: give a string or a list of acceptable strings")


def load_items(s: EvalSet, path: Path) -> list[Item]:
    if not path.exists():
        raise ConfigError(f"{path}: file not found (every set needs its items next to its YAML)")
    items: list[Item] = []
    seen: set[str] = set()
    for where, data in jsonl_objects(path):
        try:
            item = Item.model_validate(data)
        except ValidationError as e:
            raise ConfigError(validation_message(where, e)) from None
        if item.id in seen:
            raise ConfigError(f"{where}: id: {item.id!r} is used twice; ids must be unique")
        seen.add(item.id)
        _check_item(s, item, where)
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no items")
    return items


def set_names(evals_dir: Path) -> list[str]:
    return sorted(p.stem for p in evals_dir.glob("*.yaml"))


def load_set(name: str, evals_dir: Path) -> tuple[EvalSet, list[Item]]:
    """A set by name (a file in evals/) or by path to its YAML."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = evals_dir / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(set_names(evals_dir)) or "none"
        raise ConfigError(f"unknown eval set {name!r}: {path} not found; sets in {evals_dir}: {known}")
    s = load_model(path, EvalSet)
    if s.name != path.stem:
        raise ConfigError(f"{path}: name: {s.name!r} must be the file's name ({path.stem!r})")
    s.items_file = path.with_suffix(".jsonl")
    return s, load_items(s, s.items_file)
