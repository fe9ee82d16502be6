"""The aligned make_judge judges without a model: what MLflow's optimizer reads from a label, and what is refused."""

from __future__ import annotations

import json
import shutil

import pytest

from beyond_vibes.judges.program import quiet_dspy

quiet_dspy()  # offline: litellm must not fetch its price map

from beyond_vibes.errors import ConfigError
from beyond_vibes.judges.aligned import answer_format, label_trace, load_aligned
from beyond_vibes.judges.labels import Label
from beyond_vibes.judges.rubric import load_rubric
from conftest import REPO


def test_mlflow_reads_a_label_with_its_value_rationale_and_real_source():
    from mlflow.genai.judges.optimizers.dspy_utils import trace_to_dspy_example

    from beyond_vibes.judges.aligned import base_judge

    rubric = load_rubric("repo_maintenance", REPO / "judges")
    c = rubric.criterion("determinism")
    label = Label(id="x", record={"prompt": "Fix it.", "final_message": "done", "checks": [{"name": "t", "passed": True}],
                                  "diff": "+fixed"}, scores={"determinism": 4}, rationales={"determinism": "checks pass"},
                  source="reviewer:someone")
    trace = label_trace(label, "determinism")
    [ex] = trace_to_dspy_example(trace, base_judge(rubric, c, "openai:/judge"))
    assert str(ex.result) == "4" and ex.rationale == "checks pass"  # MLflow compares them as text
    assert "Fix it." in ex["inputs"] and "+fixed" in ex["outputs"] and "t: pass" in ex["outputs"]
    [a] = trace.info.assessments
    assert a.source.source_id == "reviewer:someone"  # who wrote it travels with it
    assert answer_format(c)["json_schema"]["schema"]["properties"]["result"]["enum"] == [1, 2, 3, 4, 5]


def test_missing_and_stale_aligned_judges_are_refused_with_the_fix(settings, tmp_path):
    judges = tmp_path / "judges"
    shutil.copytree(REPO / "judges", judges, ignore=shutil.ignore_patterns("compiled", "aligned"))
    s = settings.model_copy(update={"judges_dir": judges})
    with pytest.raises(ConfigError, match=r"no aligned judges for repo_maintenance; run `beyond-vibes judges align"):
        load_aligned(s, "repo_maintenance")
    (judges / "aligned").mkdir()
    (judges / "aligned" / "repo_maintenance.json").write_text(json.dumps(
        {"rubric_sha256": "old", "labels_sha256": "old", "judge_lm": "x", "judge_model_sha256": "y", "criteria": {}}))
    with pytest.raises(ConfigError, match=r"stale \(the rubric changed, the labels changed, the judge LM changed"):
        load_aligned(s, "repo_maintenance")
