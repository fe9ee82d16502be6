"""The MLflow tracking store: a local SQLite file by default, MLFLOW_TRACKING_URI for a shared server."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.locks import file_lock
from beyond_vibes.settings import Settings

log = logging.getLogger("beyond_vibes")
_READY: dict[tuple[str, str], tuple[object, str]] = {}


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
    """(MlflowClient, experiment id). A fresh SQLite store is created under a file lock, because several
    processes creating its schema at once race in MLflow's migrations; the experiment likewise."""
    uri = settings.tracking_uri
    name = experiment or settings.mlflow_experiment
    if (uri, name) in _READY:
        return _READY[(uri, name)]
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
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
        raise ConfigError(f"MLFLOW_TRACKING_URI: cannot use the tracking store {uri}: {first}; start the server or fix the URI") from None
    _READY[(uri, name)] = (client, exp_id)
    return client, exp_id


def _experiment(client, name: str, artifacts: str | None) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp:
        return exp.experiment_id
    try:
        # Beside a SQLite database, not in ./mlruns of whatever folder the command ran from.
        return client.create_experiment(name, artifact_location=artifacts)
    except MlflowException:  # another process created it between our look and our create
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


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
