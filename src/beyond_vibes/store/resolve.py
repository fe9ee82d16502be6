"""Find a model's file for a quant across stores (local first), or describe it as an API model."""

from __future__ import annotations

from beyond_vibes.catalog import Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings
from beyond_vibes.store import ModelStore, ResolvedModel
from beyond_vibes.store.local import LocalStore


def stores(settings: Settings, base_dir) -> list[ModelStore]:
    return [LocalStore(settings.cache_dir, base_dir)]


def resolve_model(model: Model, quant: str | None, settings: Settings, base_dir=None) -> ResolvedModel:
    if not model.is_local:
        return ResolvedModel(model, None, None, "", f"api:{model.base_url}")
    assert quant is not None
    for store in stores(settings, base_dir):
        found = store.resolve(model, quant)
        if found is not None:
            return found
    raise ConfigError(
        f"model {model.name} quant {quant}: no local file; run `beyond-vibes download --model {model.name} --quant {quant}` "
        f"(or add sources.{quant} to models.yaml)"
    )
