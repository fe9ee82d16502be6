"""Each subjective criterion as an MLflow `make_judge` judge, aligned to the labels with MLflow's own alignment
(`Judge.align` with the SIMBA optimizer), measured on the same held-out labels as the compiled DSPy judge.

judges/aligned/<archetype>.json holds, per criterion, the aligned judge (MLflow's serialized scorer), its version
(sha256 of it) and its held-out agreement beside the unaligned judge's and the majority baseline's, plus what it
was aligned from (rubric, labels, judge LM). A file whose rubric, labels or judge LM changed is stale; `evaluate
--kind aligned` refuses it.

MLflow's optimizers read a label only from a HUMAN assessment on a trace. A label from judges/labels/*.jsonl has no
trace: it is handed to the optimizer as an in-memory trace (never written anywhere) whose assessment is typed HUMAN
for MLflow's reader and whose source id is the label's real source (`reviewer:<who>` or `human`). What the judge was
aligned on is recorded per source in the file, so a reviewer's label is never counted as a person's.

The judge sees the task and what the agent produced (final message, checks, diff), the same `outputs` as the
Guidelines judge. Its answer goes through a recording proxy that pins a JSON schema (a score on the criterion's
scale and a bounded rationale), so a small local judge answers well-formed and short.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.agreement import agreement, trust_line
from beyond_vibes.judges.guidelines import judged_output, openai_endpoint
from beyond_vibes.judges.labels import Label
from beyond_vibes.judges.rubric import Criterion, Rubric

KIND = "mlflow.make_judge+SIMBA"
PREFIX = "aligned."  # assessment names: aligned.<criterion>
MIN_TRAIN = 10  # MLflow's DSPy-based optimizers refuse fewer examples
RATIONALE_CHARS = 200


def aligned_path(judges_dir: Path, archetype: str) -> Path:
    return Path(judges_dir) / "aligned" / f"{archetype}.json"


def source_id(archetype: str, criterion: str, version: str) -> str:
    return f"mlflow-aligned/{archetype}.{criterion}@{version}"


def instructions(rubric: Rubric, c: Criterion) -> str:
    return (f"You are a strict reviewer of a coding agent's run. {rubric.description.strip()}\n\nScore one criterion:\n"
            f"{c.describe()}\n\nJudge what the record shows, not what the agent claims. Give the score as `result` "
            "and a one-sentence rationale that cites the record.\n\nThe task: {{ inputs }}\n\n"
            "What the agent produced: {{ outputs }}")


def answer_format(c: Criterion) -> dict:
    """The answer MLflow's judge parses (`result`, `rationale`), with the score an enum of the criterion's scale."""
    schema = {"type": "object", "properties": {
        "result": {"type": "integer", "enum": c.values},
        "rationale": {"type": "string", "minLength": 1, "maxLength": RATIONALE_CHARS}},
        "required": ["result", "rationale"], "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": f"judge_{c.name}", "strict": True, "schema": schema}}


def base_judge(rubric: Rubric, c: Criterion, model_uri: str):
    from mlflow.genai.judges import make_judge

    return make_judge(name=c.name, instructions=instructions(rubric, c), feedback_value_type=Literal[tuple(c.values)],
                      model=model_uri)


def judge_io(record: dict) -> dict:
    return {"inputs": {"task": record.get("prompt", "")}, "outputs": judged_output(record)}


def label_trace(label: Label, criterion: str):
    """An in-memory trace of a label (root span: the task in, what the agent produced out) carrying the label as the
    assessment MLflow's optimizer reads; see the module docstring for why it is typed HUMAN and what says otherwise."""
    from mlflow.entities import AssessmentSource, Feedback, Trace

    digest = hashlib.sha256(f"{label.id}\0{criterion}".encode()).digest()
    trace_id = "tr-" + digest[:16].hex()
    io = judge_io(label.record)
    trace = Trace.from_dict({
        "info": {"trace_id": trace_id, "request_time": "1970-01-01T00:00:00.000Z", "state": "OK",
                 "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}},
                 "trace_metadata": {}, "tags": {}},
        "data": {"spans": [{
            "trace_id": base64.b64encode(digest[:16]).decode(), "span_id": base64.b64encode(digest[16:24]).decode(),
            "parent_span_id": None, "name": "record", "start_time_unix_nano": 1, "end_time_unix_nano": 2, "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""}, "links": [],
            "attributes": {"mlflow.traceRequestId": json.dumps(trace_id), "mlflow.spanType": json.dumps("UNKNOWN"),
                           "mlflow.spanInputs": json.dumps(io["inputs"]), "mlflow.spanOutputs": json.dumps(io["outputs"])}}]}})
    trace.info.assessments = [Feedback(name=criterion, value=label.scores[criterion],
                                       rationale=label.rationales.get(criterion) or None,
                                       source=AssessmentSource(source_type="HUMAN", source_id=label.source))]
    return trace


def judge_of(serialized: dict):
    from mlflow.genai.scorers.base import Scorer

    return Scorer.model_validate(serialized)


def ask(judge, record: dict) -> tuple[int | None, str]:
    """(score, rationale); a score that cannot be read is (None, the reason): a miss, never a score."""
    try:
        fb = judge(**judge_io(record))
    except Exception as e:  # noqa: BLE001 - recorded as a failed answer
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    value = getattr(fb, "value", None)
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"no score: {getattr(fb, 'error', None) or value!r}"[:300]
    return value, fb.rationale or ""


@dataclass
class AlignResult:
    archetype: str
    path: Path
    criteria: dict[str, dict] = field(default_factory=dict)  # aligned this time
    skipped: dict[str, str] = field(default_factory=dict)  # criterion -> why
    requests: int = 0
    seconds: float = 0.0


def _one(rubric: Rubric, c: Criterion, train: list[Label], held: list[Label], judge_uri: str, prompt_lm, seed: int,
         bsize: int, candidates: int, steps: int) -> dict:
    from mlflow.genai.judges.optimizers import SIMBAAlignmentOptimizer

    one = SimpleNamespace(criteria=[c])
    unaligned = base_judge(rubric, c, judge_uri)
    base_pred = [{c.name: ask(unaligned, lb.record)[0]} for lb in held]
    optimizer = SIMBAAlignmentOptimizer(model=judge_uri, batch_size=min(bsize, len(train)), seed=seed + 1,
                                        simba_kwargs={"max_steps": steps, "num_candidates": candidates, "max_demos": 1,
                                                      "num_threads": 1, "prompt_model": prompt_lm})
    started = time.time()
    aligned = unaligned.align([label_trace(lb, c.name) for lb in train], optimizer=optimizer)
    align_s = time.time() - started
    pred = [{c.name: ask(aligned, lb.record)[0]} for lb in held]
    gold, train_gold = [{c.name: lb.scores[c.name]} for lb in held], [{c.name: lb.scores[c.name]} for lb in train]
    report = agreement(one, gold, pred, train_gold)
    by_source = {src: agreement(one, [g for g, lb in zip(gold, held) if lb.source == src],
                                [p for p, lb in zip(pred, held) if lb.source == src], train_gold)
                 for src in sorted({lb.source for lb in held})}
    serialized = aligned.model_dump()
    version = hashlib.sha256(json.dumps(serialized, sort_keys=True).encode()).hexdigest()[:12]
    return {"version": version, "judge": serialized, "train": len(train), "heldout": len(held),
            "heldout_ids": [lb.id for lb in held],
            "train_sources": {s: sum(lb.source == s for lb in train) for s in sorted({lb.source for lb in train})},
            "agreement": {"aligned": report["criteria"][c.name], "unaligned": agreement(one, gold, base_pred, train_gold)
                          ["criteria"][c.name], "by_source": {s: r["criteria"].get(c.name) for s, r in by_source.items()}},
            "trusted": report["trusted"], "trust": trust_line(report), "instructions_changed":
                aligned.instructions != unaligned.instructions, "align_s": round(align_s, 1),
            "optimizer": {"name": "SIMBA (mlflow.genai.judges.optimizers)", "batch_size": min(bsize, len(train)),
                          "num_candidates": candidates, "max_steps": steps, "seed": seed + 1}}


def align_archetype(settings, archetype: str, criteria: list[str] | None = None, seed: int = 0,
                    experiment: str | None = None, bsize: int = 4, candidates: int = 2, steps: int = 1) -> AlignResult:
    """Align a make_judge judge per criterion (all the archetype's criteria with enough labels, or `criteria`) on the
    compile split's training labels, measure it on its held-out labels, and write judges/aligned/<archetype>.json
    atomically. Criteria aligned before with the same rubric, labels and judge LM are kept."""
    from beyond_vibes.catalog import Sampling
    from beyond_vibes.judges.compile import judge_inputs, split, unreachable
    from beyond_vibes.judges.program import judge_lm, quiet_dspy
    from beyond_vibes.runtime.proxy import RecordingProxy

    quiet_dspy()
    inputs = judge_inputs(settings, archetype, experiment=experiment)
    rubric = inputs.rubric
    for name in criteria or []:
        if rubric.criterion(name) is None:
            raise ConfigError(f"--criterion: {name!r} is not a criterion of the {archetype} rubric "
                              f"({', '.join(c.name for c in rubric.criteria)})")
    train, held = split(inputs.labels, seed, inputs.labels_file)
    wanted = [c for c in rubric.criteria if not criteria or c.name in criteria]
    result = AlignResult(archetype, aligned_path(settings.judges_dir, archetype))
    todo = []
    for c in wanted:
        tr, he = [lb for lb in train if c.name in lb.scores], [lb for lb in held if c.name in lb.scores]
        if len(tr) < MIN_TRAIN or not he:
            result.skipped[c.name] = (f"{len(tr)} training and {len(he)} held-out label(s); MLflow's alignment needs "
                                      f"{MIN_TRAIN} to train on and 1 held out")
        else:
            todo.append((c, tr, he))
    started = time.time()
    with judge_lm(settings, rubric, experiment=experiment) as judge:
        identity = {"judge_lm": judge.name, "judge_model_sha256": judge.model_sha256}
        upstream = judge.open_proxy
        for c, tr, he in todo:
            sampling = Sampling(temperature=0.0, seed=42, max_tokens=160)
            with RecordingProxy(upstream.upstream_base_url, upstream.model_id, sampling, upstream.api_key,
                                response_format=answer_format(c)) as proxy, openai_endpoint(proxy.base_url):
                try:
                    result.criteria[c.name] = _one(rubric, c, tr, he, f"openai:/{judge.model_id}", judge.prompt_lm,
                                                   seed, bsize, candidates, steps)
                except Exception as e:
                    if (cause := unreachable(e)) is not None:
                        raise ConfigError(f"judge LM: {type(cause).__name__}: nothing was written (check JUDGE_BASE_URL "
                                          "/ JUDGE_API_KEY, or the local judge model's server)") from None
                    raise
                result.requests += len([r for r in proxy.records if r.is_completion])
        result.requests += len([r for r in upstream.records if r.is_completion])
    result.seconds = time.time() - started
    _write(result, rubric, inputs, identity, seed)
    return result


def _write(result: AlignResult, rubric: Rubric, inputs, identity: dict, seed: int) -> None:
    path = result.path
    head = {"archetype": rubric.archetype.value, "kind": KIND, "rubric_sha256": rubric.sha256,
            "labels_sha256": inputs.labels_sha256, **identity, "seed": seed}
    old = json.loads(path.read_text()) if path.exists() else {}
    keep = old.get("criteria", {}) if all(old.get(k) == v for k, v in head.items()) else {}
    data = {**head, "label_sources": {s: sum(lb.source == s for lb in inputs.labels)
                                      for s in sorted({lb.source for lb in inputs.labels})},
            "criteria": {**keep, **result.criteria}, "skipped": result.skipped,
            "aligned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(json.dumps(data, indent=2) + "\n")
    Path(tmp.name).replace(path)


@dataclass
class AlignedJudges:
    archetype: str
    data: dict
    rubric: Rubric

    def judges(self) -> dict[str, tuple[object, dict]]:
        return {name: (judge_of(c["judge"]), c) for name, c in self.data["criteria"].items()}


def load_aligned(settings, archetype: str, experiment: str | None = None) -> AlignedJudges:
    """The archetype's aligned judges; missing or stale (rubric, labels or judge LM changed) is refused with the fix."""
    from beyond_vibes.judges.compile import judge_inputs
    from beyond_vibes.judges.program import judge_lm_identity

    path = aligned_path(settings.judges_dir, archetype)
    fix = f"run `beyond-vibes judges align --archetype {archetype}` first"
    if not path.exists():
        raise ConfigError(f"{path}: no aligned judges for {archetype}; {fix}")
    data = json.loads(path.read_text())
    inputs = judge_inputs(settings, archetype, experiment=experiment)
    name, sha = judge_lm_identity(settings)
    why = [w for w, bad in (("the rubric changed", data.get("rubric_sha256") != inputs.rubric.sha256),
                            ("the labels changed", data.get("labels_sha256") != inputs.labels_sha256),
                            (f"the judge LM changed ({data.get('judge_lm')} -> {name})",
                             (data.get("judge_lm"), data.get("judge_model_sha256")) != (name, sha))) if bad]
    if why:
        raise ConfigError(f"{path}: aligned judges of {archetype} are stale ({', '.join(why)}); {fix}")
    if not data.get("criteria"):
        raise ConfigError(f"{path}: no criterion was aligned ({'; '.join(data.get('skipped', {}).values())}); {fix}")
    return AlignedJudges(archetype, data, inputs.rubric)


@dataclass
class AlignedScores:
    """Aligned make_judge scores: one per (record, aligned criterion)."""

    scored: int = 0
    errors: int = 0
    skipped: int = 0  # already scored by this judge version
    self_judged: int = 0
    criteria: list[str] = field(default_factory=list)


def pending_aligned(trace, archetype: str, aligned: AlignedJudges) -> list[str]:
    """The aligned criteria with no score from their current version on this trace (an error is retried)."""
    from beyond_vibes.judges.evaluate import already_scored

    return [name for name, c in aligned.data["criteria"].items()
            if not already_scored(trace, source_id(archetype, name, c["version"]))]


def score_aligned(client, upstream_base_url: str, model_id: str, api_key, aligned: AlignedJudges,
                  work: list[tuple[dict, list[str]]], judge_name: str, res: AlignedScores) -> int:
    """Score each (record, criteria) with the aligned judges through a recording proxy per criterion; write MLflow
    feedback `aligned.<criterion>` with the judge's version, LM, trust and whether it judged its own model. Returns
    the number of requests."""
    from mlflow.entities import AssessmentError, AssessmentSource

    from beyond_vibes.catalog import Sampling
    from beyond_vibes.judges.evaluate import self_judged
    from beyond_vibes.runtime.proxy import RecordingProxy

    requests = 0
    for name, (judge, info) in aligned.judges().items():
        items = [(record, crits) for record, crits in work if name in crits]
        if not items:
            continue
        c = aligned.rubric.criterion(name)
        source = AssessmentSource(source_type="LLM_JUDGE", source_id=source_id(aligned.archetype, name, info["version"]))
        with RecordingProxy(upstream_base_url, model_id, Sampling(temperature=0.0, seed=42, max_tokens=160), api_key,
                            response_format=answer_format(c)) as proxy, openai_endpoint(proxy.base_url):
            for record, _ in items:
                value, why = ask(judge, record)
                mine = self_judged(judge_name, record.get("model", ""))
                meta = {"judge_kind": KIND, "judge_version": info["version"], "judge_lm": judge_name,
                        "heldout_exact": info["agreement"]["aligned"]["exact"],
                        "majority_exact": info["agreement"]["aligned"]["majority_exact"],
                        "trusted": bool(info["trusted"]) and not mine, "trust": info["trust"], "self_judged": mine}
                if value is None:
                    res.errors += 1
                    client.log_feedback(trace_id=record["trace_id"], name=PREFIX + name, source=source, metadata=meta,
                                        error=AssessmentError(error_code="JUDGE_OUTPUT", error_message=why))
                    continue
                res.scored += 1
                res.self_judged += mine
                client.log_feedback(trace_id=record["trace_id"], name=PREFIX + name, value=value, rationale=why or None,
                                    source=source, metadata=meta)
            requests += len([r for r in proxy.records if r.is_completion])
    return requests
