"""A served model: one model file on one runtime and engine config, loaded once and shared by many runs.

`serve_model` starts the server (llama-server process, container, or nothing for an API), records it once in
MLflow (an experiment of its own, `<experiment>-servers`: load time, build, engine args, peak memory, the
whole log) and yields a `ServedModel`. Simulations, quick evals and judges each open their own recording
proxy on it; every run it served carries `bv.server_id` (= the server's MLflow run id).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.catalog import EngineConfig, EngineSpec, Model
from beyond_vibes.procs import deferred_signals
from beyond_vibes.redact import Redactor
from beyond_vibes.runtime import Server, get_runtime
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel, sha256_file
from beyond_vibes.store.resolve import resolve_model

log = logging.getLogger("beyond_vibes")


class Occupancy:
    """Which runs use a served model when: a machine's hourly price is shared among the runs that use it at the same
    time (two runs on two slots each pay half of the hours they overlap), never charged in full to each."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events: list[tuple[float, int]] = []  # (time, +1 a run starts | -1 it ends)

    def enter(self, t: float) -> None:
        with self._lock:
            self._events.append((t, 1))

    def leave(self, t: float) -> None:
        with self._lock:
            self._events.append((t, -1))

    def share_s(self, start: float, end: float) -> float:
        """Seconds of the machine this run is charged for over [start, end]: each instant divided by the runs
        active then (itself included; a run that started earlier and is still going counts until now)."""
        with self._lock:
            events = sorted(self._events)
        active, t, total = 0, start, 0.0
        for when, step in events:
            if when > end:
                break
            if when > start and active > 0:
                total += (when - max(t, start)) / active
            if when >= start:
                t = when
            active += step
        if active > 0:
            total += (end - max(t, start)) / active
        return total


@dataclass
class ServedModel:
    model: Model
    quant: str | None
    resolved: ResolvedModel
    engine: EngineConfig
    server: Server
    server_id: str | None = None  # `bv.server_id` of its record and of every run it served (None: an API)
    occupancy: Occupancy = field(default_factory=Occupancy)  # shared by copies (dataclasses.replace keeps it)

    @property
    def runtime(self) -> str:
        return self.server.runtime

    @property
    def engine_name(self) -> str:
        return self.server.engine

    @property
    def context_window(self) -> int:
        return self.engine.ctx if self.model.is_local else self.model.context_window

    @property
    def chat_template_sha256(self) -> str | None:
        return self.resolved.chat_template_sha256


def runtime_name(model: Model, engine: EngineConfig | None = None) -> str:
    if not model.is_local:
        return "api"
    return (engine or model.engine).runtime


def preflight(model: Model, quant: str | None, settings: Settings, models_dir: Path | None = None,
              resolved: ResolvedModel | None = None, engine: EngineConfig | None = None,
              spec: EngineSpec | None = None) -> ResolvedModel:
    """Everything about the model and its engine that bad input can break (the file, the binary or image, the
    GPU, a key), checked before anything starts or is recorded."""
    engine = engine or model.engine
    resolved = resolved or resolve_model(model, quant, settings, base_dir=models_dir)
    get_runtime(runtime_name(model, engine), settings).preflight(resolved, engine, spec or default_spec(engine))
    return resolved


def default_spec(engine: EngineConfig) -> EngineSpec:
    from beyond_vibes.catalog import DEFAULT_IMAGES

    return EngineSpec(image=DEFAULT_IMAGES[engine.engine])


def owner_tags() -> dict[str, str]:
    """Who is writing this run: the next start on this host marks it KILLED if that process is gone."""
    return {N.TAG_HOST: socket.gethostname(), N.TAG_PID: str(os.getpid())}


@contextmanager
def serve_model(model: Model, quant: str | None, settings: Settings, engine: EngineConfig | None = None,
                models_dir: Path | None = None, resolved: ResolvedModel | None = None,
                experiment: str | None = None, spec: EngineSpec | None = None) -> Iterator[ServedModel]:
    """`engine` (default: the model's own) says how to run llama-server; `spec` where it comes from (a binary for
    the process runtime, an image for containers; default: setup.sh's build, the official images)."""
    engine = engine or model.engine
    spec = spec or default_spec(engine)
    resolved = preflight(model, quant, settings, models_dir, resolved, engine, spec)
    runtime = get_runtime(runtime_name(model, engine), settings)
    if runtime.name != "api":
        from beyond_vibes.tracking import tracking_worker

        tracking_worker(settings)  # start the recording process now: it opens the store while the model loads
    with runtime.serve(resolved, engine, spec) as server:
        served = ServedModel(model, quant, resolved, engine, server)
        if runtime.name == "api":
            yield served
            return
        from beyond_vibes.tracking import tracking_worker

        tracking = tracking_worker(settings)  # the recording process opens the store meanwhile
        served.server_id = uuid.uuid4().hex
        record_settings = settings.model_copy(update={"mlflow_experiment": f"{experiment or settings.mlflow_experiment}-servers"})
        redactor = Redactor(settings.secret_values())
        tracking.submit("beyond_vibes.serving:start_server_run", redactor, served.server_id, server_info(served),
                        settings=record_settings)
        status = "FINISHED"
        try:
            yield served
            if server.failure():
                status = "FAILED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            with deferred_signals():
                memory = server.memory.total if server.memory is not None else None
                tracking.call("beyond_vibes.serving:finish_server_run", redactor, served.server_id, status,
                              {N.M_PEAK_RSS_MB: memory.peak_rss_mb if memory else None,
                               N.M_PEAK_VRAM_MB: memory.peak_vram_mb if memory else None},
                              server.failure(), server.log_text(), settings=record_settings)


def server_info(served: ServedModel) -> dict:
    """What is recorded about a server once, as plain data."""
    from beyond_vibes.identity import adapter_params, adapter_tags

    s, r, m = served.server, served.resolved, served.model
    return {
        "tags": {N.TAG_KIND: "server", N.TAG_SERVER_ID: served.server_id, N.TAG_MODEL: m.name, N.TAG_FAMILY: m.family,
                 N.TAG_QUANT: served.quant or "", N.TAG_ENGINE: s.engine, N.TAG_RUNTIME: s.runtime, **owner_tags(),
                 **adapter_tags(r)},
        "params": {N.PARAM_LLAMA_BUILD: s.build, N.PARAM_ENGINE_ARGS: " ".join(s.engine_args), N.PARAM_IMAGE: s.image,
                   N.PARAM_ENGINE_FLAGS: json.dumps(served.engine.flags(), sort_keys=True),
                   N.PARAM_ENGINE_CONFIG: served.engine.name, N.PARAM_MODEL_SHA256: r.sha256, N.PARAM_MODEL_SOURCE: r.source,
                   N.PARAM_MODEL_FILE: r.path.name if r.path else None,
                   N.PARAM_CHAT_TEMPLATE_SHA256: served.chat_template_sha256, N.PARAM_PARALLEL: s.parallel,
                   **adapter_params(r)},
        "name": f"{m.label}:{served.quant} · {s.engine} · {s.runtime}",
        "started_at": time.time() - (s.load_s or 0.0),
        "load_s": s.load_s,
    }


# Run in the recording process (tracking.TrackingWorker): plain, picklable arguments.
_SERVER_RUNS: dict[str, str] = {}  # server_id -> its MLflow run id


def start_server_run(settings: Settings, redact: Redactor, server_id: str, info: dict) -> str:
    from mlflow.entities import Metric, Param

    from beyond_vibes.tracking import reap_orphaned_runs, tracking_client

    client, exp_id = tracking_client(settings)
    reap_orphaned_runs(client, [exp_id])
    run = client.create_run(exp_id, start_time=int(info["started_at"] * 1000), tags=info["tags"], run_name=info["name"])
    metrics = [Metric(N.M_LOAD_S, round(info["load_s"], 3), int(time.time() * 1000), 0)] if info["load_s"] is not None else []
    client.log_batch(run.info.run_id, metrics=metrics,
                     params=[Param(k, redact.text(str(v))[:6000]) for k, v in info["params"].items() if v is not None])
    _SERVER_RUNS[server_id] = run.info.run_id
    return run.info.run_id


def finish_server_run(settings: Settings, redact: Redactor, server_id: str, status: str, peaks: dict,
                      failure: str | None, log_text: str) -> None:
    """Peak memory, the whole log and the end state; each part attempted, the run always ended."""
    from mlflow.entities import Metric

    from beyond_vibes.tracking import tracking_client

    client, _ = tracking_client(settings)
    run_id = _SERVER_RUNS.pop(server_id, None)
    if run_id is None:
        log.warning("server record %s was never created; nothing to end", server_id)
        return
    now = int(time.time() * 1000)
    try:
        client.log_batch(run_id, metrics=[Metric(k, round(v, 1), now, 0) for k, v in peaks.items() if v is not None])
        client.set_tag(run_id, N.TAG_STATUS, "error" if failure else "ok")
        if failure:
            client.set_tag(run_id, N.TAG_ERROR, failure)
        if log_text:
            with tempfile.TemporaryDirectory(prefix="bv-server-") as tmp:
                path = Path(tmp) / N.A_SERVER_LOG
                path.write_text(redact.text(log_text))
                client.log_artifact(run_id, str(path))
    except Exception as e:  # noqa: BLE001 - a recording problem must not hide the run's own outcome
        log.warning("server record: could not record %s: %s", type(e).__name__, e)
    finally:
        try:
            client.set_terminated(run_id, status=status, end_time=now)
        except Exception as e:  # noqa: BLE001
            log.warning("server record: could not end the run: %s: %s", type(e).__name__, e)
