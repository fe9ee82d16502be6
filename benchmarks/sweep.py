"""A sweep of T tasks on one model/quant vs T separate `simulate` calls, side by side in one run; then the
aggregate generation tokens/s of the same sweep with 1 and with 2 parallel slots.

The separate calls each start (and load) their own llama-server, as a user running `simulate` in a loop would; the
sweep loads the model once per group. Aggregate generation tokens/s = all completion tokens of the sweep's runs /
the sweep's wall time (what a machine delivers, not one request's speed).

Run: .venv/bin/python benchmarks/sweep.py [--tasks 4] [--model smollm2-135m] [--max-turns 2]
Last line: sweep_ratio=<x> loads=<n> slot_speedup=<y>
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from beyond_vibes import names as N  # noqa: E402
from beyond_vibes.catalog import load_catalog  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.simulate import SimulateOptions, simulate  # noqa: E402
from beyond_vibes.sweep.plan import SweepPlan, expand  # noqa: E402
from beyond_vibes.sweep.run import run_sweep  # noqa: E402
from beyond_vibes.tasks import load_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=4, help="T: repeats of fix_failing_test")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-turns", type=int, default=2)
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "models.yaml")
    model, quant = catalog.choose(args.model)
    task = load_task("fix_failing_test", ROOT / "tasks")
    with tempfile.TemporaryDirectory(prefix="bv-bench-sweep-") as home:
        def settings(exp: str) -> Settings:
            return Settings(BV_HOME=home, MLFLOW_TRACKING_URI=f"sqlite:///{home}/mlflow.db", BV_EXPERIMENT=exp,
                            BV_TASKS_DIR=str(ROOT / "tasks"))

        s = settings("separate")
        start = time.monotonic()
        for r in range(args.tasks):
            simulate(task, model, quant, s, SimulateOptions(max_turns=args.max_turns, repeat=r), models_dir=ROOT)
        separate_s = time.monotonic() - start
        print(f"{args.tasks} separate simulate calls: {separate_s:.1f} s ({args.tasks} model loads)", flush=True)

        def sweep(exp: str, parallel: int, slots: int) -> tuple[float, int, int]:
            m = model.model_copy(update={"engine": model.engine.model_copy(update={"parallel": slots})})
            cat = catalog.model_copy(update={"models": [m if x.name == m.name else x for x in catalog.models]})
            plan = SweepPlan(name=exp, models=[{"name": model.name, "quants": [quant]}], tasks=[task.name],
                             repeats=args.tasks, max_turns=args.max_turns, parallel=parallel)
            st = settings(exp)
            groups = expand(plan, ROOT / "bench.yaml", cat, st)
            t0 = time.monotonic()
            result = run_sweep(st, plan, groups, exp, ROOT, report=lambda line: None)
            wall = time.monotonic() - t0
            from beyond_vibes.tracking import tracking_client

            client, exp_id = tracking_client(st, exp)
            tokens = sum(int(r.data.metrics.get(N.M_TOKENS_COMPLETION, 0)) for r in client.search_runs([exp_id]))
            return wall, result.loads, tokens

        sweep_s, loads, _ = sweep("sweep1", 1, 1)
        print(f"sweep of {args.tasks} runs: {sweep_s:.1f} s ({loads} model load)", flush=True)
        one_s, _, one_tokens = sweep("slots1", 1, 1)
        two_s, _, two_tokens = sweep("slots2", 2, 2)
        agg1, agg2 = one_tokens / one_s, two_tokens / two_s
        print(f"aggregate generation: 1 slot {agg1:.1f} tok/s ({one_tokens} tokens in {one_s:.1f} s), "
              f"2 slots {agg2:.1f} tok/s ({two_tokens} tokens in {two_s:.1f} s)", flush=True)
        print(f"sweep_ratio={sweep_s / separate_s:.2f} loads={loads} slot_speedup={agg2 / agg1:.2f}")


if __name__ == "__main__":
    sys.exit(main())
