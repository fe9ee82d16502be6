"""The MLflow tracking store: a local SQLite file by default, MLFLOW_TRACKING_URI for a shared server."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from beyond_vibes.settings import Settings


def tracking_client(settings: Settings, experiment: str | None = None) -> tuple[MlflowClient, str]:
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # Alembic logs every migration of a fresh SQLite store at INFO; users need none of it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    # MLflow prices LLM spans through litellm, which would fetch its price map from the internet.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    name = experiment or settings.mlflow_experiment
    exp = client.get_experiment_by_name(name)
    if exp:
        return client, exp.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):
        # Beside the database, not in ./mlruns of whatever folder the command ran from.
        artifacts = (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return client, client.create_experiment(name, artifact_location=artifacts)
