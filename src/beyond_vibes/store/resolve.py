"""Find a model's file for a quant: packaged/explicit sources, then the local cache (checksum-verified),
then the S3 mirror, then Hugging Face. Whatever is fetched is verified before it is used."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from beyond_vibes.catalog import Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel
from beyond_vibes.store.cache import ModelCache
from beyond_vibes.store.local import LocalStore
from beyond_vibes.store.quants import entry_file, parse, select


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)


def _from_cache(model: Model, quant: str, cache: ModelCache) -> ResolvedModel | None:
    files = select(cache.files(model.repo_id), quant)
    if not files:
        return None
    verified = [cache.verified(model.repo_id, f.path) for f in files]
    if any(v is None for v in verified):
        return None  # missing shard or a file that no longer matches its checksum: fetch again
    entry = cache.verified(model.repo_id, entry_file(files).path)
    return ResolvedModel(model, quant, entry.path, entry.sha256, f"cache:{entry.source}", entry.revision)


def _from_s3(model: Model, quant: str, cache: ModelCache, settings: Settings) -> ResolvedModel | None:
    from beyond_vibes.store.s3 import S3Store, object_key

    s3 = S3Store(settings)
    prefix = object_key(model.repo_id, "")
    objects = {o.key[len(prefix):]: o for o in s3.list(prefix) if parse(o.key)}
    files = select(list(objects), quant)
    if not files:
        return None
    with _progress() as progress:
        for f in files:
            obj = s3.head(object_key(model.repo_id, f.path))
            task = progress.add_task(f"↓ s3 {f.path}", total=obj.size)
            dest = s3.download(obj.key, cache.path(model.repo_id, f.path), progress=lambda n, t=task: progress.advance(t, n))
            cache.record(dest, obj.sha256 or _sha(dest, cache), obj.revision or "", f"s3://{s3.bucket}/{obj.key}")
    entry = cache.lookup(model.repo_id, entry_file(files).path)
    return ResolvedModel(model, quant, entry.path, entry.sha256, entry.source, entry.revision)


def _from_hf(model: Model, quant: str, cache: ModelCache, settings: Settings) -> ResolvedModel | None:
    from beyond_vibes.store.hf import HuggingFace

    hf = HuggingFace(settings)
    snap = hf.snapshot(model.repo_id, model.revision)
    by_path = {f.path: f for f in snap.files}
    files = select(list(by_path), quant)
    if not files:
        return None
    with _progress() as progress:
        for f in files:
            hub = by_path[f.path]
            task = progress.add_task(f"↓ hf {f.path}", total=hub.size)
            dest = hf.download(model.repo_id, snap.commit, hub, cache.path(model.repo_id, f.path),
                               progress=lambda n, t=task: progress.advance(t, n))
            cache.record(dest, hub.sha256 or _sha(dest, cache), snap.commit, f"hf:{model.repo_id}@{snap.commit}")
    entry = cache.lookup(model.repo_id, entry_file(files).path)
    return ResolvedModel(model, quant, entry.path, entry.sha256, entry.source, entry.revision)


def _sha(path: Path, cache: ModelCache) -> str:
    from beyond_vibes.store import sha256_file

    return sha256_file(path, cache.index_dir)


def resolve_model(model: Model, quant: str | None, settings: Settings, base_dir=None, offline: bool = False) -> ResolvedModel:
    if not model.is_local:
        return ResolvedModel(model, None, None, "", f"api:{model.base_url}")
    assert quant is not None
    found = LocalStore(settings.model_dir, base_dir).resolve(model, quant)
    if found is not None:
        return found
    if model.repo_id:
        cache = ModelCache(settings.model_dir)
        found = _from_cache(model, quant, cache)
        try:
            if found is None and settings.s3_bucket and not offline:
                found = _from_s3(model, quant, cache, settings)
            if found is None and not offline:
                found = _from_hf(model, quant, cache, settings)
        except ConfigError as e:
            raise ConfigError(f"model {model.name} quant {quant}: {e}") from None
        if found is not None:
            return found
        raise ConfigError(f"model {model.name}: {model.repo_id} has no .gguf file for quant {quant!r}")
    raise ConfigError(
        f"model {model.name} quant {quant}: no local file; run `beyond-vibes download --model {model.name} --quant {quant}` "
        f"(or add sources.{quant} to models.yaml)"
    )
