"""Score a curated dataset with its archetypes' compiled judges; the scores land on the traces (MLflow feedback
assessments whose source names the judge and its version) and their aggregates on the runs.

A (trace, judge version) pair already scored is skipped, so evaluating again costs no LM call. Records are
scored concurrently up to the judge server's parallel slots. An answer that cannot be read is retried once,
then recorded as an error assessment, never as a score.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

from beyond_vibes.curate import dataset_records, render
from beyond_vibes.errors import ConfigError
from beyond_vibes import names as N
from beyond_vibes.judges.aligned import AlignedScores, load_aligned, pending_aligned, score_aligned
from beyond_vibes.judges.compile import compiled_paths, judge_inputs, judge_state, judge_trust_of
from beyond_vibes.judges.guidelines import KIND as GKIND, PREFIX as GPREFIX, guideline_source_id, judge_guidelines
from beyond_vibes.judges.program import judge_lm, judge_lm_identity, make_program, quiet_dspy, scores_of


def judge_source_id(meta: dict) -> str:
    return f"bv-judge/{meta['archetype']}@{meta['version']}"


def load_judge(settings, archetype: str, experiment: str | None = None):
    """(rubric, program, meta) of a fresh compiled judge; a stale or missing one is refused with the fix."""
    inputs = judge_inputs(settings, archetype, experiment=experiment)
    state = judge_state(settings, archetype, inputs, judge_lm_identity(settings), experiment)
    if state.state != "fresh":
        raise ConfigError(f"judge {archetype} is {state.state} ({state.why}); run `beyond-vibes judges compile "
                          f"--archetype {archetype}` first")
    quiet_dspy()
    program = make_program(inputs.rubric)
    program.load(str(compiled_paths(settings.judges_dir, archetype)[0]))
    return inputs.rubric, program, state.meta


@dataclass
class ArchetypeScores:
    archetype: str
    version: str
    agreement_kappa: float | None
    agreement_exact: float | None
    scored: int = 0
    skipped: int = 0
    errors: int = 0
    self_judged: int = 0  # records of the judge LM's own model: scored, marked, never trusted
    trust: str = ""
    means: dict[str, float] = field(default_factory=dict)


@dataclass
class GuidelineScores:
    """MLflow Guidelines verdicts: one per (record, task guideline)."""

    judge_lm: str = ""
    verdicts: int = 0
    yes: int = 0
    errors: int = 0
    skipped: int = 0  # already judged by this judge LM
    self_judged: int = 0


KINDS = ("dspy", "guidelines", "aligned")
DEFAULT_KINDS = ("dspy", "guidelines")  # aligned make_judge judges only when asked: `judges align` makes them


@dataclass
class EvaluateResult:
    dataset: str
    by_archetype: dict[str, ArchetypeScores]
    requests: int
    seconds: float
    guidelines: GuidelineScores = field(default_factory=GuidelineScores)
    aligned: dict = field(default_factory=dict)  # archetype -> AlignedScores

    @property
    def scored(self) -> int:
        return sum(a.scored for a in self.by_archetype.values())


def already_scored(trace, source_id: str) -> bool:
    """A score from this judge version is on the trace. An error assessment is not a score: evaluating again
    retries it."""
    return any(a.source.source_id == source_id and is_score(a) for a in trace.info.assessments or [])


def is_score(a) -> bool:
    """A feedback assessment that holds a value (an error assessment is a failed attempt, not a score)."""
    return a.feedback is not None and a.feedback.error is None and a.feedback.value is not None


def self_judged(judge_lm_name: str, record_model: str) -> bool:
    """The judge LM is the model whose run it scores (any quant of it, or an adapter on it: `model+adapter`): its
    scores are marked, never trusted."""
    judged = (record_model or "").split(":", 1)[0].split("+", 1)[0]
    name = judge_lm_name.split(":", 1)[1] if judge_lm_name.startswith(("local:", "api:")) else judge_lm_name
    return bool(judged) and name.split(":", 1)[0].split("@", 1)[0] == judged


def evaluate(settings, dataset: str, experiment: str | None = None,
             kinds: tuple[str, ...] = DEFAULT_KINDS) -> EvaluateResult:
    """`kinds`: dspy (the compiled judges, per archetype), guidelines (MLflow's Guidelines scorer, per task
    guideline) and/or aligned (MLflow make_judge judges aligned with `judges align`, per criterion)."""
    if bad := [k for k in kinds if k not in KINDS]:
        raise ConfigError(f"--kind: unknown judge kind {bad[0]!r}; choose from {', '.join(KINDS)}")
    quiet_dspy()
    import dspy
    import mlflow

    from beyond_vibes.tracking import tracking_client

    client, _ = tracking_client(settings, experiment)
    records = dataset_records(settings, dataset)
    if not records:
        raise ConfigError(f"--dataset: {dataset!r} has no records; add runs with `beyond-vibes curate --dataset {dataset}`")
    by_arch: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_arch[r.get("archetype") or "?"].append(r)
    # refuses stale judges before any work
    judges = {a: load_judge(settings, a, experiment) for a in sorted(by_arch)} if "dspy" in kinds else {}
    aligned = {a: load_aligned(settings, a, experiment) for a in sorted(by_arch)} if "aligned" in kinds else {}
    aligned_scores = {a: AlignedScores(criteria=sorted(j.data["criteria"])) for a, j in aligned.items()}
    aligned_todo: dict[str, list] = defaultdict(list)
    for a, j in aligned.items():
        for r in by_arch[a]:
            crits = pending_aligned(mlflow.get_trace(r["trace_id"]), a, j)
            aligned_scores[a].skipped += len(j.data["criteria"]) - len(crits)
            if crits:
                aligned_todo[a].append((r, crits))
    started, results, requests = time.time(), {}, 0
    todo = {}
    guides, guide_todo = GuidelineScores(), []
    if "guidelines" in kinds:
        guides.judge_lm = judge_lm_identity(settings)[0]
        gsource = guideline_source_id(guides.judge_lm)
        for r in records:
            keys = set(r.get("guidelines") or {})
            done = {a.name[len(GPREFIX):] for a in mlflow.get_trace(r["trace_id"]).info.assessments or []
                    if a.source.source_id == gsource and is_score(a)}
            guides.skipped += len(keys & done)
            if keys - done:
                guide_todo.append((r, done))
    for archetype, recs in by_arch.items():
        if archetype not in judges:
            continue
        rubric, program, meta = judges[archetype]
        source_id = judge_source_id(meta)
        res = ArchetypeScores(archetype, meta["version"], meta["agreement"]["compiled"]["kappa"],
                              meta["agreement"]["compiled"]["exact"], trust=judge_trust_of(meta).line)
        pending = []
        for r in recs:
            if already_scored(mlflow.get_trace(r["trace_id"]), source_id):
                res.skipped += 1
            else:
                pending.append(r)
        results[archetype], todo[archetype] = res, pending
    if not any(todo.values()) and not guide_todo and not aligned_todo:
        return EvaluateResult(dataset, results, 0, time.time() - started, guides, aligned_scores)
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.serving import serve_model

    with ExitStack() as stack:
        served = None
        if not settings.judge_base_url:  # one local judge server for every archetype's judge
            catalog = load_catalog(settings.models_file)
            model, quant = catalog.choose(catalog.judge_model(settings.judge_model))
            served = stack.enter_context(serve_model(model, quant, settings, models_dir=catalog.path.resolve().parent,
                                                     experiment=experiment))
        for archetype, pending in todo.items():
            if not pending:
                continue
            rubric, program, meta = judges[archetype]
            judge = stack.enter_context(judge_lm(settings, rubric, served=served, experiment=experiment))

            def score(record, program=program, rubric=rubric, judge=judge):
                last = None
                for _ in range(2):  # an unreadable answer is retried once
                    try:
                        with dspy.context(lm=judge.lm, adapter=dspy.JSONAdapter()):
                            return scores_of(rubric, program(record=render(record))), None
                    except Exception as e:  # noqa: BLE001 - parse or request failure: recorded as an error assessment
                        last = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                return None, last

            with ThreadPoolExecutor(max_workers=max(1, judge.parallel)) as pool:
                outcomes = list(pool.map(score, pending))
            requests += len([r for r in judge.proxy.records if r.is_completion])
            _write(client, rubric, meta, pending, outcomes, results[archetype])
        if guide_todo:
            from beyond_vibes.judges.rubric import load_rubric

            rubric = load_rubric(guide_todo[0][0].get("archetype") or "repo_maintenance", settings.judges_dir)
            judge = stack.enter_context(judge_lm(settings, rubric, served=served, experiment=experiment))
            for record, done in guide_todo:
                verdicts = judge_guidelines(record, judge.open_proxy.base_url, judge.model_id, skip=done)
                _write_guidelines(client, judge.name, record, verdicts, guides)
            requests += len([r for r in judge.open_proxy.records if r.is_completion])
        for a, work in aligned_todo.items():
            judge = stack.enter_context(judge_lm(settings, aligned[a].rubric, served=served, experiment=experiment))
            free = judge.open_proxy
            requests += score_aligned(client, free.upstream_base_url, judge.model_id, free.api_key, aligned[a], work,
                                      judge.name, aligned_scores[a])
    return EvaluateResult(dataset, results, requests, time.time() - started, guides, aligned_scores)


def _write_guidelines(client, judge_name: str, record: dict, verdicts, res: GuidelineScores) -> None:
    from mlflow.entities import AssessmentError, AssessmentSource

    source = AssessmentSource(source_type="LLM_JUDGE", source_id=guideline_source_id(judge_name))
    mine = self_judged(judge_name, record.get("model", ""))
    meta = {"judge_kind": GKIND, "judge_lm": judge_name, "self_judged": mine,
            "guideline": "", "trusted": False, "trust": "untrusted: no agreement with labels measured for Guidelines"}
    for v in verdicts:
        marks = {**meta, "guideline": (record.get("guidelines") or {}).get(v.guideline, "")}
        if v.value is None:
            res.errors += 1
            client.log_feedback(trace_id=record["trace_id"], name=v.assessment_name, source=source, metadata=marks,
                                error=AssessmentError(error_code="JUDGE_OUTPUT", error_message=v.error or "no verdict"))
            continue
        res.verdicts += 1
        res.yes += v.value == "yes"
        res.self_judged += mine
        client.log_feedback(trace_id=record["trace_id"], name=v.assessment_name, value=v.value,
                            rationale=v.rationale or None, source=source, metadata=marks)


def _write(client, rubric, meta: dict, records: list[dict], outcomes: list, res: ArchetypeScores) -> None:
    from mlflow.entities import AssessmentError, AssessmentSource, Metric

    source = AssessmentSource(source_type="LLM_JUDGE", source_id=judge_source_id(meta))
    gate = judge_trust_of(meta)
    trust = {"judge_version": meta["version"], "judge_lm": meta["judge_lm"],
             "heldout_kappa": meta["agreement"]["compiled"]["kappa"], "heldout_exact": meta["agreement"]["compiled"]["exact"],
             "trusted": gate.trusted, "trust": gate.line}
    sums: dict[str, list[int]] = defaultdict(list)
    now = int(time.time() * 1000)
    for record, (answer, error) in zip(records, outcomes):
        mine = self_judged(meta["judge_lm"], record.get("model", ""))
        if mine:
            res.self_judged += 1
        if answer is None:
            res.errors += 1
            for c in rubric.criteria:
                client.log_feedback(trace_id=record["trace_id"], name=c.name, source=source, metadata=trust,
                                    error=AssessmentError(error_code="JUDGE_OUTPUT", error_message=error or "no answer"))
            continue
        scores, rationales = answer
        res.scored += 1
        for c in rubric.criteria:
            marks = {**trust, "trusted": gate.criterion_trusted(c.name) and not mine, "self_judged": mine}
            client.log_feedback(trace_id=record["trace_id"], name=c.name, value=scores[c.name],
                                rationale=rationales.get(c.name) or None, source=source, metadata=marks)
            sums[c.name].append(scores[c.name])
        run_id = record.get("run_id")
        if run_id:
            client.log_batch(run_id, metrics=[Metric(f"judge_{k}", float(v), now, 0) for k, v in scores.items()])
            for k, v in {"bv.judge": judge_source_id(meta), "bv.judge_kappa": json.dumps(trust["heldout_kappa"]),
                         N.TAG_JUDGE_TRUST: gate.line, N.TAG_JUDGE_SELF: "true" if mine else "false",
                         "bv.judge_lm": meta["judge_lm"]}.items():
                client.set_tag(run_id, k, v)
    res.means = {k: round(sum(v) / len(v), 3) for k, v in sums.items()}

