"""A served model: one model file on one runtime and engine config, loaded once and shared by many runs.

`serve_model` starts the server (llama-server process, container, or nothing for an API), records it once in
MLflow (an experiment of its own, `<experiment>-servers`: load time, build, engine args, peak memory, the
whole log) and yields a `ServedModel`. Simulations, quick evals and judges each open their own recording
proxy on it; every run it served carries `bv.server_id` (= the server's MLflow run id).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes import names as N
from beyond_vibes.catalog import EngineConfig, Model
from beyond_vibes.procs import deferred_signals
from beyond_vibes.redact import Redactor
from beyond_vibes.runtime import Server, get_runtime
from beyond_vibes.settings import Settings
from beyond_vibes.store import ResolvedModel, sha256_file
from beyond_vibes.store.resolve import resolve_model


@dataclass
class ServedModel:
    model: Model
    quant: str | None
    resolved: ResolvedModel
    engine: EngineConfig
    server: Server
    server_id: str | None  # the server's MLflow run id (None for an API: nothing was started)

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
        t = self.resolved.chat_template
        return sha256_file(t) if t else None


def runtime_name(model: Model) -> str:
    return "process" if model.is_local else "api"


def preflight(model: Model, quant: str | None, settings: Settings, models_dir: Path | None = None,
              resolved: ResolvedModel | None = None) -> ResolvedModel:
    """Everything about the model that bad input can break, checked before anything starts or is recorded."""
    resolved = resolved or resolve_model(model, quant, settings, base_dir=models_dir)
    get_runtime(runtime_name(model), settings).preflight(resolved)
    return resolved


def owner_tags() -> dict[str, str]:
    """Who is writing this run: the next start on this host marks it KILLED if that process is gone."""
    return {N.TAG_HOST: socket.gethostname(), N.TAG_PID: str(os.getpid())}


@contextmanager
def serve_model(model: Model, quant: str | None, settings: Settings, engine: EngineConfig | None = None,
                models_dir: Path | None = None, resolved: ResolvedModel | None = None,
                experiment: str | None = None) -> Iterator[ServedModel]:
    engine = engine or model.engine
    resolved = preflight(model, quant, settings, models_dir, resolved)
    runtime = get_runtime(runtime_name(model), settings)
    with runtime.serve(resolved, engine) as server:
        served = ServedModel(model, quant, resolved, engine, server, None)
        if runtime.name == "api":
            yield served
            return
        from beyond_vibes.tracking import tracking_client

        client, exp_id = tracking_client(settings, f"{experiment or settings.mlflow_experiment}-servers")
        redact = Redactor(settings.secret_values())
        started = time.time() - (server.load_s or 0.0)
        tags = {N.TAG_KIND: "server", N.TAG_MODEL: model.name, N.TAG_FAMILY: model.family, N.TAG_QUANT: quant or "",
                N.TAG_ENGINE: server.engine, N.TAG_RUNTIME: server.runtime, **owner_tags()}
        run = client.create_run(exp_id, start_time=int(started * 1000), tags=tags,
                                run_name=f"{model.name}:{quant} · {server.engine} · {server.runtime}")
        served.server_id = run.info.run_id
        status = "FINISHED"
        try:
            _log_server_params(client, served, redact)
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
                _finish_server_run(client, served, status, redact)


def _log_server_params(client, served: ServedModel, redact: Redactor) -> None:
    from mlflow.entities import Metric, Param

    s, r = served.server, served.resolved
    params = {N.PARAM_LLAMA_BUILD: s.build, N.PARAM_ENGINE_ARGS: " ".join(s.engine_args),
              N.PARAM_ENGINE_CONFIG: served.engine.name, N.PARAM_MODEL_SHA256: r.sha256, N.PARAM_MODEL_SOURCE: r.source,
              N.PARAM_MODEL_FILE: r.path.name if r.path else None, N.PARAM_CHAT_TEMPLATE_SHA256: served.chat_template_sha256,
              N.PARAM_PARALLEL: s.parallel}
    metrics = [Metric(N.M_LOAD_S, round(s.load_s, 3), int(time.time() * 1000), 0)] if s.load_s is not None else []
    client.log_batch(served.server_id, metrics=metrics,
                     params=[Param(k, redact.text(str(v))[:6000]) for k, v in params.items() if v is not None])


def _finish_server_run(client, served: ServedModel, status: str, redact: Redactor) -> None:
    """Peak memory, the whole log and the end state; each part attempted, the run always ended."""
    from mlflow.entities import Metric

    s = served.server
    now = int(time.time() * 1000)
    try:
        metrics = []
        if s.memory is not None:
            for name, value in ((N.M_PEAK_RSS_MB, s.memory.total.peak_rss_mb), (N.M_PEAK_VRAM_MB, s.memory.total.peak_vram_mb)):
                if value is not None:
                    metrics.append(Metric(name, round(value, 1), now, 0))
        tags = [(N.TAG_STATUS, "error" if s.failure() else "ok")]
        if s.failure():
            tags.append((N.TAG_ERROR, s.failure()))
        for k, v in tags:
            client.set_tag(served.server_id, k, v)
        client.log_batch(served.server_id, metrics=metrics)
        log = s.log_text()
        if log:
            with tempfile.TemporaryDirectory(prefix="bv-server-") as tmp:
                path = Path(tmp) / N.A_SERVER_LOG
                path.write_text(redact.text(log))
                client.log_artifact(served.server_id, str(path))
    except Exception:  # noqa: BLE001 - a recording problem must not hide the run's own outcome
        pass
    finally:
        try:
            client.set_terminated(served.server_id, status=status)
        except Exception:  # noqa: BLE001
            pass
