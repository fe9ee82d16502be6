"""Load a YAML config file into a pydantic model, turning every failure into a one-line ConfigError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from beyond_vibes.errors import ConfigError, validation_message

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def load_model(file: Path, model: type[M], **extra) -> M:
    data = read_yaml(file)
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise ConfigError(validation_message(file, e)) from None


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict]]:
    """(`file:line`, object) for every non-empty line; a line that is not a JSON object is a one-line error."""
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); one JSON object per line") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        yield where, data
