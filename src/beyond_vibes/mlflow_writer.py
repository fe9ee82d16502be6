"""The one MLflow writer: an MlflowClient whose every written string passes the Redactor; reads pass through.

`tracking.tracking_client()` hands out this wrapper, so every command (simulate, serve, quick-eval, speed, judges,
curate, sweep) writes through it: names, tags, params, metric names, run names, trace spans, assessments, tables and
artifact files (text files are redacted into a temporary copy before upload; binary files go as they are).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from beyond_vibes.redact import MASK, Redactor

KEY_MASK = "REDACTED"  # MLflow names (params, metrics, tags) may not hold "*"


class RedactingClient:
    def __init__(self, client, redactor: Redactor):
        self.client = client  # the MlflowClient (reads, and anything not wrapped below)
        self.redact = redactor

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def _text(self, value: Any) -> Any:
        return self.redact.text(value) if isinstance(value, str) else value

    def _key(self, name: str) -> str:
        return self.redact.text(name).replace(MASK, KEY_MASK)

    def _tags(self, tags: dict | None) -> dict | None:
        return None if tags is None else {self._key(str(k)): self._text(v) for k, v in tags.items()}

    # Runs and experiments.
    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict | None = None,
                   run_name: str | None = None):
        return self.client.create_run(experiment_id, start_time=start_time, tags=self._tags(tags),
                                      run_name=self._text(run_name))

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self.client.update_run(run_id, status=status, name=self._text(name))

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        self.client.set_terminated(run_id, status=status, end_time=end_time)

    def set_tag(self, run_id: str, key: str, value: Any, **kw) -> Any:
        return self.client.set_tag(run_id, self._key(key), self._text(str(value)), **kw)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.client.set_experiment_tag(experiment_id, self._key(key), self._text(str(value)))

    def log_param(self, run_id: str, key: str, value: Any, **kw) -> Any:
        return self.client.log_param(run_id, self._key(key), self.redact.text(str(value)), **kw)

    def log_metric(self, run_id: str, key: str, value: float, *args, **kw) -> Any:
        return self.client.log_metric(run_id, self._key(key), value, *args, **kw)

    def log_batch(self, run_id: str, metrics=(), params=(), tags=(), **kw) -> Any:
        from mlflow.entities import Metric, Param, RunTag

        r, k = self.redact.text, self._key
        return self.client.log_batch(
            run_id, metrics=[Metric(k(m.key), m.value, m.timestamp, m.step) for m in metrics],
            params=[Param(k(p.key), r(str(p.value))) for p in params],
            tags=[RunTag(k(t.key), r(str(t.value))) for t in tags], **kw)

    # Artifacts.
    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, self.redact.text(text), artifact_file)

    def log_dict(self, run_id: str, dictionary: dict, artifact_file: str) -> None:
        self.client.log_dict(run_id, self.redact.data(dictionary), artifact_file)

    def log_table(self, run_id: str, data, artifact_file: str) -> None:
        if isinstance(data, dict):
            data = self.redact.data(data)
        else:  # a DataFrame: every text cell, whatever the column's dtype (object, or pandas' own str)
            data = data.copy()
            for column in data.columns:
                data[column] = data[column].map(lambda v: self.redact.data(v) if isinstance(v, (str, dict, list)) else v)
            data.columns = [self.redact.text(str(c)) for c in data.columns]
        self.client.log_table(run_id, data=data, artifact_file=artifact_file)

    def log_artifact(self, run_id: str, local_path, artifact_path: str | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="bv-redacted-") as tmp:
            copy = Path(tmp) / Path(local_path).name
            self._copy(Path(local_path), copy)
            self.client.log_artifact(run_id, str(copy), artifact_path)

    def log_artifacts(self, run_id: str, local_dir, artifact_path: str | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="bv-redacted-") as tmp:
            for f in Path(local_dir).rglob("*"):
                if f.is_file():
                    self._copy(f, Path(tmp) / f.relative_to(local_dir))
            self.client.log_artifacts(run_id, tmp, artifact_path)

    def _copy(self, src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        raw = src.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # binary (a plot, a model file): no text to redact
            shutil.copyfile(src, dest)
            return
        dest.write_text(self.redact.text(text), encoding="utf-8")

    # Traces and assessments.
    def start_trace(self, name: str, span_type: str = "UNKNOWN", inputs=None, attributes=None, tags=None, **kw):
        return self.client.start_trace(self.redact.text(name), span_type=span_type, inputs=self.redact.data(inputs),
                                       attributes=self.redact.data(attributes), tags=self._tags(tags), **kw)

    def start_span(self, name: str, trace_id: str, parent_id: str, span_type: str = "UNKNOWN", inputs=None,
                   attributes=None, **kw):
        return self.client.start_span(self.redact.text(name), trace_id=trace_id, parent_id=parent_id, span_type=span_type,
                                      inputs=self.redact.data(inputs), attributes=self.redact.data(attributes), **kw)

    def end_span(self, trace_id: str, span_id: str, outputs=None, attributes=None, status="OK", **kw):
        return self.client.end_span(trace_id, span_id, outputs=self.redact.data(outputs),
                                    attributes=self.redact.data(attributes), status=self._status(status), **kw)

    def end_trace(self, trace_id: str, outputs=None, attributes=None, status="OK", **kw):
        return self.client.end_trace(trace_id, outputs=self.redact.data(outputs), attributes=self.redact.data(attributes),
                                     status=self._status(status), **kw)

    def set_trace_tag(self, trace_id: str, key: str, value: str):
        return self.client.set_trace_tag(trace_id, self._key(key), self._text(value))

    def _status(self, status):
        from mlflow.entities import SpanStatus

        if isinstance(status, SpanStatus) and status.description:
            return SpanStatus(status.status_code, self.redact.text(status.description))
        return status

    def log_feedback(self, *, trace_id: str, name: str = "feedback", value=None, source=None, error=None,
                     rationale: str | None = None, metadata: dict | None = None, span_id: str | None = None):
        """mlflow.log_feedback (the store is the one tracking.tracking_client opened), redacted."""
        import mlflow
        from mlflow.entities import AssessmentError, AssessmentSource

        if source is not None and source.source_id:
            source = AssessmentSource(source_type=source.source_type, source_id=self.redact.text(source.source_id))
        if isinstance(error, AssessmentError) and error.error_message:
            error = AssessmentError(error_code=error.error_code, error_message=self.redact.text(error.error_message))
        elif isinstance(error, Exception):
            error = AssessmentError(error_code=type(error).__name__, error_message=self.redact.text(str(error)))
        return mlflow.log_feedback(trace_id=trace_id, name=self._key(name), value=self.redact.data(value),
                                   source=source, error=error, rationale=self._text(rationale),
                                   metadata=self.redact.data(metadata), span_id=span_id)
