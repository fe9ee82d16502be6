"""judges/labels/<archetype>.jsonl: scores per criterion for self-contained records, each saying who wrote it
(`source`: `human`, or `reviewer:<who>` for a machine-written reference label), plus the human assessments made in
the MLflow UI or `judges label` (an assessment named after a criterion, source HUMAN). Nothing machine-written is
ever called human: agreement is reported per source."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes.configfile import jsonl_objects
from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.rubric import Rubric


HUMAN = "human"
SOURCE_HELP = 'source: "human" (a person scored it) or "reviewer:<who>" (written by a model or a script)'


@dataclass
class Label:
    id: str
    record: dict  # a curated record (beyond_vibes.curate.record_from_trace)
    scores: dict[str, int]  # criterion -> value on its scale (a label may leave criteria out)
    rationales: dict[str, str] = field(default_factory=dict)
    labeller: str = ""
    labelled_at: str = ""
    provenance: str = ""  # where the record came from and how the label was made
    source: str = HUMAN  # who wrote it: "human", or "reviewer:<who>" (a model or script: a reference label)


def check_source(where: str, value) -> str:
    if value == HUMAN or (isinstance(value, str) and value.startswith("reviewer:") and value[len("reviewer:"):].strip()):
        return value
    got = "missing" if value is None else repr(value)
    raise ConfigError(f"{where}: source: {got}; say who wrote the label: {SOURCE_HELP}")


def labels_path(judges_dir: Path, archetype: str) -> Path:
    return Path(judges_dir) / "labels" / f"{archetype}.jsonl"


def check_scores(where: str, scores: dict, rubric: Rubric) -> dict[str, int]:
    out = {}
    for name, value in scores.items():
        criterion = rubric.criterion(name)
        if criterion is None:
            known = ", ".join(c.name for c in rubric.criteria)
            raise ConfigError(f"{where}: scores.{name}: not a criterion of the {rubric.archetype.value} rubric ({known})")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int) or not criterion.min <= value <= criterion.max:
            raise ConfigError(f"{where}: scores.{name}: {value!r} is outside the scale {criterion.min}-{criterion.max}")
        out[name] = value
    if not out:
        raise ConfigError(f"{where}: scores: no score given")
    return out


def load_labels(path: Path, rubric: Rubric) -> list[Label]:
    """Every line checked: a malformed line, an unknown criterion or a value off the scale is a one-line error."""
    if not path.exists():
        return []
    labels, seen = [], set()
    for where, data in jsonl_objects(path):
        if not isinstance(data.get("record"), dict) or not isinstance(data.get("scores"), dict):
            raise ConfigError(f"{where}: expected an object with id, record (object) and scores (object)")
        label_id = str(data.get("id") or f"line-{where.rsplit(':', 1)[1]}")
        if label_id in seen:
            raise ConfigError(f"{where}: id: {label_id!r} is used twice")
        seen.add(label_id)
        labels.append(Label(id=label_id, record=data["record"], scores=check_scores(where, data["scores"], rubric),
                            rationales={k: str(v) for k, v in (data.get("rationales") or {}).items()},
                            labeller=str(data.get("labeller", "")), labelled_at=str(data.get("labelled_at", "")),
                            provenance=str(data.get("provenance", "")), source=check_source(where, data.get("source"))))
    return labels


def human_labels(settings, rubric: Rubric, experiment: str | None = None) -> list[Label]:
    """Scores a person gave in the MLflow UI or `judges label`: HUMAN feedback on a simulation trace of this archetype, named after
    a criterion. The record is rebuilt from the trace, as `curate` does."""
    from beyond_vibes import names as N
    from beyond_vibes.curate import record_from_trace
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings, experiment)
    import mlflow

    runs = client.search_runs([exp_id], filter_string=f"tags.`{N.TAG_ARCHETYPE}` = '{rubric.archetype.value}' and "
                                                      f"tags.`{N.TAG_KIND}` = 'simulation'", max_results=5000)
    labels = []
    for run in runs:
        trace_id = run.data.tags.get(N.TAG_TRACE_ID)
        if not trace_id:
            continue
        trace = mlflow.get_trace(trace_id)
        human = [a for a in trace.info.assessments or []
                 if a.source.source_type == "HUMAN" and rubric.criterion(a.name) is not None and a.feedback is not None]
        if not human:
            continue
        latest = {}
        for a in sorted(human, key=lambda a: a.last_update_time_ms or 0):
            latest[a.name] = a
        scores = check_scores(f"trace {trace_id}", {k: a.feedback.value for k, a in latest.items()}, rubric)
        labels.append(Label(id=f"mlflow:{trace_id}", record=record_from_trace(trace, run.data.metrics, run.info.run_id, run.data.tags),
                            scores=scores, rationales={k: a.rationale or "" for k, a in latest.items()},
                            labeller=",".join(sorted({a.source.source_id or "" for a in latest.values()})),
                            provenance=f"human assessment in MLflow on trace {trace_id} (run {run.info.run_id})",
                            source=HUMAN))
    return labels


def labels_sha256(labels: list[Label]) -> str:
    """Changes when any score, rationale or record changes (file labels and MLflow labels alike)."""
    digest = hashlib.sha256()
    for label in sorted(labels, key=lambda lb: lb.id):
        digest.update(json.dumps([label.id, label.scores, label.rationales, label.record], sort_keys=True).encode())
    return digest.hexdigest()
