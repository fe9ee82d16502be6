"""Run a plan: look up what exists, then serve each group's model once and run its cells on it, several at a time
up to the server's parallel slots (or the plan's `parallel`), reporting progress after every cell."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.registry import pick
from beyond_vibes.settings import Settings
from beyond_vibes.sweep.plan import Cell, Group, SweepPlan
from beyond_vibes.sweep.resume import Existing, existing_cells, to_run


@dataclass
class Progress:
    total: int  # cells to run in this invocation
    groups: int
    done: int = 0
    failed: int = 0  # not success (failed, error, timeout)
    groups_done: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        return (time.monotonic() - self.started) / self.done * self.remaining

    def line(self, what: str) -> str:
        eta = self.eta_s()
        eta_text = f"ETA {eta / 60:.1f} min" if eta is not None else "ETA n/a"
        return (f"[{self.done}/{self.total}] {what} · groups {self.groups_done}/{self.groups} · {self.failed} not "
                f"success · {self.remaining} remaining · {eta_text}")


@dataclass
class CellOutcome:
    group: str
    cell: str
    key: str
    status: str
    run_id: str | None
    error: str | None = None


@dataclass
class SweepResult:
    outcomes: list[CellOutcome]
    skipped: int
    loads: int  # model servers started
    experiment: str

    @property
    def run_ids(self) -> list[str]:
        return [o.run_id for o in self.outcomes if o.run_id]


def run_group(settings: Settings, plan: SweepPlan, group: Group, cells: list[Cell], experiment: str, models_dir: Path,
              on_cell: Callable[[CellOutcome], None]) -> list[CellOutcome]:
    """One served model for all of `cells` (the unit a local pool or a Ray task runs)."""
    from beyond_vibes.serving import serve_model
    from beyond_vibes.simulate import SimulateOptions, run_simulation

    from beyond_vibes.errors import SimulationError

    outcomes: list[CellOutcome] = []
    with ExitStack() as stack:
        try:
            served = stack.enter_context(serve_model(group.model, group.quant, settings, group.engine, models_dir,
                                                     experiment=experiment, spec=group.spec))
        except SimulationError as e:  # the server did not start: a hard failure of this configuration, per cell
            from beyond_vibes.sweep.failed import record_start_failure

            for cell in cells:
                run_id = record_start_failure(settings, plan, group, cell, experiment, models_dir, str(e))
                out = CellOutcome(group.label, cell.label, cell.key, N.STATUS_ERROR, run_id,
                                  f"server did not start: {str(e).splitlines()[0][:200]}")
                on_cell(out)
                outcomes.append(out)
            return outcomes

        def one(cell: Cell) -> CellOutcome:
            this = served
            if cell.seed is not None:  # the seed is the model's sampling seed: the proxy pins it per request
                model = group.model.model_copy(update={"sampling": group.model.sampling.model_copy(update={"seed": cell.seed})})
                this = dataclasses.replace(served, model=model)
            opts = SimulateOptions(prompt_vars=plan.prompt_vars, max_turns=plan.max_turns, timeout_s=plan.timeout_s,
                                   agent=plan.agent, engine=group.engine, engine_spec=group.spec, sandbox=plan.sandbox,
                                   repeat=cell.repeat, experiment=experiment,
                                   extra_tags={N.TAG_SWEEP: plan.name, N.TAG_CELL_KEY: cell.key})
            try:
                r = run_simulation(cell.task, this, settings, opts)
                out = CellOutcome(group.label, cell.label, cell.key, r.status, r.run_id, r.error)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - one cell's harness failure is recorded; the sweep goes on
                out = CellOutcome(group.label, cell.label, cell.key, "error", None, f"{type(e).__name__}: {e}"[:300])
            on_cell(out)
            return out

        workers = plan.parallel or max(1, served.server.parallel)
        if workers == 1:  # in this thread: Ctrl-C / SIGTERM reach the simulation itself and end its run KILLED
            return [one(c) for c in cells]
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            outcomes = list(pool.map(one, cells))
        except BaseException:
            # Cells not started are dropped; leaving this block stops the server, so the ones running end at once.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return outcomes


class LocalExecutor:
    """Groups one after another on this machine (one model in memory at a time)."""

    name = "local"

    def __init__(self, settings: Settings, *_):
        self.settings = settings

    def run(self, plan: SweepPlan, work: list[tuple[Group, list[Cell]]], experiment: str, models_dir: Path,
            on_cell: Callable[[CellOutcome], None], on_group: Callable[[Group], None]) -> list[CellOutcome]:
        outcomes = []
        for group, cells in work:
            outcomes += run_group(self.settings, plan, group, cells, experiment, models_dir, on_cell)
            on_group(group)
        return outcomes


def _ray_executor(settings: Settings, address: str | None = None):
    from beyond_vibes.sweep.ray_executor import RayExecutor

    return RayExecutor(settings, address)


EXECUTORS = {"local": LocalExecutor, "ray": _ray_executor}


@dataclass
class DryRun:
    groups: list[tuple[Group, int, dict[str, int]]]  # group, cells to run, existing statuses
    total_cells: int
    to_run: int
    estimated_s: float | None  # from earlier runs of the same model/quant/task, where any
    estimated_usd: float | None


def lookup(settings: Settings, groups: list[Group], experiment: str, retry: tuple[str, ...]
           ) -> tuple[Existing, list[tuple[Group, list[Cell]]]]:
    keys = {c.key for g in groups for c in g.cells}
    existing = existing_cells(settings, experiment, keys)
    work = []
    for g in groups:
        todo = set(to_run([c.key for c in g.cells], existing, retry))
        work.append((g, [c for c in g.cells if c.key in todo]))
    return existing, work


def dry_run(settings: Settings, groups: list[Group], experiment: str, retry: tuple[str, ...]) -> DryRun:
    existing, work = lookup(settings, groups, experiment, retry)
    rows, est_s, est_usd, known = [], 0.0, 0.0, True
    walls = _mean_walls(settings, experiment)
    for g, cells in work:
        rows.append((g, len(cells), dict(existing.counts([c.key for c in g.cells]))))
        for c in cells:
            wall = walls.get((g.model.label, g.quant or "api", c.task.name))
            if wall is None:
                known = False
                continue
            est_s += wall
            cost = g.model.pricing.cost(0, 0, wall)  # local: the machine's hourly price; API pricing needs tokens
            est_usd += cost or 0.0
    total = sum(len(g.cells) for g in groups)
    priced = any(g.model.pricing.priced for g in groups)
    return DryRun(rows, total, sum(len(c) for _, c in work), est_s if known else None,
                  est_usd if known and priced else None)


def _mean_walls(settings: Settings, experiment: str) -> dict[tuple[str, str, str], float]:
    from beyond_vibes.identity import model_label
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings, experiment)
    sums: dict[tuple[str, str, str], list[float]] = {}
    for run in client.search_runs([exp_id], f"tags.`{N.TAG_KIND}` = 'simulation'", max_results=2000):
        wall = run.data.metrics.get(N.M_WALL_S)
        if wall is not None:
            t = run.data.tags
            # An adapter's runs estimate its own cells, not its base's (model+adapter).
            sums.setdefault((model_label(t), t.get(N.TAG_QUANT, ""), t.get(N.TAG_TASK, "")), []).append(wall)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def run_sweep(settings: Settings, plan: SweepPlan, groups: list[Group], experiment: str, models_dir: Path,
              resume: bool = False, retry: tuple[str, ...] = (), executor: str = "local",
              report: Callable[[str], None] = print, ray_address: str | None = None) -> SweepResult:
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    existing, work = lookup(settings, groups, experiment, retry)
    total = sum(len(g.cells) for g in groups)
    todo = sum(len(c) for _, c in work)
    if not resume and todo < total:
        raise ConfigError(f"plan {plan.name}: {total - todo} of its {total} runs already exist in experiment "
                          f"{experiment!r}; add --resume to run only the rest (--retry-failed error,timeout to redo those)")
    if existing.reaped:
        report(f"marked {len(existing.reaped)} run(s) left RUNNING by a killed sweep as KILLED; their cells run again")
    work = [(g, cells) for g, cells in work if cells]
    progress = Progress(todo, len(work))
    lock = threading.Lock()
    report(f"sweep {plan.name}: {todo} run(s) in {len(work)} group(s); {total - todo} already done")

    def on_cell(o: CellOutcome) -> None:
        with lock:  # cells of a group finish on several threads
            progress.done += 1
            progress.failed += o.status != "success"
            report(progress.line(f"{o.group} · {o.cell}: {o.status}" + (f" ({o.error})" if o.error else "")))

    def on_group(g: Group) -> None:
        progress.groups_done += 1

    runner = pick(EXECUTORS, "executor", executor, settings, ray_address)
    outcomes = runner.run(plan, work, experiment, models_dir, on_cell, on_group)
    return SweepResult(outcomes, total - todo, len(work), experiment)
