"""Plan and run a mirror of catalog quants from Hugging Face into S3 (or only the local cache)."""

from __future__ import annotations

from dataclasses import dataclass, field

from beyond_vibes.catalog import Catalog, Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.store import transfer_progress
from beyond_vibes.store.cache import ModelCache
from beyond_vibes.store.hf import HubFile, HuggingFace
from beyond_vibes.store.quants import select
from beyond_vibes.store.s3 import S3Store, object_key


@dataclass(frozen=True)
class PlannedFile:
    model: str
    quant: str
    repo_id: str
    commit: str
    file: HubFile
    target: str  # s3://bucket/key, or the local cache path
    action: str  # upload | replace | skip

    @property
    def key(self) -> str:
        return object_key(self.repo_id, self.file.path)


@dataclass
class MirrorReport:
    uploaded: list[PlannedFile] = field(default_factory=list)
    skipped: list[PlannedFile] = field(default_factory=list)
    bytes_uploaded: int = 0


def models_to_mirror(catalog: Catalog, model: str | None, quant: str | None) -> list[tuple[Model, list[str]]]:
    def hub_adapters(m: Model) -> bool:
        return any(a.repo_id for a in m.adapters.values())

    chosen = [catalog.model(model)] if model else [m for m in catalog.models
                                                   if m.is_local and (m.repo_id or hub_adapters(m))]
    out = []
    for m in chosen:
        if not m.repo_id and not hub_adapters(m):
            raise ConfigError(f"{catalog.path}: model {m.name!r} has no repo_id (nor adapter on the hub) to download from")
        if not m.repo_id:  # a packaged or local model whose adapters come from the hub: only those are mirrored
            out.append((m, []))
            continue
        if quant and quant not in m.quant_tags:
            raise ConfigError(f"{catalog.path}: model {m.name!r} has no quant {quant!r}; quant_tags: {', '.join(m.quant_tags)}")
        out.append((m, [quant] if quant else list(m.quant_tags)))
    if quant and not model and not out:
        raise ConfigError(f"{catalog.path}: no model with a repo_id offers quant {quant!r}")
    return out


def plan_mirror(catalog: Catalog, hf: HuggingFace, cache: ModelCache, s3: S3Store | None, model: str | None = None,
                quant: str | None = None, include_mmproj: bool = False) -> list[PlannedFile]:
    """What a mirror would do, file by file: one hub listing per model and at most one HEAD per file."""
    plan: list[PlannedFile] = []
    if s3 is not None:
        s3.check()
    for m, quants in models_to_mirror(catalog, model, quant):
        snap = hf.snapshot(m.repo_id, m.revision) if quants else None
        by_path = {f.path: f for f in snap.files} if snap else {}
        for q in quants:
            files = select(list(by_path), q, include_mmproj)
            if not files:
                raise ConfigError(f"{catalog.path}: {m.name}: {m.repo_id}@{snap.commit[:12]} has no .gguf file for quant {q!r}")
            for f in files:
                plan.append(_planned(m.name, q, m.repo_id, snap.commit, by_path[f.path], cache, s3))
        for name, a in m.adapters.items():  # its LoRA adapters from the hub, beside its quants
            if not a.repo_id:
                continue
            asnap = hf.snapshot(a.repo_id, a.revision)
            hub = next((f for f in asnap.files if f.path == a.file), None)
            if hub is None:
                raise ConfigError(f"{catalog.path}: {m.name}: adapter {name}: {a.repo_id}@{asnap.commit[:12]} has no "
                                  f"file {a.file}")
            if a.sha256 and hub.sha256 and hub.sha256 != a.sha256:
                raise ConfigError(f"{catalog.path}: {m.name}: adapters.{name}.sha256 is {a.sha256[:12]}, the hub's "
                                  f"{a.file}@{asnap.commit[:12]} is {hub.sha256[:12]}; pin revision or fix sha256")
            plan.append(_planned(m.name, f"adapter:{name}", a.repo_id, asnap.commit, hub, cache, s3))
    return plan


def _planned(model: str, quant: str, repo_id: str, commit: str, hub: HubFile, cache: ModelCache,
             s3: S3Store | None) -> PlannedFile:
    """One file's action: skip when the store already holds it (size and sha256), else upload or replace."""
    if s3 is not None:
        obj = s3.head(object_key(repo_id, hub.path))
        same = obj is not None and obj.size == hub.size and (hub.sha256 is None or obj.sha256 == hub.sha256)
        action = "skip" if same else ("replace" if obj else "upload")
        target = f"s3://{s3.bucket}/{object_key(repo_id, hub.path)}"
    else:
        cached = cache.lookup(repo_id, hub.path)
        same = cached is not None and cached.size == hub.size and (hub.sha256 is None or cached.sha256 == hub.sha256)
        action = "skip" if same else ("replace" if cached else "upload")
        target = str(cache.path(repo_id, hub.path))
    return PlannedFile(model, quant, repo_id, commit, hub, target, action)


def run_mirror(plan: list[PlannedFile], hf: HuggingFace, cache: ModelCache, s3: S3Store | None,
               show_progress: bool = True) -> MirrorReport:
    """Download each changed file from the hub (verified), then upload it. A file that fails verification
    raises before any upload; the local copy stays in the cache so `simulate` on this machine can use it."""
    report = MirrorReport(skipped=[p for p in plan if p.action == "skip"])
    todo = [p for p in plan if p.action != "skip"]
    with transfer_progress(disable=not show_progress) as progress:
        for p in todo:
            name = p.file.path.rsplit("/", 1)[-1]
            cached = cache.lookup(p.repo_id, p.file.path)
            if cached is not None and cached.sha256 == p.file.sha256 and cached.size == p.file.size:
                local = cached.path  # downloaded by an earlier, interrupted run
            else:
                task = progress.add_task(f"↓ {name}", total=p.file.size)
                local = cache.fetch_from_hub(hf, p.repo_id, p.commit, p.file, lambda n, t=task: progress.advance(t, n))
            if s3 is not None:
                task = progress.add_task(f"↑ {name}", total=p.file.size)
                s3.upload(local, p.key, p.file.sha256 or cache.sha256(local), p.commit,
                          progress=lambda n, t=task: progress.advance(t, n))
            report.uploaded.append(p)
            report.bytes_uploaded += p.file.size
    return report

