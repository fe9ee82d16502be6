"""What confinement costs a run: the same simulation with `--sandbox bwrap` and `--sandbox none`, alternated.

One scripted model server (three tool calls that fix fix_failing_test: model time ~0, so what differs is the
sandbox), one warm MLflow store, runs in this process (`simulate()`), bwrap/none alternating so machine noise hits
both. Reported: median wall_s of the run (workspace checkout -> checks done, the number MLflow shows), the ratio,
and the time a task's `setup:` adds (a `uv venv` + one local install, measured as the run's `setup_s`).
Last line: sandbox_ratio=<bwrap/none> sandbox_s=<bwrap-none> setup_s=<median setup>.

Run: .venv/bin/python benchmarks/sandbox.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from scripted_llm import ScriptedLLM, Step, bash  # noqa: E402

from beyond_vibes import names as N  # noqa: E402
from beyond_vibes.catalog import load_catalog  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.simulate import SimulateOptions, simulate  # noqa: E402
from beyond_vibes.tasks import load_task  # noqa: E402

STEPS = [
    bash("python -m pytest -q 2>&1 | tail -2"),
    bash("sed -i 's|/ (len(values) - 1)|/ len(values)|' mathutils.py && echo fixed"),
    bash("python -m pytest -q 2>&1 | tail -2"),
    Step(content="Fixed."),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bv-bench-sandbox-"))
    settings = Settings(MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}", BV_HOME=str(tmp / "home"),
                        BV_EXPERIMENT=f"bench-sandbox-{uuid.uuid4().hex[:6]}")
    (tmp / "tasks").mkdir()
    repo = ROOT / "tasks" / "repos" / "mathutils"
    plain = {"name": "bench_plain", "archetype": "repo_maintenance", "prompt": "Fix the failing test.",
             "repository": {"path": str(repo)}, "checks": [{"name": "tests", "command": "python -m pytest -q"}]}
    with_setup = {**plain, "name": "bench_setup", "setup": ["uv venv -q .venv && uv pip install -q --python .venv/bin/python pytest"]}
    for task in (plain, with_setup):
        (tmp / "tasks" / f"{task['name']}.yaml").write_text(yaml.safe_dump(task))
    walls: dict[str, list[float]] = {"bwrap": [], "none": []}
    setups: list[float] = []
    with ScriptedLLM(STEPS) as llm:
        spec = {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
                "base_url": llm.base_url, "context_window": 16384}
        (tmp / "models.yaml").write_text(yaml.safe_dump({"default": "scripted", "models": [spec]}))
        model, quant = load_catalog(tmp / "models.yaml").choose("scripted")
        task = load_task(str(tmp / "tasks" / "bench_plain.yaml"), tmp / "tasks")
        simulate(task, model, quant, settings, SimulateOptions(sandbox="bwrap"))  # warm: store, imports, page cache
        for i in range(args.pairs):
            for box in (("bwrap", "none") if i % 2 == 0 else ("none", "bwrap")):
                r = simulate(task, model, quant, settings, SimulateOptions(sandbox=box, repeat=i))
                assert r.status == N.STATUS_SUCCESS, (box, r.status, r.error)
                walls[box].append(r.metrics[N.M_WALL_S])
                print(f"pair {i} {box:5s} wall {r.metrics[N.M_WALL_S]:.2f} s", flush=True)
        setup_task = load_task(str(tmp / "tasks" / "bench_setup.yaml"), tmp / "tasks")
        for i in range(max(2, args.pairs // 2)):
            r = simulate(setup_task, model, quant, settings, SimulateOptions(sandbox="bwrap", repeat=i))
            setups.append(r.metrics[N.M_SETUP_S])
            print(f"setup run {i}: setup_s {r.metrics[N.M_SETUP_S]:.2f} wall {r.metrics[N.M_WALL_S]:.2f} s", flush=True)
    b, n = statistics.median(walls["bwrap"]), statistics.median(walls["none"])
    print(f"median wall: bwrap {b:.2f} s, none {n:.2f} s ({args.pairs} each, alternated)")
    print(f"sandbox_ratio={b / n:.2f} sandbox_s={b - n:.2f} setup_s={statistics.median(setups):.2f}")


if __name__ == "__main__":
    main()
