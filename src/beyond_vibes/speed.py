"""Raw engine speed: llama-bench's prompt processing (pp512) and generation (tg128) tokens/s with their spread
over repetitions, on the same binary or image that serves the simulations, recorded as an MLflow run
(`bv.kind=speed`, experiment `<experiment>-speed`) so every agentic tokens/s has its engine reference beside it."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.catalog import Engine, EngineConfig, EngineSpec, Model
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.settings import Settings, scrubbed_environ

PROMPT, GEN = 512, 128


@dataclass
class BenchTest:
    name: str  # pp512 | tg128
    tps: float
    stddev: float
    n: int
    samples: list[float] = field(default_factory=list)


@dataclass
class SpeedResult:
    tests: list[BenchTest]
    build: str
    run_id: str | None
    raw: list[dict]


def bench_args(model_path: str, engine: EngineConfig, repetitions: int, prompt: int = PROMPT, gen: int = GEN) -> list[str]:
    """llama-bench arguments matching the engine config the simulations use."""
    args = ["-m", model_path, "-p", str(prompt), "-n", str(gen), "-r", str(repetitions), "-o", "json"]
    for flag, value in (("-t", engine.threads), ("-b", engine.batch), ("-ub", engine.ubatch), ("-ctk", engine.cache_type_k),
                        ("-ctv", engine.cache_type_v), ("-fa", engine.flash_attn)):
        if value is not None:
            args += [flag, str(value)]
    if engine.engine == Engine.cpu:
        args += ["-ngl", "0"]
    elif engine.n_gpu_layers is not None:
        args += ["-ngl", str(engine.n_gpu_layers)]
    return args


def parse_bench(text: str) -> tuple[list[BenchTest], str]:
    """llama-bench's JSON: one entry per test with avg_ts, stddev_ts and the per-repetition samples_ts."""
    start = text.find("[")
    try:
        entries = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        entries = None
    if not entries:
        raise SimulationError(f"llama-bench printed no results: {text.strip()[-300:]}")
    tests = []
    for e in entries:
        name = f"pp{e['n_prompt']}" if e.get("n_prompt") else f"tg{e['n_gen']}"
        samples = [float(x) for x in e.get("samples_ts") or []]
        tests.append(BenchTest(name, float(e["avg_ts"]), float(e.get("stddev_ts") or 0.0), len(samples), samples))
    build = f"b{entries[0].get('build_number')}-{entries[0].get('build_commit')}"
    return tests, build


def run_bench_process(settings: Settings, engine: EngineConfig, spec: EngineSpec, model_path: Path, repetitions: int) -> str:
    if spec.bench_binary:
        bench = Path(spec.bench_binary)
    elif spec.binary:
        bench = Path(spec.binary).with_name("llama-bench")
    elif engine.engine == Engine.cpu:
        bench = settings.find_llama_tool("llama-bench")
    else:
        bench = None
    if bench is None or not Path(bench).exists():
        raise ConfigError(f"engine {engine.engine.value}: no llama-bench found; run ./setup.sh or set engines."
                          f"{engine.engine.value}.bench_binary in models.yaml")
    out = subprocess.run([str(bench), *bench_args(str(model_path), engine, repetitions)], capture_output=True, text=True,
                         env=scrubbed_environ(), timeout=3600)
    if out.returncode != 0:
        raise SimulationError(f"llama-bench exited with code {out.returncode}: {out.stderr.strip()[-300:]}")
    return out.stdout


def run_bench_container(settings: Settings, engine: EngineConfig, spec: EngineSpec, model_path: Path, repetitions: int) -> tuple[str, str]:
    """llama-bench inside the engine's image (its /app/llama-bench: the official `full` images have it)."""
    from beyond_vibes.runtime.container import ContainerRuntime, gpu_access, wait_for_exit

    runtime = ContainerRuntime(settings)
    image = runtime.image(spec)
    container = runtime.client().containers.run(
        image.id, entrypoint="/app/llama-bench", command=bench_args(f"/models/{model_path.name}", engine, repetitions),
        detach=True, volumes={str(model_path.resolve()): {"bind": f"/models/{model_path.name}", "mode": "ro"}},
        labels={"bv.kind": "speed"}, **gpu_access(engine.engine, spec.gpus))
    try:
        code = wait_for_exit(container, 3600)  # not container.wait(): podman's busy-polls and starves the bench
        text = container.logs(stdout=True, stderr=False).decode(errors="replace")
        if code != 0:
            raise SimulationError(f"llama-bench in {spec.image} exited with code {code}: "
                                  f"{container.logs(stdout=False, stderr=True).decode(errors='replace').strip()[-300:]}")
    finally:
        container.remove(force=True)
    return text, (image.attrs.get("RepoDigests") or [None])[0] or image.id


def run_speed(settings: Settings, model: Model, quant: str, engine: EngineConfig, spec: EngineSpec, repetitions: int = 3,
              models_dir: Path | None = None, experiment: str | None = None) -> SpeedResult:
    from beyond_vibes.serving import preflight

    if model.adapter:
        # llama-bench has no LoRA option (this build's --help lists none): a bench of the base would be recorded as
        # the adapter's speed, which it is not. The adapter's runs carry the server's own tokens/s.
        raise ConfigError(f"speed --adapter {model.adapter}: llama-bench cannot apply a LoRA adapter, so it cannot "
                          "measure one; run speed on the base model, and read the adapter's tokens/s from its runs")
    resolved = preflight(model, quant, settings, models_dir, None, engine, spec)
    started = time.time()
    image = None
    if engine.runtime == "container":
        text, image = run_bench_container(settings, engine, spec, resolved.path, repetitions)
    else:
        text = run_bench_process(settings, engine, spec, resolved.path, repetitions)
    tests, build = parse_bench(text)
    from beyond_vibes.identity import planned_identity

    # The identity of the configuration this measures, as its simulations record it (their llama-server's build).
    identity = planned_identity(settings, model, quant, resolved, engine, spec)
    run_id = _record(settings, model, quant, engine, resolved, tests, build, text, image, started, experiment, identity)
    return SpeedResult(tests, build, run_id, json.loads(text[text.find("["):]))


def _record(settings, model, quant, engine, resolved, tests, build, text, image, started, experiment, identity) -> str:
    from mlflow.entities import Metric, Param

    from beyond_vibes.identity import adapter_params, adapter_tags, identity_param, identity_tags
    from beyond_vibes.serving import owner_tags
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings, f"{experiment or settings.mlflow_experiment}-speed")
    tags = {N.TAG_KIND: "speed", N.TAG_MODEL: model.name, N.TAG_FAMILY: model.family, N.TAG_QUANT: quant,
            N.TAG_ENGINE: engine.engine.value, N.TAG_RUNTIME: engine.runtime, **identity_tags(identity), **adapter_tags(resolved), **owner_tags()}
    run = client.create_run(exp_id, start_time=int(started * 1000), tags=tags,
                            run_name=f"{model.label}:{quant} · {engine.engine.value} · {engine.runtime} · llama-bench")
    now = int(time.time() * 1000)
    metrics = []
    for t in tests:
        metrics += [Metric(f"{t.name}_tps", round(t.tps, 2), now, 0), Metric(f"{t.name}_tps_std", round(t.stddev, 2), now, 0)]
        if t.samples:
            metrics.append(Metric(f"{t.name}_tps_median", round(statistics.median(t.samples), 2), now, 0))
    params = {N.PARAM_LLAMA_BUILD: build, N.PARAM_ENGINE_CONFIG: engine.name, N.PARAM_MODEL_SHA256: resolved.sha256,
              N.PARAM_ENGINE_FLAGS: json.dumps(engine.flags(), sort_keys=True), "repetitions": tests[0].n if tests else 0,
              N.PARAM_IMAGE: image, N.PARAM_CONFIG_IDENTITY: identity_param(identity), **adapter_params(resolved)}
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items() if v is not None])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "llama-bench.json").write_text(text[text.find("["):])
        client.log_artifacts(run.info.run_id, tmp)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
