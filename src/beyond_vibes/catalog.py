"""models.yaml: the model catalog (local GGUF models and OpenAI-compatible APIs) and how to pick one."""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, model_validator

from beyond_vibes.configfile import load_model
from beyond_vibes.errors import ConfigError


class Engine(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    rocm = "rocm"
    vulkan = "vulkan"


DEFAULT_IMAGES = {  # the official llama.cpp server images; pin a tag or digest in models.yaml `engines`
    Engine.cpu: "ghcr.io/ggml-org/llama.cpp:server",
    Engine.cuda: "ghcr.io/ggml-org/llama.cpp:server-cuda",
    Engine.rocm: "ghcr.io/ggml-org/llama.cpp:server-rocm",
    Engine.vulkan: "ghcr.io/ggml-org/llama.cpp:server-vulkan",
}


class EngineSpec(BaseModel):
    """Where an engine's llama-server comes from: a binary for the process runtime, an image for containers."""

    model_config = ConfigDict(extra="forbid")
    binary: str | None = None  # e.g. a CUDA build of llama-server
    bench_binary: str | None = None  # its llama-bench (default: beside the binary)
    image: str | None = None  # tag or digest; default: the official image for the engine
    gpus: str = "all"  # "all" or comma-separated GPU ids, for GPU engines


class EngineConfig(BaseModel):
    """How llama-server runs a model: these become its command-line arguments."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    engine: Engine = Engine.cpu
    runtime: Literal["process", "container"] = "process"
    ctx: PositiveInt = 8192  # pi's system prompt and tool schemas alone are ~5k tokens
    threads: PositiveInt | None = None
    batch: PositiveInt | None = None
    ubatch: PositiveInt | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    n_gpu_layers: int | None = None
    parallel: PositiveInt = 1
    flash_attn: Literal["on", "off", "auto"] | None = None
    extra_args: list[str] = Field(default_factory=list)

    def server_args(self) -> list[str]:
        args = ["--ctx-size", str(self.ctx * self.parallel), "--parallel", str(self.parallel)]
        for flag, value in (
            ("--threads", self.threads),
            ("--batch-size", self.batch),
            ("--ubatch-size", self.ubatch),
            ("--cache-type-k", self.cache_type_k),
            ("--cache-type-v", self.cache_type_v),
            ("--n-gpu-layers", self.n_gpu_layers),
            ("--flash-attn", self.flash_attn),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args + list(self.extra_args)

    def flags(self) -> dict:
        """What changes the outcome (the run key): everything but where the binary or image came from."""
        return self.model_dump(mode="json", exclude={"name"})

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


class Sampling(BaseModel):
    """Pinned by the recording proxy on every request, so runs are comparable and repeatable."""

    model_config = ConfigDict(extra="forbid")
    temperature: NonNegativeFloat = 0.0
    seed: int | None = 42
    top_p: float | None = None
    max_tokens: PositiveInt | None = None


class Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_mtok: NonNegativeFloat = 0.0  # USD per million prompt tokens (API models)
    output_per_mtok: NonNegativeFloat = 0.0
    gpu_hour_usd: NonNegativeFloat = 0.0  # local models: what an hour of the serving machine costs

    @property
    def priced(self) -> bool:
        return bool(self.input_per_mtok or self.output_per_mtok or self.gpu_hour_usd)

    def cost(self, tokens_prompt: int, tokens_completion: int, wall_s: float) -> float | None:
        """USD for a run; None without any pricing (an unknown cost is not a free one)."""
        if not self.priced:
            return None
        return (
            tokens_prompt * self.input_per_mtok / 1e6
            + tokens_completion * self.output_per_mtok / 1e6
            + wall_s * self.gpu_hour_usd / 3600
        )


class LocalSource(BaseModel):
    """Where a GGUF file is found without a model hub: a path, a file inside an installed Python package
    (the demo models come from PyPI), a package function that assembles the file, or chunk packages whose
    `data/part*.bin` files, concatenated in the listed order, are the GGUF (checked against `sha256`)."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    package: str | None = None
    file: str | None = None
    call: str | None = None  # name of a function in `package` that takes an output path and returns it
    parts: list[str] = Field(default_factory=list)  # package names, in order
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_kind(self) -> "LocalSource":
        if sum(map(bool, (self.path, self.package, self.parts))) != 1:
            raise ValueError("give exactly one of path, package (with file or call) or parts")
        if self.package and bool(self.file) == bool(self.call):
            raise ValueError("a package source needs exactly one of file or call")
        if self.parts and not self.sha256:
            raise ValueError("parts need the sha256 of the assembled file")
        return self


class Adapter(BaseModel):
    """A GGUF LoRA adapter for a model (llama-server `--lora`, or `--lora-scaled` with a scale other than 1): a
    model variant like a quant. From a path, a file in an installed package, or a Hugging Face repo (through the S3
    mirror and the cache like model files); checked against `sha256` when given."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    package: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    file: str | None = None  # the .gguf in the package or the Hugging Face repo
    call: str | None = None  # a function in `package` that writes the adapter: fn(base model path, out path)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    scale: float = 1.0

    @model_validator(mode="after")
    def _one_kind(self) -> "Adapter":
        if sum(map(bool, (self.path, self.package, self.repo_id))) != 1:
            raise ValueError("give exactly one of path, package (with file or call) or repo_id (with file)")
        if self.repo_id and not self.file:
            raise ValueError("a repo_id adapter needs file (the .gguf in the repo)")
        if self.package and bool(self.file) == bool(self.call):
            raise ValueError("a package adapter needs exactly one of file or call")
        if self.call and not self.package:
            raise ValueError("call names a function in package: give package too")
        return self


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    family: str = "unknown"
    license: str | None = None  # shown in `models list`; the file's own metadata may lack it
    provider: str = "local"  # "local" (llama-server) or any name for an OpenAI-compatible API
    # Local models.
    repo_id: str | None = None
    revision: str | None = None
    quant_tags: list[str] = Field(default_factory=list)
    sources: dict[str, LocalSource] = Field(default_factory=dict)  # quant tag -> file found offline
    engine: EngineConfig = Field(default_factory=EngineConfig)
    chat_template: str | None = None  # a Jinja chat template file (relative to models.yaml) used instead of the GGUF's
    adapters: dict[str, Adapter] = Field(default_factory=dict)  # name -> a LoRA adapter for this model
    adapter: str | None = None  # the adapter it is served with: set by with_adapter (--adapter), never in models.yaml
    # API models.
    model_id: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    context_window: PositiveInt = 8192
    sampling: Sampling = Field(default_factory=Sampling)
    pricing: Pricing = Field(default_factory=Pricing)

    @property
    def is_local(self) -> bool:
        return self.provider == "local"

    @property
    def quants(self) -> list[str]:
        return list(dict.fromkeys([*self.quant_tags, *self.sources]))

    @property
    def label(self) -> str:
        """The name a variant is shown by: `model+adapter`, or the model's name for its base."""
        return f"{self.name}+{self.adapter}" if self.adapter else self.name

    def with_adapter(self, name: str | None, where: str = "--adapter") -> "Model":
        """This model served with adapter `name` (None: the base); an unknown name is one line naming the known."""
        if name is None:
            return self.model_copy(update={"adapter": None})
        if name not in self.adapters:
            known = ", ".join(sorted(self.adapters)) or "none"
            raise ConfigError(f"{where}: model {self.name} has no adapter {name!r} (models.yaml adapters: {known}); "
                              f"add it under models[{self.name}].adapters")
        return self.model_copy(update={"adapter": name})

    @model_validator(mode="after")
    def _provider_fields(self) -> "Model":
        if self.is_local:
            if not self.quants:
                raise ValueError("a local model needs quant_tags (and repo_id) or sources")
        else:
            missing = [f for f in ("model_id", "base_url") if not getattr(self, f)]
            if missing:
                raise ValueError(f"an API model (provider {self.provider}) needs {', '.join(missing)}")
            if self.adapters:
                raise ValueError("adapters are for local models (llama-server --lora), not an API")
        if self.adapter is not None:  # one way to choose a variant: a served model is the base unless asked
            raise ValueError("adapter is chosen per run (--adapter NAME, or a plan's models[].adapters), not in "
                             "models.yaml; list it under adapters and remove adapter")
        return self


class EngineOverlay(BaseModel):
    """A named engine config in models.yaml: only the flags it sets change the model's own engine settings."""

    model_config = ConfigDict(extra="forbid")
    engine: Engine | None = None
    runtime: Literal["process", "container"] | None = None
    ctx: PositiveInt | None = None
    threads: PositiveInt | None = None
    batch: PositiveInt | None = None
    ubatch: PositiveInt | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    n_gpu_layers: int | None = None
    parallel: PositiveInt | None = None
    flash_attn: Literal["on", "off", "auto"] | None = None
    extra_args: list[str] | None = None


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str | None = None
    default: str | None = None
    # The judges' LM, a setting of its own (never silently the candidate `default`): JUDGE_MODEL wins.
    judge: str | None = None
    engines: dict[Engine, EngineSpec] = Field(default_factory=dict)  # how each engine is served
    engine_configs: dict[str, EngineOverlay] = Field(default_factory=dict)  # named flag sets (--engine-config)
    models: list[Model]
    path: Path = Field(default=Path("models.yaml"), exclude=True)

    @model_validator(mode="after")
    def _unique_and_default(self) -> "Catalog":
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate model names: {', '.join(dupes)}")
        if self.default and self.default not in names:
            raise ValueError(f"default {self.default!r} is not a model in this file ({', '.join(names)})")
        if self.judge and self.judge not in names:
            raise ValueError(f"judge {self.judge!r} is not a model in this file ({', '.join(names)})")
        return self

    def judge_model(self, override: str | None = None) -> str:
        """The judge LM's model name: JUDGE_MODEL (`override`), else this file's `judge:`; never the candidates'
        default, so a models file without `judge:` gets an error that says how to name one."""
        if override or self.judge:
            return override or self.judge
        raise ConfigError(f"{self.path}: judge: no judge model; add `judge: <model>` (the strongest model you can serve "
                          "offline, not the one being judged), or set JUDGE_MODEL, or JUDGE_BASE_URL for an API")

    def engine_for(self, model: Model, engine: str | None = None, config: str | None = None,
                   runtime: str | None = None) -> EngineConfig:
        """The model's engine settings with a named engine config laid over them, then --engine / --runtime."""
        resolved = model.engine
        if config is not None:
            overlay = self.engine_configs.get(config)
            if overlay is None:
                known = ", ".join(self.engine_configs) or "none defined"
                raise ConfigError(f"{self.path}: engine_configs: no engine config {config!r}; choose one of {known}")
            resolved = resolved.model_copy(update={**overlay.model_dump(exclude_unset=True), "name": config})
        if engine is not None:
            try:
                resolved = resolved.model_copy(update={"engine": Engine(engine)})
            except ValueError:
                raise ConfigError(f"--engine: unknown engine {engine!r}; choose one of {', '.join(e.value for e in Engine)}") from None
        if runtime is not None:
            if runtime not in ("process", "container"):
                raise ConfigError(f"--runtime: unknown runtime {runtime!r}; choose one of process, container")
            resolved = resolved.model_copy(update={"runtime": runtime})
        return resolved

    def engine_spec(self, engine: Engine) -> EngineSpec:
        spec = self.engines.get(engine, EngineSpec())
        return spec if spec.image else spec.model_copy(update={"image": DEFAULT_IMAGES[engine]})

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(
            f"{self.path}: unknown model {name!r}; choose one of {', '.join(m.name for m in self.models)}"
        )

    def choose(self, model: str | None = None, quant: str | None = None, provider: str | None = None) -> tuple[Model, str | None]:
        """Pick (model, quant) the way the CLI promises: an explicit model; else the default model; else
        the only model offering the quant. Ambiguity or absence is a one-line error naming candidates."""
        pool = [m for m in self.models if provider is None or m.provider == provider]
        if provider is not None and not pool:
            providers = sorted({m.provider for m in self.models})
            raise ConfigError(f"{self.path}: no model with provider {provider!r}; providers: {', '.join(providers)}")
        if model is not None:
            chosen = self.model(model)
            if chosen not in pool:
                raise ConfigError(f"{self.path}: model {model!r} has provider {chosen.provider!r}, not {provider!r}")
        elif quant is not None:
            default = next((m for m in pool if m.name == self.default), None)
            offering = [m for m in pool if quant in m.quants]
            if default is not None and quant in default.quants:
                chosen = default
            elif len(offering) == 1:
                chosen = offering[0]
            elif not offering:
                known = ", ".join(f"{m.name}: {'/'.join(m.quants)}" for m in pool if m.quants)
                raise ConfigError(f"{self.path}: no model offers quant {quant!r}; available: {known}")
            else:
                raise ConfigError(
                    f"{self.path}: quant {quant!r} is offered by several models "
                    f"({', '.join(m.name for m in offering)}); pass --model"
                )
        else:
            default = next((m for m in pool if m.name == self.default), None)
            if default is not None:
                chosen = default
            elif len(pool) == 1:
                chosen = pool[0]
            else:
                raise ConfigError(
                    f"{self.path}: no default model; pass --model (one of {', '.join(m.name for m in pool)})"
                )
        if not chosen.is_local:
            if quant is not None:
                raise ConfigError(f"{self.path}: model {chosen.name!r} is an API model and has no quant {quant!r}")
            return chosen, None
        if quant is None:
            return chosen, chosen.quants[0]
        if quant not in chosen.quants:
            raise ConfigError(
                f"{self.path}: model {chosen.name!r} has no quant {quant!r}; available: {', '.join(chosen.quants)}"
            )
        return chosen, quant


def load_catalog(path: Path) -> Catalog:
    return load_model(Path(path), Catalog, path=Path(path))
