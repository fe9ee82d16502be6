"""`judges label`: a terminal labelling session. A record is shown readably, then one criterion at a time: a score
on its scale and a rationale (required: a label without a why cannot be reviewed). Each answer is written at once as
an MLflow HUMAN assessment on the run's trace, source id = the labeller, so quitting loses nothing and the next
session resumes where this one stopped (criteria this labeller already scored are not asked again). `judges
compile` reads these assessments back as labels with source `human`.

Keys at the score prompt: a number on the scale, `s` skip this criterion, `n` next record, `q` quit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from beyond_vibes.judges.rubric import Criterion, Rubric

VIA = "beyond-vibes judges label"


@dataclass
class LabelSession:
    archetype: str
    labeller: str
    records: int = 0  # records offered
    written: int = 0  # assessments written this session
    done_before: int = 0  # records this labeller had already finished
    quit: bool = False
    by_record: dict[str, int] = field(default_factory=dict)  # trace id -> assessments written


def records_for(settings, rubric: Rubric, dataset: str | None, experiment: str | None) -> list[dict]:
    """The records to label: a curated dataset's (this archetype's), else every simulation of the archetype."""
    from beyond_vibes import names as N
    from beyond_vibes.curate import dataset_records, record_from_trace
    from beyond_vibes.tracking import tracking_client

    arch = rubric.archetype.value
    if dataset:
        return [r for r in dataset_records(settings, dataset) if r.get("archetype") == arch and r.get("trace_id")]
    import mlflow

    client, exp_id = tracking_client(settings, experiment)
    runs = client.search_runs([exp_id], filter_string=f"tags.`{N.TAG_ARCHETYPE}` = '{arch}' and "
                                                      f"tags.`{N.TAG_KIND}` = 'simulation'",
                              order_by=["attributes.start_time ASC"], max_results=5000)
    out = []
    for run in runs:
        if trace_id := run.data.tags.get(N.TAG_TRACE_ID):
            out.append(record_from_trace(mlflow.get_trace(trace_id), run.data.metrics, run.info.run_id, run.data.tags))
    return out


def scored_by(trace, labeller: str) -> set[str]:
    from beyond_vibes.judges.evaluate import is_score

    return {a.name for a in trace.info.assessments or [] if a.source.source_type == "HUMAN"
            and a.source.source_id == labeller and is_score(a)}


def _prompt_text(c: Criterion) -> str:
    scale = "0 = no, 1 = yes" if c.kind == "bool" else f"{c.min}-{c.max}"
    worse = ", higher is worse" if not c.higher_is_better else ""
    anchors = "\n".join(f"    {k}: {v}" for k, v in sorted(c.anchors.items()))
    return f"\n[{c.name}] {c.question} ({scale}{worse})\n{anchors}"


def label_session(settings, archetype: str, labeller: str, dataset: str | None = None, experiment: str | None = None,
                  ask: Callable[[str], str] = input, say: Callable[[str], None] = print) -> LabelSession:
    import mlflow
    from mlflow.entities import AssessmentSource

    from beyond_vibes.curate import render
    from beyond_vibes.judges.rubric import load_rubric
    from beyond_vibes.tracking import tracking_client

    rubric = load_rubric(archetype, settings.judges_dir)
    client, _ = tracking_client(settings, experiment)
    records = records_for(settings, rubric, dataset, experiment)
    out = LabelSession(archetype, labeller, records=len(records))
    source = AssessmentSource(source_type="HUMAN", source_id=labeller)
    say(f"{len(records)} {archetype} record(s); labelling as {labeller!r}. Scores are saved as you go: q quits, "
        "the next session resumes.")
    for i, record in enumerate(records, start=1):
        done = scored_by(mlflow.get_trace(record["trace_id"]), labeller)
        todo = [c for c in rubric.criteria if c.name not in done]
        if not todo:
            out.done_before += 1
            continue
        say(f"\n===== record {i}/{len(records)} · {record.get('task')} · {record.get('model')} · run "
            f"{record.get('run_id')} =====\n{render(record)}")
        for c in todo:
            say(_prompt_text(c))
            while True:
                answer = ask(f"{c.name} score ({c.min}-{c.max}), s skip, n next record, q quit: ").strip().lower()
                if answer in ("s", "n", "q"):
                    break
                if answer.lstrip("-").isdigit() and c.min <= int(answer) <= c.max:
                    break
                say(f"  {answer!r} is not on the scale {c.min}-{c.max}; type a number, s, n or q")
            if answer == "q":
                out.quit = True
                return out
            if answer == "n":
                break
            if answer == "s":
                continue
            why = ""
            while not why:
                why = ask("  why (one line; a label needs its reason): ").strip()
            client.log_feedback(trace_id=record["trace_id"], name=c.name, value=int(answer), rationale=why,
                                source=source, metadata={"via": VIA})
            out.written += 1
            out.by_record[record["trace_id"]] = out.by_record.get(record["trace_id"], 0) + 1
    return out
