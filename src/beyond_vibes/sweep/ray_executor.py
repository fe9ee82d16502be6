"""The Ray executor: each group (one served model and its cells) is one Ray task, asking a GPU for GPU engines, running
the same `run_group` as the local executor and recording into the same tracking server. Cells report to the driver
through a Ray queue as they finish (live progress); Ctrl-C / SIGTERM of the driver cancels the tasks, which ends
their runs KILLED and stops their servers the way Ctrl-C does locally.

Secrets never travel: a task gets the settings without their secret fields (S3 keys, HF token, judge key) and without
the tracking URI's password, and takes those from its own environment (and .env). Workers Ray starts on this
machine inherit the driver's environment; on a remote cluster, set the secrets (and MLFLOW_TRACKING_URI with its
credentials) in each worker's environment."""

from __future__ import annotations

import os
import queue as std_queue
import time
from collections.abc import Callable
from pathlib import Path

from beyond_vibes.catalog import Engine
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings
from beyond_vibes.sweep.plan import Cell, Group, SweepPlan
from beyond_vibes.sweep.run import CellOutcome, run_group


def group_resources(group: Group) -> dict:
    """What one group asks of the cluster: a GPU for a GPU engine (llama-server holds it for the whole group)."""
    gpu = group.model.is_local and group.engine.engine != Engine.cpu
    return {"num_gpus": 1 if gpu else 0, "num_cpus": 1}


def _remote_group(sent: Settings, plan: SweepPlan, group: Group, cells: list[Cell], experiment: str,
                  models_dir: str, events, cwd: str) -> list[CellOutcome]:
    import os

    from beyond_vibes.procs import signals_as_interrupt

    if os.path.isdir(cwd):  # relative paths in settings and tasks mean what they meant to the driver (same host)
        os.chdir(cwd)
    settings = worker_settings(sent)
    with signals_as_interrupt():
        return run_group(settings, plan, group, cells, experiment, Path(models_dir), lambda o: events.put(o))


def worker_settings(sent: Settings) -> Settings:
    """The settings a task runs with: the driver's, with the secrets of this worker's own environment."""
    return sent.with_secrets_from(Settings())


class RayExecutor:
    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None):
        self.settings = settings
        self.address = address

    def run(self, plan: SweepPlan, work: list[tuple[Group, list[Cell]]], experiment: str, models_dir: Path,
            on_cell: Callable[[CellOutcome], None], on_group: Callable[[Group], None]) -> list[CellOutcome]:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise ConfigError("--executor ray: Ray is not installed; pip install 'beyond-vibes[ray]' (ray==2.60.0)") from None
        started_here = not ray.is_initialized()
        try:
            if started_here:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except Exception as e:  # noqa: BLE001 - an unreachable cluster is the user's to fix: one line
            raise ConfigError(f"--ray-address: cannot reach the Ray cluster at {self.address or '(local)'}: "
                              f"{str(e).splitlines()[0][:200]}") from None
        events = Queue()
        task = ray.remote(_remote_group)
        refs = {}
        sent = self.settings.without_secrets()  # what Ray pickles to the workers
        for group, cells in work:
            ref = task.options(**group_resources(group), max_retries=0).remote(
                sent, plan, group, cells, experiment, str(models_dir), events, os.getcwd())
            refs[ref] = group
        outcomes: list[CellOutcome] = []
        try:
            pending = list(refs)
            while pending:
                self._drain(events, on_cell)
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    outcomes += ray.get(ref)
                    on_group(refs[ref])
            self._drain(events, on_cell)
        except BaseException:
            for ref in refs:
                ray.cancel(ref)  # KeyboardInterrupt inside the task: its runs end KILLED, its server stops
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                _, still = ray.wait(list(refs), num_returns=len(refs), timeout=1)
                if not still:
                    break
            raise
        finally:
            if started_here:
                ray.shutdown()
        return outcomes

    @staticmethod
    def _drain(events, on_cell) -> None:
        while True:
            try:
                on_cell(events.get_nowait())
            except std_queue.Empty:
                return
            except Exception:  # noqa: BLE001 - ray.util.queue.Empty subclasses queue.Empty in recent Ray; be safe
                return
