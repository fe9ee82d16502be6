"""Compile one judge per archetype from its rubric and labels, measure it on held-out labels, save it, and say when
a compiled judge is stale.

judges/compiled/<archetype>.json is the DSPy program (instructions and demos); <archetype>.meta.json records what
it was compiled from (rubric sha256, labels sha256, judge LM and its model sha256, optimizer, seed, split sizes)
and its held-out agreement with the labels, per label source (exact, weighted kappa, Spearman, confusion matrix) beside the uncompiled
program's. A judge whose rubric, labels or judge LM changed is stale; `evaluate` refuses it.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes.curate import render
from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.judges.agreement import agreement, score_match, table
from beyond_vibes.judges.labels import Label, human_labels, labels_path, labels_sha256, load_labels
from beyond_vibes.judges.program import make_program, quiet_dspy, scores_of
from beyond_vibes.judges.rubric import Rubric, load_rubric
from beyond_vibes.tasks import Archetype

OPTIMIZERS = ("bootstrap", "mipro", "simba", "gepa")
MIN_TRAIN, MIN_HELDOUT = 4, 3


def compiled_paths(judges_dir: Path, archetype: str) -> tuple[Path, Path]:
    base = Path(judges_dir) / "compiled"
    return base / f"{archetype}.json", base / f"{archetype}.meta.json"


@dataclass
class JudgeInputs:
    """Everything a compiled judge depends on."""

    rubric: Rubric
    labels: list[Label]
    labels_sha256: str
    labels_file: Path


def judge_inputs(settings, archetype: str, with_mlflow_labels: bool = True, experiment: str | None = None) -> JudgeInputs:
    rubric = load_rubric(archetype, settings.judges_dir)
    path = labels_path(settings.judges_dir, archetype)
    labels = load_labels(path, rubric)
    if with_mlflow_labels:
        labels += human_labels(settings, rubric, experiment)
    return JudgeInputs(rubric, labels, labels_sha256(labels), path)


def split(labels: list[Label], seed: int, where: Path) -> tuple[list[Label], list[Label]]:
    """A seeded shuffle: 40% held out (at least 3), the rest to compile on (at least 4)."""
    need = MIN_TRAIN + MIN_HELDOUT
    if len(labels) < need:
        raise ConfigError(f"{where}: {len(labels)} label(s); compiling and measuring a judge needs at least {need} "
                          f"({MIN_TRAIN} to compile on, {MIN_HELDOUT} held out); add labels")
    shuffled = sorted(labels, key=lambda lb: lb.id)
    random.Random(seed).shuffle(shuffled)
    n_held = max(MIN_HELDOUT, round(0.4 * len(shuffled)))
    return shuffled[n_held:], shuffled[:n_held]


def example(rubric: Rubric, label: Label):
    import dspy

    fields = {"record": render(label.record)}
    for c in rubric.criteria:
        if c.name in label.scores:
            fields[c.name] = label.scores[c.name]
            if label.rationales.get(c.name):
                fields[f"{c.name}_rationale"] = label.rationales[c.name]
    return dspy.Example(**fields).with_inputs("record")


def gold_of(rubric: Rubric, ex) -> dict[str, int]:
    return {c.name: ex[c.name] for c in rubric.criteria if c.name in ex}


def predicted_of(rubric: Rubric, pred) -> dict[str, int | None]:
    try:
        return scores_of(rubric, pred)[0]
    except ValueError:
        return {c.name: None for c in rubric.criteria}


def make_optimizer(name: str, rubric: Rubric, lm, seed: int):
    """`lm` is the optimizer's own LM (MIPRO's instruction proposer, GEPA's reflection); it must not be forced into
    the judge's answer schema."""
    import dspy

    def metric(ex, pred, trace=None, *args):
        value = score_match(rubric, gold_of(rubric, ex), predicted_of(rubric, pred))
        # Bootstrapping keeps a demo only when the judge agreed with the label on every criterion: a demo that
        # "nearly" agrees would teach the judge its own wrong answers.
        return value >= 1.0 if trace is not None else value

    # Few demos: each is a whole record (~1k tokens) in every judge prompt, and a small local judge has an 8k context.
    if name == "bootstrap":
        return dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=1, max_labeled_demos=2, max_rounds=1)
    if name == "mipro":
        return dspy.MIPROv2(metric=metric, prompt_model=lm, task_model=lm, auto=None, num_candidates=3,
                            max_bootstrapped_demos=2, max_labeled_demos=2, seed=seed, num_threads=1, verbose=False)
    if name == "simba":
        return dspy.SIMBA(metric=metric, bsize=4, num_candidates=2, max_steps=2, max_demos=2, prompt_model=lm, num_threads=1)
    if name == "gepa":
        def feedback(gold, pred, trace=None, pred_name=None, pred_trace=None):
            value = metric(gold, pred)
            diffs = [f"{c.name}: you said {predicted_of(rubric, pred).get(c.name)}, the label says {gold[c.name]}"
                     for c in rubric.criteria if c.name in gold and predicted_of(rubric, pred).get(c.name) != gold[c.name]]
            return dspy.Prediction(score=value, feedback="; ".join(diffs) or "agrees with the label on every criterion")

        return dspy.GEPA(metric=feedback, max_metric_calls=24, reflection_lm=lm, reflection_minibatch_size=2,
                         num_threads=1, seed=seed, use_merge=False)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def run_compile(optimizer: str, program, trainset: list, rubric: Rubric, prompt_lm, seed: int):
    opt = make_optimizer(optimizer, rubric, prompt_lm, seed)
    if optimizer == "mipro":
        # Instructions proposed from the signature and the demos only: each extra proposer step is a long prompt
        # a small local judge can barely answer.
        return opt.compile(program, trainset=trainset, num_trials=3, minibatch=False, requires_permission_to_run=False,
                           data_aware_proposer=False, program_aware_proposer=False, tip_aware_proposer=False)
    if optimizer == "simba":
        return opt.compile(program, trainset=trainset, seed=seed)
    if optimizer == "gepa":  # validated on labels it does not learn from (a third of the training labels)
        n_val = max(1, len(trainset) // 3)
        return opt.compile(program, trainset=trainset[n_val:], valset=trainset[:n_val])
    return opt.compile(program, trainset=trainset)


def predict_all(rubric: Rubric, program, examples: list) -> list[dict[str, int | None]]:
    return [predicted_of(rubric, _safe(program, ex)) for ex in examples]


# Failures of the judge's endpoint, not of its answer: they stop a compile (nothing written) instead of counting as
# disagreements. Matched by class name along the exception chain (litellm's and openai's share these names).
UNREACHABLE = {"APIConnectionError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
               "ServiceUnavailableError", "BadGatewayError", "Timeout", "APITimeoutError", "ConnectError",
               "ConnectionError", "ConnectionRefusedError"}


def unreachable(e: BaseException) -> BaseException | None:
    """The exception in `e`'s chain that says the judge LM could not be reached or refused us, if any."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if any(k.__name__ in UNREACHABLE for k in type(e).__mro__):
            return e
        e = e.__cause__ or e.__context__
    return None


def _safe(program, ex):
    try:
        return program(record=ex.record)
    except Exception as e:  # noqa: BLE001 - a judge that cannot answer scores nothing; agreement counts it as a miss
        if (cause := unreachable(e)) is not None:
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
            raise SimulationError(f"judge LM: {type(cause).__name__}: {first}; nothing was written (check "
                                  "JUDGE_BASE_URL / JUDGE_API_KEY, or the local judge model's server)") from None
        return None


@dataclass
class CompileResult:
    archetype: str
    program_path: Path
    meta: dict
    seconds: float
    requests: int = 0
    report_md: str = ""
    run_id: str | None = None
    extra: dict = field(default_factory=dict)


def compile_with_lm(inputs: JudgeInputs, lm, lm_name: str, lm_sha256: str, optimizer: str, seed: int,
                    judges_dir: Path, prompt_lm=None) -> CompileResult:
    """Compile and measure with a given DSPy LM (and `prompt_lm` for the optimizer's own prompts, by default the
    same); writes the program and its meta atomically (nothing half-written)."""
    quiet_dspy()
    import dspy

    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer: unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    rubric = inputs.rubric
    train, held = split(inputs.labels, seed, inputs.labels_file)
    trainset, heldset = [example(rubric, lb) for lb in train], [example(rubric, lb) for lb in held]
    started = time.time()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        baseline = make_program(rubric)
        base_pred = predict_all(rubric, baseline, heldset)
        compiled = run_compile(optimizer, make_program(rubric), trainset, rubric, prompt_lm or lm, seed)
        comp_pred = predict_all(rubric, compiled, heldset)
    gold, train_gold = [gold_of(rubric, ex) for ex in heldset], [gold_of(rubric, ex) for ex in trainset]
    report = {"compiled": agreement(rubric, gold, comp_pred, train_gold),
              "baseline": agreement(rubric, gold, base_pred, train_gold)}
    # Agreement with each kind of label on its own: a human's and a machine reviewer's are never pooled unseen.
    report["by_source"] = {src: agreement(rubric, [g for g, lb in zip(gold, held) if lb.source == src],
                                          [p for p, lb in zip(comp_pred, held) if lb.source == src], train_gold)
                           for src in sorted({lb.source for lb in held})}
    program_path, meta_path = compiled_paths(judges_dir, rubric.archetype.value)
    program_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=program_path.parent) as tmp:
        tmp_program = Path(tmp) / program_path.name
        compiled.save(str(tmp_program))
        version = _sha256(tmp_program)[:12]
        meta = {"archetype": rubric.archetype.value, "version": version, "rubric_sha256": rubric.sha256,
                "labels_sha256": inputs.labels_sha256, "judge_lm": lm_name, "judge_model_sha256": lm_sha256,
                "optimizer": optimizer, "seed": seed, "train": len(train), "heldout": len(held),
                "heldout_ids": [lb.id for lb in held], "criteria": [c.name for c in rubric.criteria],
                "label_sources": {src: sum(lb.source == src for lb in inputs.labels)
                                  for src in sorted({lb.source for lb in inputs.labels})},
                "agreement": report, "compiled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "compile_s": round(time.time() - started, 1)}
        tmp_meta = Path(tmp) / meta_path.name
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
        tmp_program.replace(program_path)
        tmp_meta.replace(meta_path)
    return CompileResult(rubric.archetype.value, program_path, meta, time.time() - started, report_md=table(report))


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def compile_judge(settings, archetype: str, optimizer: str = "bootstrap", seed: int = 0,
                  experiment: str | None = None) -> CompileResult:
    """Compile with the configured judge LM (served through the recording proxy) and log the compile to MLflow."""
    from beyond_vibes.judges.program import judge_lm

    inputs = judge_inputs(settings, archetype, experiment=experiment)
    split(inputs.labels, seed, inputs.labels_file)  # too few labels: fail before a model server starts
    with judge_lm(settings, inputs.rubric, experiment=experiment) as judge:
        result = compile_with_lm(inputs, judge.lm, judge.name, judge.model_sha256, optimizer, seed, settings.judges_dir,
                                 prompt_lm=judge.prompt_lm)
        result.requests = len([r for r in judge.proxy.records if r.is_completion])
        tokens = (sum(r.prompt_tokens for r in judge.proxy.records), sum(r.completion_tokens for r in judge.proxy.records))
    result.run_id = log_compile(settings, result, tokens, experiment)
    return result


def log_compile(settings, result: CompileResult, tokens: tuple[int, int], experiment: str | None) -> str:
    """The compile as an MLflow run (bv.kind=judge_compile) with its agreement table."""
    from mlflow.entities import Metric, Param

    from beyond_vibes import names as N
    from beyond_vibes.tracking import tracking_client

    client, exp_id = tracking_client(settings, f"{experiment or settings.mlflow_experiment}-judges")
    m = result.meta
    run = client.create_run(exp_id, run_name=f"judge {m['archetype']} · {m['optimizer']} · {m['judge_lm']}",
                            tags={N.TAG_KIND: "judge_compile", N.TAG_ARCHETYPE: m["archetype"], "bv.judge_version": m["version"],
                                  N.TAG_DESCRIPTION: f"### judge {m['archetype']} {m['version']}\n\n{result.report_md}"})
    now = int(time.time() * 1000)
    metrics = {"agreement_exact": m["agreement"]["compiled"]["exact"], "agreement_kappa": m["agreement"]["compiled"]["kappa"],
               "baseline_exact": m["agreement"]["baseline"]["exact"], "baseline_kappa": m["agreement"]["baseline"]["kappa"],
               "compile_s": result.seconds, "judge_requests": result.requests, "tokens_prompt": tokens[0],
               "tokens_completion": tokens[1]}
    params = {k: m[k] for k in ("optimizer", "seed", "train", "heldout", "judge_lm", "judge_model_sha256", "rubric_sha256",
                                "labels_sha256", "version")}
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
                     params=[Param(k, str(v)) for k, v in params.items()])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "agreement.md").write_text(result.report_md + "\n")
        (Path(tmp) / "meta.json").write_text(json.dumps(m, indent=2))
        client.log_artifacts(run.info.run_id, tmp)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@dataclass
class JudgeState:
    archetype: str
    state: str  # fresh | stale | missing
    why: str = ""
    meta: dict | None = None


@dataclass(frozen=True)
class Trust:
    """How far a compiled judge may be used: trusted when its held-out agreement beats the majority baseline."""

    trusted: bool
    line: str  # why, with the numbers ("untrusted: exact 0.50 <= majority baseline 0.65 (n 40)")
    untrusted_criteria: tuple[str, ...] = ()

    def criterion_trusted(self, name: str) -> bool:
        return self.trusted and name not in self.untrusted_criteria


def judge_trust_of(meta: dict | None) -> Trust:
    from beyond_vibes.judges.agreement import trust_line

    compiled = ((meta or {}).get("agreement") or {}).get("compiled") or {}
    note = ""
    if "majority_exact" not in compiled:
        compiled = heldout_majority(compiled)
        if compiled is None:
            return Trust(False, "untrusted: compiled before the majority baseline was measured; run judges compile again")
        note = " (baseline: the held-out labels' own majority; recompile for the training one)"
    return Trust(bool(compiled.get("trusted")), trust_line(compiled) + note,
                 tuple(compiled.get("untrusted_criteria") or ()))


def judge_trust(meta: dict) -> str:
    """Whether a compiled judge beats the majority baseline on its held-out labels, with the numbers."""
    return judge_trust_of(meta).line


def heldout_majority(compiled: dict) -> dict | None:
    """For a judge compiled before the majority baseline was recorded: the baseline from its confusion matrices
    (rows = the held-out labels), i.e. always answering the held-out labels' most common value, the strongest
    constant answer on those records. None when the matrices are missing."""
    per = {}
    for name, c in compiled.get("criteria", {}).items():
        if not c.get("confusion") or not c.get("n"):
            return None
        base = max(sum(row) for row in c["confusion"]) / c["n"]
        per[name] = {**c, "majority_exact": round(base, 4), "trusted": c["exact"] > base}
    if not per:
        return None
    mean = lambda k: round(sum(v[k] for v in per.values()) / len(per), 4)  # noqa: E731
    return {"criteria": per, "exact": mean("exact"), "majority_exact": mean("majority_exact"),
            "n": sum(v["n"] for v in per.values()), "trusted": mean("exact") > mean("majority_exact"),
            "untrusted_criteria": [k for k, v in per.items() if not v["trusted"]]}


def judge_state(settings, archetype: str, inputs: JudgeInputs | None = None, lm_identity: tuple[str, str] | None = None,
                experiment: str | None = None) -> JudgeState:
    """fresh, stale (and why: rubric, labels or judge LM changed) or missing."""
    program_path, meta_path = compiled_paths(settings.judges_dir, archetype)
    if not program_path.exists() or not meta_path.exists():
        return JudgeState(archetype, "missing", "not compiled yet")
    meta = json.loads(meta_path.read_text())
    inputs = inputs or judge_inputs(settings, archetype, experiment=experiment)
    if lm_identity is None:
        from beyond_vibes.judges.program import judge_lm_identity

        lm_identity = judge_lm_identity(settings)
    why = []
    if meta.get("rubric_sha256") != inputs.rubric.sha256:
        why.append("the rubric changed")
    if meta.get("labels_sha256") != inputs.labels_sha256:
        why.append("the labels changed")
    if (meta.get("judge_lm"), meta.get("judge_model_sha256")) != tuple(lm_identity):
        why.append(f"the judge LM changed ({meta.get('judge_lm')} -> {lm_identity[0]})")
    return JudgeState(archetype, "stale" if why else "fresh", ", ".join(why), meta)


def all_archetypes() -> list[str]:
    return [a.value for a in Archetype]
