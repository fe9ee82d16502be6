"""The MLflow tracking store: a local SQLite file by default, MLFLOW_TRACKING_URI for a shared server."""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.locks import file_lock
from beyond_vibes.redact import safe_uri

if TYPE_CHECKING:
    from beyond_vibes.settings import Settings

log = logging.getLogger("beyond_vibes")
_READY: dict[tuple[str, str], tuple[object, str]] = {}
_CLIENT_LOCK = threading.Lock()


def quiet_mlflow() -> None:
    """Environment MLflow reads at import: no network for prices, synchronous trace export, no noise."""
    # MLflow prices LLM spans through litellm (imported from dspy, seconds per process, and it would fetch its
    # price map from the internet); we compute cost ourselves.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    # Alembic logs every migration of a fresh SQLite store at INFO; users need none of it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def tracking_client(settings: Settings, experiment: str | None = None):
    """(RedactingClient, experiment id): the one MLflow writer, which redacts the settings' secrets from everything
    it writes. A fresh SQLite store is created under a file lock, because several processes creating its schema at
    once race in MLflow's migrations; the experiment likewise."""
    from beyond_vibes.mlflow_writer import RedactingClient
    from beyond_vibes.redact import Redactor

    uri = settings.tracking_uri
    name = experiment or settings.mlflow_experiment
    with _CLIENT_LOCK:
        if (uri, name) not in _READY:
            _READY[(uri, name)] = _open(uri, name)
        client, exp_id = _READY[(uri, name)]
    # Per call, not cached: callers with other settings (a test's fake keys) bring their own secrets.
    return RedactingClient(client, Redactor(settings.secret_values())), exp_id


def _open(uri: str, name: str):
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    if safe_uri(uri) != uri:  # MLflow prints "View run <link>" with the URI's credentials in it: not for this URI
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    db = sqlite_path(uri)
    try:
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(db.with_name(db.name + ".lock")):
                client = MlflowClient(uri)
                exp_id = _experiment(client, name, (db.parent / "artifacts").resolve().as_uri())
        else:
            client = MlflowClient(uri)
            exp_id = _experiment(client, name, None)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - an unreachable or broken store is the user's to fix: one line
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ConfigError(f"MLFLOW_TRACKING_URI: cannot use the tracking store {safe_uri(uri)}: {safe_uri(first)}; "
                          "start the server or fix the URI") from None
    return client, exp_id


class TrackingWorker:
    """MLflow in a process of its own. Importing MLflow and opening a store cost ~2.5 s of CPU, and in one Python
    process that work would hold the interpreter lock the harness needs meanwhile; in a second process it runs on
    another core while the model server and the agent start. Calls run one at a time, in submission order; each
    names a module-level function ("module:function", so the harness need not import MLflow-heavy modules) that
    the worker calls as fn(settings, *args); arguments and results travel pickled over a pipe.

    The worker is `python -m beyond_vibes.tracking` (not multiprocessing: that would re-run the caller's
    unguarded main script), ignores Ctrl-C/SIGTERM (the harness asks it to record the end instead), and dies
    with the harness (parent-death signal; end of its input)."""

    def __init__(self, settings: Settings | None = None):
        # Its own session: a terminal's Ctrl-C goes to the harness only. No parent-death signal (that would follow
        # the thread that started it): the end of its input tells it the harness is gone.
        self._proc = subprocess.Popen([sys.executable, "-m", "beyond_vibes.tracking"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        self._lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._next = 0
        self._dead: str | None = None
        self.settings: Settings | None = None
        self._ready: Future | None = None
        threading.Thread(target=self._read, name="mlflow-results", daemon=True).start()
        if settings is not None:
            self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Which store to open (the worker imports MLflow before it knows, so it can start first)."""
        self.settings = settings
        with self._lock:
            try:
                _send(self._proc.stdin, settings)
            except (OSError, ValueError):
                pass
        self._ready = self.submit("beyond_vibes.tracking:_warm")

    def ready(self) -> None:
        """Wait until the store is open; raises its ConfigError (an unreachable server...)."""
        self._ready.result()

    def submit(self, fn: str, *args, settings: Settings | None = None) -> Future:
        """Run fn(settings, *args) in the recording process; `settings` are the caller's (its experiment...),
        by default the ones the worker was configured with."""
        future: Future = Future()
        with self._lock:
            if self._dead:
                future.set_exception(ConfigError(self._dead))
                return future
            self._next += 1
            self._pending[self._next] = future
            try:
                _send(self._proc.stdin, (self._next, fn, settings or self.settings, args))
            except (OSError, ValueError):
                self._pending.pop(self._next)
                future.set_exception(ConfigError("the MLflow recording process is gone; see the lines above, then run again"))
        return future

    def call(self, fn: str, *args, settings: Settings | None = None):
        return self.submit(fn, *args, settings=settings).result()

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = _recv(self._proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                future = self._pending.pop(call_id, None)
            if future is not None:
                future.set_result(value) if ok else future.set_exception(value)
        with self._lock:
            self._dead = f"the MLflow recording process ended (exit {self._proc.poll()}); see the lines above, then run again"
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(ConfigError(self._dead))

    def close(self) -> None:
        """Let the worker finish what it was given, then end it."""
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


def _recv(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack(">Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _warm(settings: Settings) -> None:
    tracking_client(settings)


def _worker_main() -> None:
    """The recording process: calls from the harness on stdin, results on (a copy of) stdout."""
    import importlib
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    parent = os.getppid()

    def orphaned() -> None:  # the harness was killed: nothing left to record for (even mid-import)
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything MLflow prints goes to stderr, never into the results pipe
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    quiet_mlflow()
    _import_mlflow()  # before the harness even knows which store: it has other work meanwhile
    try:
        _recv(inp)  # the settings it was configured with; each call brings its caller's
    except EOFError:
        os._exit(0)
    while True:
        try:
            call_id, fn, settings, args = _recv(inp)
        except EOFError:
            # Every call was answered, so everything is committed: skip MLflow's exit hooks (~1 s).
            if os.environ.get("BV_WORKER_CPU"):
                import resource
                r = resource.getrusage(resource.RUSAGE_SELF)
                print(f"recording process cpu {r.ru_utime + r.ru_stime:.2f} s", file=sys.stderr)
            sys.stderr.flush()
            os._exit(0)
        try:
            module, name = fn.split(":")
            value, ok = getattr(importlib.import_module(module), name)(settings, *args), True
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
            value, ok = e, False
        try:
            _send(out, (call_id, ok, value))
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(out, (call_id, False, RuntimeError(f"{type(value).__name__}: {value}")))


_WORKERS: dict[str, TrackingWorker] = {}
_WORKERS_LOCK = threading.Lock()
_EARLY: TrackingWorker | None = None


def start_worker_early() -> None:
    """Start the recording process before settings are even read (a command that will record: simulate)."""
    global _EARLY
    with _WORKERS_LOCK:
        if _EARLY is None:
            _EARLY = TrackingWorker()
            atexit.register(_EARLY.close)


def _import_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - the SQLite store's own ~1 s of imports
    except Exception:  # noqa: BLE001 - the real use reports any problem
        pass


def tracking_worker(settings: Settings) -> TrackingWorker:
    """The recording process for this tracking store (one per store per harness process, started on first use)."""
    global _EARLY
    with _WORKERS_LOCK:
        if settings.tracking_uri not in _WORKERS:
            if _EARLY is not None:
                _WORKERS[settings.tracking_uri], _EARLY = _EARLY, None
                _WORKERS[settings.tracking_uri].configure(settings)
            else:
                _WORKERS[settings.tracking_uri] = TrackingWorker(settings)
                atexit.register(_WORKERS[settings.tracking_uri].close)
        worker = _WORKERS[settings.tracking_uri]
    if not settings.tracking_uri.startswith("sqlite:"):
        worker.ready()  # a remote server: find out now whether it answers, before anything starts
    return worker


# The runs table as it should open: outcome and the key numbers as columns (MLflow hides metrics and tags until
# picked one by one). Stored as an MLflow "shared view" on the experiment; `review_url` links to it.
REVIEW_VIEW = "beyond-vibes"
REVIEW_COLUMNS = [f"metrics.`{m}`" for m in (N.M_SUCCESS, N.M_CHECKS_PASSED, N.M_CHECKS_TOTAL, N.M_TURNS, N.M_TOOL_CALLS,
                                             N.M_LOOP_DETECTED, N.M_TTFT_S, N.M_GEN_TPS, N.M_WALL_S)] + \
    [f"tags.`{t}`" for t in (N.TAG_STATUS, N.TAG_REASON, N.TAG_MODEL, N.TAG_ADAPTER, N.TAG_QUANT, N.TAG_ENGINE,
                             N.TAG_TASK)]
QUICK_EVAL_COLUMNS = [f"metrics.`{m}`" for m in ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "n_items",
                                                 "drop_vs_baseline_points", "flips_lost", "flips_gained", "mcnemar_p",
                                                 "items_per_s", N.M_GEN_TPS)] + \
    [f"tags.`{t}`" for t in (N.TAG_SET, N.TAG_MODEL, N.TAG_ADAPTER, N.TAG_QUANT, N.TAG_ENGINE, "bv.decision",
                             "bv.ood_verdict")]


def _experiment(client, name: str, artifacts: str | None) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            # Beside a SQLite database, not in ./mlruns of whatever folder the command ran from.
            exp_id = client.create_experiment(name, artifact_location=artifacts)
        except MlflowException:  # another process created it between our look and our create
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
        else:
            exp = client.get_experiment(exp_id)
    view_tag = f"mlflow.sharedViewState.{REVIEW_VIEW}"
    if view_tag not in exp.tags:
        import json

        view = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False,
                "selectedColumns": QUICK_EVAL_COLUMNS if name.endswith("-quick-eval") else REVIEW_COLUMNS}
        client.set_experiment_tag(exp.experiment_id, view_tag, json.dumps(view))
    return exp.experiment_id


def review_url(base: str, experiment_id: str) -> str:
    """The experiment's runs table with the review columns shown (a base URI's credentials left out)."""
    return f"{safe_uri(base, drop=True).rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={REVIEW_VIEW}"


def require_sql_store(settings: Settings) -> None:
    """Evaluation datasets (and so curate/evaluate) need a SQL-backed store, not MLflow's file store."""
    uri = settings.tracking_uri
    if uri.startswith(("file:", "/", ".")) or "://" not in uri:
        raise ConfigError(f"MLFLOW_TRACKING_URI: {safe_uri(uri)} is a file store; evaluation datasets need a SQL store: "
                          "unset it (the default is SQLite) or use sqlite:///path/mlflow.db or a tracking server")


def pid_alive(pid: int, since_ms: int) -> bool:
    """Whether `pid` is a process that was already running at `since_ms` (not a reused pid)."""
    import psutil

    try:
        return psutil.Process(pid).create_time() * 1000 <= since_ms + 1000
    except psutil.Error:
        return False


def reap_orphaned_runs(client, experiment_ids: list[str]) -> list[str]:
    """Runs this host left RUNNING whose writing process is gone (kill -9, a power cut): marked KILLED with
    bv.status=error and a reason, so no run stays RUNNING forever. Returns their ids."""
    host = socket.gethostname()
    reaped = []
    try:
        runs = client.search_runs(experiment_ids, filter_string=f"attributes.status = 'RUNNING' and tags.`{N.TAG_HOST}` = '{host}'",
                                  max_results=200)
    except Exception:  # noqa: BLE001 - reaping is housekeeping; never fail a run over it
        return reaped
    for run in runs:
        pid = run.data.tags.get(N.TAG_PID, "")
        if not pid.isdigit() or pid_alive(int(pid), run.info.start_time) or int(pid) == os.getpid():
            continue
        try:
            client.set_tag(run.info.run_id, N.TAG_STATUS, N.STATUS_ERROR)
            client.set_tag(run.info.run_id, N.TAG_ERROR, f"the harness process {pid} on {host} died before the run ended (killed?)")
            client.set_terminated(run.info.run_id, status="KILLED", end_time=int(time.time() * 1000))
            reaped.append(run.info.run_id)
        except Exception:  # noqa: BLE001
            continue
    if reaped:
        log.warning("marked %d run(s) KILLED whose harness process had died: %s", len(reaped), ", ".join(reaped))
    return reaped


if __name__ == "__main__":
    _worker_main()
