"""A model's LoRA adapter file: found like a model file (a path, a package, or a Hugging Face repo through the local
cache, the S3 mirror and the hub), sha256-verified, and checked against its base model's architecture before
anything starts (llama-server would only say "model arch and LoRA arch mismatch" after loading the model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.catalog import Adapter, Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings
from beyond_vibes.store import sha256_file


@dataclass(frozen=True)
class ResolvedAdapter:
    name: str
    path: Path
    sha256: str
    scale: float
    source: str  # "path:...", "package:pkg/file", "cache:...", "s3://...", "hf:repo@commit"

    def identity(self) -> dict:
        """What of the adapter changes an outcome (the configuration identity's `adapter` part)."""
        return {"name": self.name, "sha256": self.sha256, "scale": self.scale}


def resolve_adapter(model: Model, settings: Settings, base_dir: Path | None = None,
                    base_file: Path | None = None) -> ResolvedAdapter | None:
    """The file of the adapter `model` is served with (None: the base), verified against the catalog's sha256.
    `base_file`: the base model's file (an adapter a package function writes is made for it)."""
    if not model.adapter:
        return None
    a = model.adapters[model.adapter]
    where = f"model {model.name} adapter {model.adapter}"
    path, source = _locate(model, a, settings, base_dir, where, base_file)
    if "," in str(path) or (a.scale != 1.0 and ":" in str(path)):  # llama-server splits --lora on these
        raise ConfigError(f"{where}: llama-server cannot take the path {path} (it splits --lora on ',' and "
                          "--lora-scaled on ':'); move or link the file to a path without them")
    sha = sha256_file(path, settings.model_dir)
    if a.sha256 and sha != a.sha256:
        raise ConfigError(f"{where}: {path} has sha256 {sha[:12]}, models.yaml says {a.sha256[:12]}; fetch it again "
                          "or fix adapters.<name>.sha256")
    return ResolvedAdapter(model.adapter, path, sha, a.scale, source)


def _locate(model: Model, a: Adapter, settings: Settings, base_dir: Path | None, where: str,
            base_file: Path | None) -> tuple[Path, str]:
    if a.path:
        path = Path(a.path).expanduser()
        path = path if path.is_absolute() else Path(base_dir or Path.cwd()) / path
        if not path.is_file():
            raise ConfigError(f"{where}: path {path} does not exist")
        return path, f"path:{path}"
    if a.package and a.call:
        return _written(model, a, settings, where, base_file)
    if a.package:
        from beyond_vibes.store.local import package_dir

        path = package_dir(model, model.adapter or "", a.package) / a.file
        if not path.is_file():
            raise ConfigError(f"{where}: {a.file} is not in package {a.package}")
        return path, f"package:{a.package}/{a.file}"
    return fetch_adapter(a, settings, where)


def _written(model: Model, a: Adapter, settings: Settings, where: str, base_file: Path | None) -> tuple[Path, str]:
    """An adapter a package function writes for the base file, once, into the cache (under a lock)."""
    import importlib

    from beyond_vibes.locks import file_lock, lock_path, private_tmp

    try:
        fn = getattr(importlib.import_module(a.package), a.call, None)
    except ImportError:
        fn = None
    if not callable(fn):
        raise ConfigError(f"{where}: package {a.package} has no function {a.call!r}; fix adapters.<name>.call")
    if base_file is None:
        raise ConfigError(f"{where}: an adapter written by {a.package}.{a.call} needs the base model's file")
    base_sha = sha256_file(Path(base_file), settings.model_dir)
    target = Path(settings.model_dir) / "adapters" / model.name / f"{model.adapter}-{base_sha[:12]}.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path(Path(settings.model_dir), target)):
        if not target.exists():
            tmp = private_tmp(target)
            try:
                fn(Path(base_file), tmp)
                tmp.replace(target)
            except Exception as e:  # noqa: BLE001 - the user's function: its failure is one line naming it
                raise ConfigError(f"{where}: {a.package}.{a.call} could not write the adapter for {base_file}: "
                                  f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
            finally:
                tmp.unlink(missing_ok=True)
    return target, f"package:{a.package}:{a.call}"


def fetch_adapter(a: Adapter, settings: Settings, where: str) -> tuple[Path, str]:
    """A Hugging Face adapter: the verified cache copy, else the S3 mirror's, else the hub's (into the cache)."""
    from beyond_vibes.store import transfer_progress
    from beyond_vibes.store.cache import ModelCache

    cache = ModelCache(settings.model_dir)
    found = cache.verified(a.repo_id, a.file)
    if found is not None and (a.sha256 is None or found.sha256 == a.sha256):
        return found.path, f"cache:{found.source}"
    try:
        if settings.s3_bucket:
            from beyond_vibes.store.s3 import S3Store, object_key

            s3 = S3Store(settings)
            obj = s3.head(object_key(a.repo_id, a.file))
            if obj is not None:
                with transfer_progress(transient=True) as progress:
                    task = progress.add_task(f"↓ s3 {a.file}", total=obj.size)
                    path = cache.fetch(a.repo_id, a.file, obj.sha256, lambda dest: s3.download(
                        obj.key, dest, progress=lambda n: progress.advance(task, n)), obj.revision or "",
                        f"s3://{s3.bucket}/{obj.key}")
                return path, f"s3://{s3.bucket}/{obj.key}"
        from beyond_vibes.store.hf import HuggingFace

        hf = HuggingFace(settings)
        snap = hf.snapshot(a.repo_id, a.revision)
        file = next((f for f in snap.files if f.path == a.file), None)
        if file is None:
            raise ConfigError(f"{a.repo_id}@{snap.commit[:12]} has no file {a.file}")
        with transfer_progress(transient=True) as progress:
            task = progress.add_task(f"↓ hf {a.file}", total=file.size)
            path = cache.fetch_from_hub(hf, a.repo_id, snap.commit, file, lambda n: progress.advance(task, n))
        return path, f"hf:{a.repo_id}@{snap.commit}"
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def gguf_kind(path: Path) -> tuple[str | None, str | None]:
    """(general.architecture, general.type) of a GGUF file, from its header alone; (None, None) when unreadable."""
    try:
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields
    except Exception:  # noqa: BLE001 - not a GGUF (or a truncated one): the caller says so
        return None, None

    def text(key: str) -> str | None:
        f = fields.get(key)
        return str(f.contents()) if f is not None else None

    return text("general.architecture"), text("general.type")


def check_adapter(model_path: Path, adapter: ResolvedAdapter, model_name: str) -> None:
    """The adapter is a LoRA GGUF for the base model's architecture, or a one-line ConfigError."""
    where = f"model {model_name} adapter {adapter.name}"
    arch, kind = gguf_kind(adapter.path)
    if arch is None:
        raise ConfigError(f"{where}: {adapter.path} is not a readable GGUF file; convert the adapter with llama.cpp's "
                          "convert_lora_to_gguf.py")
    if kind != "adapter":
        raise ConfigError(f"{where}: {adapter.path} is a GGUF of type {kind or 'model'}, not an adapter "
                          "(general.type=adapter); point adapters.<name> at the LoRA .gguf")
    base_arch, _ = gguf_kind(model_path)
    if base_arch is not None and base_arch != arch:
        raise ConfigError(f"{where}: the adapter is for architecture {arch}, the model {model_name} is {base_arch}; "
                          "use an adapter trained on this base model")
