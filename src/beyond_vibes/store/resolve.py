"""Find a model's file for a quant by asking sources in order: packaged/explicit `sources`, the local cache
(checksum-verified), the S3 mirror, Hugging Face. Whatever is fetched is verified before it is used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from beyond_vibes.catalog import Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel, transfer_progress
from beyond_vibes.store.cache import ModelCache
from beyond_vibes.store.local import LocalStore
from beyond_vibes.store.quants import entry_file, parse, select

# A source answers with the model file for (model, quant), or None when it does not have it.
Source = Callable[[Model, str, Settings, ModelCache], ResolvedModel | None]


def _resolved(model: Model, quant: str, cache: ModelCache, entry_path: str, source: str | None = None) -> ResolvedModel:
    entry = cache.lookup(model.repo_id, entry_path)
    return ResolvedModel(model, quant, entry.path, entry.sha256, source or entry.source, entry.revision)


def from_cache(model: Model, quant: str, settings: Settings, cache: ModelCache) -> ResolvedModel | None:
    files = select(cache.files(model.repo_id), quant)
    # A missing shard or a file that no longer matches its checksum means: fetch again.
    if not files or any(cache.verified(model.repo_id, f.path) is None for f in files):
        return None
    entry = entry_file(files).path
    return _resolved(model, quant, cache, entry, f"cache:{cache.lookup(model.repo_id, entry).source}")


def from_s3(model: Model, quant: str, settings: Settings, cache: ModelCache) -> ResolvedModel | None:
    if not settings.s3_bucket:
        return None
    from beyond_vibes.store.s3 import S3Store, object_key

    s3 = S3Store(settings)
    prefix = object_key(model.repo_id, "")
    files = select([o.key[len(prefix):] for o in s3.list(prefix) if parse(o.key)], quant)
    if not files:
        return None
    with transfer_progress(transient=True) as progress:
        for f in files:
            obj = s3.head(object_key(model.repo_id, f.path))
            task = progress.add_task(f"↓ s3 {f.path}", total=obj.size)
            cache.fetch(model.repo_id, f.path, obj.sha256,
                        lambda dest, t=task, o=obj: s3.download(o.key, dest, progress=lambda n: progress.advance(t, n)),
                        obj.revision or "", f"s3://{s3.bucket}/{obj.key}")
    return _resolved(model, quant, cache, entry_file(files).path)


def from_hf(model: Model, quant: str, settings: Settings, cache: ModelCache) -> ResolvedModel | None:
    from beyond_vibes.store.hf import HuggingFace

    hf = HuggingFace(settings)
    snap = hf.snapshot(model.repo_id, model.revision)
    by_path = {f.path: f for f in snap.files}
    files = select(list(by_path), quant)
    if not files:
        return None
    with transfer_progress(transient=True) as progress:
        for f in files:
            task = progress.add_task(f"↓ hf {f.path}", total=by_path[f.path].size)
            cache.fetch_from_hub(hf, model.repo_id, snap.commit, by_path[f.path], lambda n, t=task: progress.advance(t, n))
    return _resolved(model, quant, cache, entry_file(files).path)


REPO_SOURCES: list[Source] = [from_cache, from_s3, from_hf]


def chat_template(model: Model, base_dir: Path | None) -> Path | None:
    """The model's shipped chat template file (relative to models.yaml), checked before anything starts."""
    if not model.chat_template:
        return None
    path = Path(model.chat_template).expanduser()
    path = path if path.is_absolute() else Path(base_dir or Path.cwd()) / path
    if not path.is_file():
        raise ConfigError(f"model {model.name}: chat_template: {path} does not exist")
    return path


def resolve_model(model: Model, quant: str | None, settings: Settings, base_dir=None) -> ResolvedModel:
    if not model.is_local:
        return ResolvedModel(model, None, None, "", f"api:{model.base_url}")
    assert quant is not None
    from beyond_vibes.store.adapters import check_adapter, resolve_adapter

    template = chat_template(model, base_dir)
    resolved = replace(_resolve_file(model, quant, settings, base_dir), chat_template=template)
    adapter = resolve_adapter(model, settings, base_dir, resolved.path)
    if adapter is not None:
        check_adapter(resolved.path, adapter, model.name)
    return replace(resolved, adapter=adapter)


def _resolve_file(model: Model, quant: str, settings: Settings, base_dir) -> ResolvedModel:
    found = LocalStore(settings.model_dir, base_dir).resolve(model, quant)
    if found is not None:
        return found
    if not model.repo_id:
        raise ConfigError(
            f"model {model.name} quant {quant}: no local file; run `beyond-vibes download --model {model.name} --quant {quant}` "
            f"(or add sources.{quant} to models.yaml)"
        )
    cache = ModelCache(settings.model_dir)
    for source in REPO_SOURCES:
        try:
            found = source(model, quant, settings, cache)
        except ConfigError as e:
            raise ConfigError(f"model {model.name} quant {quant}: {e}") from None
        if found is not None:
            return found
    raise ConfigError(f"model {model.name}: {model.repo_id} has no .gguf file for quant {quant!r}")
