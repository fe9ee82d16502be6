"""An OpenAI-compatible API as a runtime: nothing to start, the key read from the named env var."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from beyond_vibes.catalog import EngineConfig
from beyond_vibes.errors import ConfigError
from beyond_vibes.runtime import Server
from beyond_vibes.settings import Settings, env_value
from beyond_vibes.store import ResolvedModel


class ApiRuntime:
    name = "api"

    def __init__(self, settings: Settings):
        self.settings = settings

    def api_key(self, model: ResolvedModel) -> str | None:
        m = model.model
        if not m.api_key_env:
            return None
        key = env_value(m.api_key_env)
        if not key:
            raise ConfigError(
                f"model {m.name}: api_key_env: environment variable {m.api_key_env} is not set; export it or add it to .env"
            )
        return key

    def preflight(self, model: ResolvedModel, engine: EngineConfig | None = None, spec=None) -> None:
        self.api_key(model)

    @contextmanager
    def serve(self, model: ResolvedModel, engine: EngineConfig, spec=None) -> Iterator[Server]:
        m = model.model
        key = self.api_key(model)
        yield Server(base_url=m.base_url.rstrip("/"), model_id=m.model_id, runtime=self.name, engine="api", build="api", api_key=key)
