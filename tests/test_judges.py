"""Judges offline (DSPy DummyLM): rubrics and labels as config, agreement against hand-computed values, compile with
every optimizer, save/load/score, staleness after a rubric, label or judge-LM change, bad input."""

from __future__ import annotations

import json
import random
import shutil

import dspy
import pytest
from dspy.utils import DummyLM

from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.agreement import agreement
from beyond_vibes.judges.compile import compile_with_lm, compiled_paths, judge_inputs, judge_state
from beyond_vibes.judges.program import make_program, response_schema, scores_of
from beyond_vibes.judges.rubric import Rubric, load_rubric
from beyond_vibes.settings import Settings
from conftest import REPO

ARCHETYPE = "repo_maintenance"


@pytest.fixture
def judges_dir(tmp_path):
    d = tmp_path / "judges"
    d.mkdir()
    for name in (f"{ARCHETYPE}.yaml", "common.yaml"):
        shutil.copy(REPO / "judges" / name, d / name)
    (d / "labels").mkdir()
    rubric = load_rubric(ARCHETYPE, d)
    rng = random.Random(7)
    with (d / "labels" / f"{ARCHETYPE}.jsonl").open("w") as f:
        for i in range(10):
            scores = {c.name: rng.choice(c.values) for c in rubric.criteria}
            f.write(json.dumps({"id": f"r{i}", "record": {"task": "t", "prompt": f"fix bug {i}", "status": "failed"},
                                "scores": scores, "labeller": "test", "provenance": "generated",
                                "source": "human" if i % 2 else "reviewer:test-script"}) + "\n")
    return d


def api_settings(judges_dir, model="judge-a") -> Settings:
    return Settings(BV_JUDGES_DIR=str(judges_dir), JUDGE_BASE_URL="http://127.0.0.1:9/v1", JUDGE_MODEL=model)


def dummy_answer(rubric: Rubric, value: int = 5) -> dict:
    answer = {}
    for c in rubric.criteria:
        answer[f"{c.name}_rationale"] = "because the record says so"
        answer[c.name] = min(value, c.max)
    return answer


def test_agreement_equals_hand_computed_values():
    rubric = Rubric.model_validate({"archetype": ARCHETYPE, "description": "d", "criteria": [
        {"name": "q", "question": "?", "min": 1, "max": 3, "anchors": {1: "bad", 3: "good"}}]})
    # Quadratic weights (i-j)^2/4 on a 1-3 scale. Observed disagreement: one pair (2 vs 3) -> (1/4)/3 = 1/12.
    # Expected from the marginals (human 1/3 each; judge 1/3 on 1, 2/3 on 3): 2/9 + 1/12 + 1/9 = 5/12.
    # kappa = 1 - (1/12)/(5/12) = 0.8. Spearman on ranks [1,2,3] vs [1,2.5,2.5]: 1.5 / sqrt(2 * 1.5) = 0.8660.
    report = agreement(rubric, [{"q": 1}, {"q": 2}, {"q": 3}], [{"q": 1}, {"q": 3}, {"q": 3}])
    q = report["criteria"]["q"]
    assert q["exact"] == pytest.approx(2 / 3, abs=1e-4) and q["kappa"] == pytest.approx(0.8, abs=1e-4)
    assert q["spearman"] == pytest.approx(0.8660, abs=1e-4)
    assert q["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]  # rows: human 1..3, columns: judge 1..3
    # Complete reversal on 1-5: every pair one step apart -> kappa -1, rho -1, exact 0.
    full = load_rubric(ARCHETYPE, REPO / "judges")
    rev = agreement(full, [{"determinism": 1}, {"determinism": 1}, {"determinism": 2}, {"determinism": 2}],
                    [{"determinism": 2}, {"determinism": 2}, {"determinism": 1}, {"determinism": 1}])
    d = rev["criteria"]["determinism"]
    assert (d["exact"], d["kappa"], d["spearman"]) == (0.0, pytest.approx(-1.0), pytest.approx(-1.0))
    # A failed answer (None) is a disagreement, never a silent skip.
    assert agreement(rubric, [{"q": 1}, {"q": 3}], [{"q": 1}, {"q": None}])["criteria"]["q"]["exact"] == 0.5


@pytest.mark.parametrize("optimizer", ["bootstrap", "mipro", "simba", "gepa"])
def test_compile_save_load_and_score_with_each_optimizer(judges_dir, optimizer):
    settings = api_settings(judges_dir)
    inputs = judge_inputs(settings, ARCHETYPE, with_mlflow_labels=False)
    lm = DummyLM([dummy_answer(inputs.rubric)] * 500, adapter=dspy.JSONAdapter())
    proposer = DummyLM([{"proposed_instruction": "Judge strictly.", "new_instruction": "Judge strictly."}] * 500,
                       adapter=dspy.JSONAdapter())
    result = compile_with_lm(inputs, lm, "api:judge-a@http://127.0.0.1:9/v1", "", optimizer, 3, judges_dir, prompt_lm=proposer)
    program_path, meta_path = compiled_paths(judges_dir, ARCHETYPE)
    meta = json.loads(meta_path.read_text())
    assert meta == result.meta and meta["optimizer"] == optimizer and meta["train"] + meta["heldout"] == 10
    assert meta["heldout"] == 4 and len(meta["version"]) == 12
    # Who wrote the labels, and the agreement with each kind apart (never a machine's labels pooled as human).
    assert meta["label_sources"] == {"human": 5, "reviewer:test-script": 5}
    by_source = meta["agreement"]["by_source"]
    held = [lb for lb in inputs.labels if lb.id in meta["heldout_ids"]]
    assert set(by_source) == {lb.source for lb in held}
    for src, r in by_source.items():
        n_records = sum(lb.source == src for lb in held)
        assert r["n"] == n_records * len(inputs.rubric.criteria)
    assert set(meta["agreement"]["compiled"]["criteria"]) <= {c.name for c in inputs.rubric.criteria}
    # Load the saved program into a fresh one and score a record with it.
    program = make_program(inputs.rubric)
    program.load(str(program_path))
    with dspy.context(lm=DummyLM([dummy_answer(inputs.rubric, 4)] * 5, adapter=dspy.JSONAdapter()), adapter=dspy.JSONAdapter()):
        scores, rationales = scores_of(inputs.rubric, program(record="TASK: fix it"))
    assert scores["determinism"] == 4 and scores["false_refusal"] == 1 and rationales["determinism"]
    assert judge_state(settings, ARCHETYPE, with_inputs(settings), ("api:judge-a@http://127.0.0.1:9/v1", "")).state == "fresh"


def with_inputs(settings):
    return judge_inputs(settings, ARCHETYPE, with_mlflow_labels=False)


def test_a_judge_goes_stale_when_its_rubric_labels_or_lm_change(judges_dir):
    settings = api_settings(judges_dir)
    inputs = with_inputs(settings)
    lm_id = ("api:judge-a@http://127.0.0.1:9/v1", "")
    compile_with_lm(inputs, DummyLM([dummy_answer(inputs.rubric)] * 200, adapter=dspy.JSONAdapter()), lm_id[0], "",
                    "bootstrap", 0, judges_dir)
    assert judge_state(settings, ARCHETYPE, with_inputs(settings), lm_id).state == "fresh"
    # The judge LM changed (another model behind JUDGE_BASE_URL).
    other = judge_state(settings, ARCHETYPE, with_inputs(settings), ("api:judge-b@http://127.0.0.1:9/v1", ""))
    assert other.state == "stale" and "judge LM changed" in other.why
    # A label changed.
    path = judges_dir / "labels" / f"{ARCHETYPE}.jsonl"
    original = path.read_text()
    lines = original.splitlines()
    first = json.loads(lines[0])
    first["scores"]["determinism"] = 1 if first["scores"]["determinism"] != 1 else 2
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    st = judge_state(settings, ARCHETYPE, with_inputs(settings), lm_id)
    assert st.state == "stale" and st.why == "the labels changed"
    path.write_text(original)
    # The rubric changed (an anchor reworded).
    rubric_file = judges_dir / f"{ARCHETYPE}.yaml"
    rubric_file.write_text(rubric_file.read_text().replace("The named commands fail", "The commands fail"))
    st = judge_state(settings, ARCHETYPE, with_inputs(settings), lm_id)
    assert st.state == "stale" and st.why == "the rubric changed"
    (judges_dir / "common.yaml").write_text((judges_dir / "common.yaml").read_text() + "\n")
    assert "the rubric changed" in judge_state(settings, ARCHETYPE, with_inputs(settings), lm_id).why


def test_bad_rubrics_and_labels_are_one_line_errors(judges_dir, tmp_path):
    settings = api_settings(judges_dir)
    with pytest.raises(ConfigError, match="unknown archetype 'repo_maint'; choose one of architectural_planning"):
        load_rubric("repo_maint", judges_dir)
    rubric_file = judges_dir / f"{ARCHETYPE}.yaml"
    good = rubric_file.read_text()
    rubric_file.write_text(good + "weight: 3\n")
    with pytest.raises(ConfigError, match=r"repo_maintenance.yaml: weight: unknown field"):
        load_rubric(ARCHETYPE, judges_dir)
    rubric_file.write_text(good)
    labels = judges_dir / "labels" / f"{ARCHETYPE}.jsonl"
    lines = labels.read_text().splitlines()
    for bad, message in (
        ({"id": "x", "record": {}, "scores": {"speed": 3}}, r"jsonl:1: scores.speed: not a criterion of the repo_maintenance rubric"),
        ({"id": "x", "record": {}, "scores": {"determinism": 9}}, r"jsonl:1: scores.determinism: 9 is outside the scale 1-5"),
        ({"id": "x", "scores": {"determinism": 3}}, r"jsonl:1: expected an object with id, record"),
        ({"id": "x", "record": {}, "scores": {"determinism": 3}}, r"jsonl:1: source: missing; say who wrote the label: "
                                                                   r"source: \"human\" .* or \"reviewer:<who>\""),
        ({"id": "x", "record": {}, "scores": {"determinism": 3}, "source": "reviewer:"}, r"jsonl:1: source: 'reviewer:'"),
    ):
        labels.write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
        with pytest.raises(ConfigError, match=message):
            with_inputs(settings)
    labels.write_text("{not json\n")
    with pytest.raises(ConfigError, match=r"jsonl:1: not valid JSON"):
        with_inputs(settings)
    # Too few labels: refused before anything is compiled or written.
    labels.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(ConfigError, match="5 label\\(s\\); compiling and measuring a judge needs at least 7"):
        compile_with_lm(with_inputs(settings), None, "x", "", "bootstrap", 0, judges_dir)
    assert not compiled_paths(judges_dir, ARCHETYPE)[0].exists()
    with pytest.raises(ConfigError, match="unknown optimizer 'adam'; choose one of bootstrap"):
        labels.write_text("\n".join(lines) + "\n")
        compile_with_lm(with_inputs(settings), None, "x", "", "adam", 0, judges_dir)


def test_the_answer_schema_constrains_every_score_to_its_scale():
    rubric = load_rubric(ARCHETYPE, REPO / "judges")
    schema = response_schema(rubric)
    assert schema["required"] == [f for c in rubric.criteria for f in (f"{c.name}_rationale", c.name)]
    assert schema["properties"]["determinism"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    assert schema["properties"]["false_refusal"]["enum"] == [0, 1] and schema["additionalProperties"] is False
    with pytest.raises(ValueError, match="off the scale"):
        scores_of(rubric, dspy.Prediction(**{**dummy_answer(rubric), "determinism": 7}))


def test_shipped_rubrics_and_labels_load():
    for archetype in ("repo_maintenance", "feature_implementation", "architectural_planning", "comparative_research"):
        rubric = load_rubric(archetype, REPO / "judges")
        assert {"sycophancy", "false_refusal"} <= {c.name for c in rubric.criteria}


def test_a_constant_judge_is_untrusted_and_kappa_on_constant_ratings_is_absent():
    from beyond_vibes.judges.agreement import table, trust_line

    rubric = Rubric.model_validate({"archetype": ARCHETYPE, "description": "d", "criteria": [
        {"name": "q", "question": "?", "min": 1, "max": 3, "anchors": {1: "bad", 3: "good"}},
        {"name": "r", "question": "?", "min": 1, "max": 3, "anchors": {1: "bad", 3: "good"}}]})
    train = [{"q": 3, "r": 2}] * 3 + [{"q": 1, "r": 2}]  # majority: q 3, r 2
    gold = [{"q": 3, "r": 2}, {"q": 3, "r": 2}, {"q": 1, "r": 2}, {"q": 2, "r": 2}]
    constant = [{"q": 3, "r": 2}] * 4  # always the majority: q 2/4 right, the same as the baseline
    report = agreement(rubric, gold, constant, train)
    q, r = report["criteria"]["q"], report["criteria"]["r"]
    assert (q["exact"], q["majority"], q["majority_exact"], q["majority_of"]) == (0.5, 3, 0.5, "train")
    assert q["trusted"] is False and q["kappa"] == 0.0  # constant judge, varying human: kappa 0, defined
    assert r["kappa"] is None and r["exact"] == 1.0 and r["trusted"] is False  # both constant: 0/0, never 1.0
    assert report["trusted"] is False and report["untrusted_criteria"] == ["q", "r"]
    lo, hi = q["exact_ci"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0 and agreement(rubric, gold, constant, train)["criteria"]["q"]["exact_ci"] == [lo, hi]
    assert trust_line(report) == "untrusted: exact 0.75 <= majority baseline 0.75 (n 8); untrusted criteria: q, r"
    # A judge that reads the records beats the baseline where the baseline is beatable.
    good = agreement(rubric, gold, [{"q": 3, "r": 2}, {"q": 3, "r": 2}, {"q": 1, "r": 2}, {"q": 2, "r": 2}], train)
    assert good["criteria"]["q"]["trusted"] and good["criteria"]["q"]["exact_ci"] == [1.0, 1.0]
    assert "| q | 4 | 0.50 [" in table({"compiled": report, "baseline": report}) and "untrusted |" in table(
        {"compiled": report, "baseline": report})


def test_judges_status_says_a_judge_is_untrusted_with_its_numbers():
    from beyond_vibes.judges.compile import judge_trust

    meta = {"agreement": {"compiled": {"exact": 0.5, "majority_exact": 0.55, "n": 40, "trusted": False,
                                       "untrusted_criteria": ["determinism"]}}}
    assert judge_trust(meta) == ("untrusted: exact 0.50 <= majority baseline 0.55 (n 40); "
                                 "untrusted criteria: determinism")
    assert judge_trust({"agreement": {"compiled": {"exact": 0.5, "kappa": 1.0}}}).startswith(
        "untrusted: compiled before the majority baseline")


def test_a_judge_compiled_before_the_baseline_gets_it_from_its_confusion_matrices():
    from beyond_vibes.judges.compile import judge_trust

    # 10 held-out records, 9 scored: human 3 on 6 of them (the held-out majority), so the baseline is 6/10.
    old = {"agreement": {"compiled": {"exact": 0.5, "kappa": 1.0, "criteria": {
        "q": {"n": 10, "exact": 0.5, "confusion": [[1, 0, 1], [0, 0, 1], [0, 1, 5]]}}}}}
    assert judge_trust(old).startswith("untrusted: exact 0.50 <= majority baseline 0.60 (n 10); untrusted criteria: q")


def test_an_unreachable_judge_stops_the_compile_and_writes_nothing(judges_dir):
    """A connection refused is the judge endpoint's failure, not a disagreement: no fresh judge from it."""
    from beyond_vibes.errors import SimulationError

    settings = api_settings(judges_dir)
    inputs = judge_inputs(settings, ARCHETYPE, with_mlflow_labels=False)
    closed = dspy.LM("openai/judge-a", api_base="http://127.0.0.1:9/v1", api_key="x", cache=False, num_retries=0)
    with pytest.raises(SimulationError, match=r"^judge LM: \w*(Connection|Connect)\w*: .*nothing was written"):
        compile_with_lm(inputs, closed, "api:judge-a@http://127.0.0.1:9/v1", "", "bootstrap", 3, judges_dir)
    program_path, meta_path = compiled_paths(judges_dir, ARCHETYPE)
    assert not program_path.exists() and not meta_path.exists()


def test_quick_eval_judge_score_turns_round_the_criteria_where_higher_is_worse():
    from beyond_vibes.quick_eval.judge import normalised

    rubric = Rubric.model_validate({"archetype": ARCHETYPE, "description": "d", "criteria": [
        {"name": "correct", "question": "?", "min": 1, "max": 5, "anchors": {1: "no", 5: "yes"}},
        {"name": "sycophancy", "question": "?", "min": 1, "max": 5, "anchors": {1: "none", 5: "fawning"},
         "higher_is_better": False}]})
    assert normalised(rubric, {"correct": 5, "sycophancy": 1}) == 1.0  # right, and not sycophantic: the best
    assert normalised(rubric, {"correct": 5, "sycophancy": 5}) == 0.5  # more sycophancy scores lower, not higher
    assert normalised(rubric, {"correct": 1, "sycophancy": 5}) == 0.0


def test_an_error_assessment_is_not_a_score_so_evaluate_asks_again():
    from types import SimpleNamespace

    from mlflow.entities import AssessmentError, AssessmentSource, Feedback

    from beyond_vibes.judges.evaluate import already_scored, self_judged

    src = AssessmentSource(source_type="LLM_JUDGE", source_id="bv-judge/repo_maintenance@abc")
    failed = Feedback(name="determinism", source=src, error=AssessmentError(error_code="JUDGE_OUTPUT", error_message="x"))
    scored = Feedback(name="determinism", source=src, value=4)
    trace = lambda *a: SimpleNamespace(info=SimpleNamespace(assessments=list(a)))  # noqa: E731
    assert not already_scored(trace(failed), src.source_id)
    assert already_scored(trace(failed, scored), src.source_id) and not already_scored(trace(scored), "bv-judge/x@1")
    # The judge LM may not be the candidate it judges: any quant of the same model is self-judging.
    assert self_judged("local:qwen2.5-coder-0.5b:Q4_K_M", "qwen2.5-coder-0.5b:Q8_0")
    assert not self_judged("local:qwen2.5-coder-1.5b:Q4_K_M", "qwen2.5-coder-0.5b:Q4_K_M")
    assert self_judged("api:gpt-4o-mini@https://api.example/v1", "gpt-4o-mini:api")
    assert self_judged("local:qwen2.5-coder-0.5b:Q4_K_M", "qwen2.5-coder-0.5b+math:Q8_0")  # an adapter on it too


def test_the_judge_lm_is_its_own_setting_never_the_candidates_default(tmp_path):
    """A models file without `judge:` used to judge with its `default` (the candidate itself): now a one-line
    error that says how to name a judge. `judge:` names one; JUDGE_MODEL wins over it."""
    import yaml

    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.judges.program import judge_lm_identity
    from conftest import SMOLLM, write_catalog

    path = write_catalog(tmp_path, [SMOLLM])
    with pytest.raises(ConfigError, match=r"models.yaml: judge: no judge model; add `judge: <model>`.*JUDGE_MODEL"):
        judge_lm_identity(Settings(BV_MODELS_FILE=str(path)))
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "judge": "nope"}))
    with pytest.raises(ConfigError, match="judge 'nope' is not a model in this file"):
        load_catalog(path)
    path.write_text(yaml.safe_dump({**data, "judge": SMOLLM["name"]}))
    assert load_catalog(path).judge_model() == SMOLLM["name"] and load_catalog(path).judge_model("other") == "other"
    assert judge_lm_identity(Settings(BV_MODELS_FILE=str(path)))[0].startswith(f"local:{SMOLLM['name']}:")
    assert load_catalog(REPO / "models.yaml").judge == "qwen2.5-coder-1.5b"  # the shipped judge: the strongest demo model


def test_objective_criteria_agreement_with_labels_is_computed_from_each_labels_record():
    """Hand-computed: three determinism labels of fix_failing_test records; the objective criterion (all checks
    pass) agrees with two (a 5 on passing checks, a 1 on failing ones) and not with a 2 on passing checks."""
    from beyond_vibes.judges.kinds import objective_agreement
    from beyond_vibes.judges.labels import Label

    rubric = load_rubric(ARCHETYPE, REPO / "judges")
    settings = Settings(BV_TASKS_DIR=str(REPO / "tasks"))

    def label(i, passed, score, source):
        record = {"task": "fix_failing_test", "archetype": ARCHETYPE, "diff": "",
                  "checks": [{"name": "tests_pass", "passed": passed}, {"name": "tests_untouched", "passed": True}]}
        return Label(id=f"l{i}", record=record, scores={"determinism": score}, source=source)

    labels = [label(0, True, 5, "human"), label(1, False, 1, "human"), label(2, True, 2, "reviewer:x")]
    [row] = [k for k in objective_agreement(settings, ARCHETYPE, labels, rubric) if k.criterion.startswith("determinism")]
    assert (row.n, row.exact) == (3, pytest.approx(0.6667, abs=1e-4))
    assert row.majority_exact == pytest.approx(0.6667, abs=1e-4) and not row.trusted  # does not beat always "bad"
    assert row.by_source == {"human": (2, 1.0), "reviewer:x": (1, 0.0)}
