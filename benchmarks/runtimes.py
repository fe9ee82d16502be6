"""Container vs process runtime on the same model and task, side by side, plus llama-bench's reference.

Alternates `simulate` with the process runtime and the container runtime (the image is this machine's own
llama-server build, so the binary is the same and only the runtime differs) and reports medians of model load
time, generation and prompt tokens/s, and wall time, then the ratios; then `speed` (llama-bench pp512/tg128) for
the engine beside the agentic tokens/s. Needs podman (or Docker) reachable at DOCKER_HOST, or starts podman.

Run: .venv/bin/python benchmarks/runtimes.py [--pairs 3] [--model smollm2-135m] [--max-turns 2]
Last line: container_load_ratio=<x> container_gen_ratio=<y> container_wall_ratio=<z>
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from podman_server import PodmanService  # noqa: E402

from beyond_vibes import names as N  # noqa: E402
from beyond_vibes.catalog import EngineSpec, load_catalog  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.simulate import SimulateOptions, simulate  # noqa: E402
from beyond_vibes.speed import run_speed  # noqa: E402
from beyond_vibes.tasks import load_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-turns", type=int, default=2)
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "models.yaml")
    model, quant = catalog.choose(args.model)
    task = load_task("fix_failing_test", ROOT / "tasks")
    with tempfile.TemporaryDirectory(prefix="bv-bench-rt-") as home, PodmanService() as podman:
        image = podman.build_llama_image(Settings().find_llama_server().parent)
        settings = Settings(BV_HOME=home, MLFLOW_TRACKING_URI=f"sqlite:///{home}/mlflow.db", BV_EXPERIMENT="runtimes",
                            DOCKER_HOST=podman.url)
        rows: dict[str, list[dict]] = {"process": [], "container": []}
        import psutil

        service = psutil.Process(podman.proc.pid)
        for _ in range(args.pairs):
            for runtime in ("process", "container"):
                service_cpu = sum(service.cpu_times()[:2])
                engine = catalog.engine_for(model, runtime=runtime)
                spec = EngineSpec(image=image)
                r = simulate(task, model, quant, settings, SimulateOptions(max_turns=args.max_turns, engine=engine,
                                                                           engine_spec=spec), models_dir=ROOT)
                rows[runtime].append(r.metrics)
                service_cpu = sum(service.cpu_times()[:2]) - service_cpu  # the container engine's own cost
                print(f"{runtime:>9}: load {r.metrics.get(N.M_LOAD_S)} s, gen {r.metrics.get(N.M_GEN_TPS)} tok/s, "
                      f"prompt {r.metrics.get(N.M_PROMPT_TPS)} tok/s, wall {r.metrics.get(N.M_WALL_S)} s, "
                      f"podman service CPU {service_cpu:.1f} s", flush=True)

        def med(runtime: str, name: str) -> float:
            return statistics.median(m[name] for m in rows[runtime] if name in m)

        ratios = {}
        for name, label in ((N.M_LOAD_S, "load"), (N.M_GEN_TPS, "gen"), (N.M_PROMPT_TPS, "prompt"), (N.M_WALL_S, "wall")):
            p, c = med("process", name), med("container", name)
            ratios[label] = c / p
            print(f"median {name}: process {p:.2f}, container {c:.2f}, container/process {c / p:.2f}")
        for runtime in ("process", "container"):
            engine = catalog.engine_for(model, runtime=runtime)
            sp = run_speed(settings, model, quant, engine, EngineSpec(image=image), repetitions=3, models_dir=ROOT)
            figures = ", ".join(f"{t.name} {t.tps:.1f} ± {t.stddev:.1f} tok/s" for t in sp.tests)
            print(f"llama-bench ({runtime}): {figures}; agentic median gen {med(runtime, N.M_GEN_TPS):.1f} tok/s, "
                  f"prompt {med(runtime, N.M_PROMPT_TPS):.1f} tok/s")
    print(f"container_load_ratio={ratios['load']:.2f} container_gen_ratio={ratios['gen']:.2f} "
          f"container_wall_ratio={ratios['wall']:.2f}")


if __name__ == "__main__":
    main()
