"""Pick an implementation by name from a small registry (runtimes, agents, stores, executors)."""

from __future__ import annotations

from typing import Callable, TypeVar

from beyond_vibes.errors import ConfigError

T = TypeVar("T")


def pick(registry: dict[str, Callable[..., T]], kind: str, name: str, *args) -> T:
    try:
        factory = registry[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of {', '.join(registry)}") from None
    return factory(*args)
