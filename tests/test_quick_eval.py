"""Quick evals: scorers on tricky answers, the shipped sets, bad input, flips/McNemar by hand, and real runs of
llama-server on two quants of the demo model made with llama-quantize (re-use proven by the proxy's request count)."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.errors import ConfigError
from beyond_vibes.quick_eval.compare import compare
from beyond_vibes.quick_eval.run import ITEMS_TABLE, ItemResult, SetRun, run_quick_eval, table_rows
from beyond_vibes.quick_eval.scorers import SCORERS, analysis, code, final_number, numeric
from beyond_vibes.quick_eval.sets import EvalSet, Item, load_set
from beyond_vibes.tracking import tracking_client
from conftest import REPO, make_test_ggufs, our_processes

ARITH = [  # easy enough that the 135M model gets some right and some wrong
    {"id": "a1", "prompt": "What is 2 + 3?", "expected": 5, "difficulty": "easy"},
    {"id": "a2", "prompt": "What is 10 times 4?", "expected": 40, "difficulty": "easy"},
    {"id": "a3", "prompt": "Tom has 7 apples and eats 2. How many apples are left?", "expected": 5, "difficulty": "medium"},
    {"id": "a4", "prompt": "A pen costs $3. How much do 6 pens cost in dollars?", "expected": 18, "difficulty": "medium"},
    {"id": "a5", "prompt": "What is 144 divided by 12?", "expected": 12, "difficulty": "hard"},
    {"id": "a6", "prompt": "What is 15% of 200?", "expected": 30, "difficulty": "hard"},
]
FACTS = [
    {"id": "f1", "prompt": "What is the capital of France?", "expected": "Paris", "difficulty": "easy"},
    {"id": "f2", "prompt": "Which HTTP status code means Not Found?", "expected": ["404"], "difficulty": "easy"},
    {"id": "f3", "prompt": "What is the time complexity of binary search?", "expected": ["O(log n)", "O(logn)"],
     "difficulty": "medium"},
    {"id": "f4", "prompt": "Which git command creates a new branch and switches to it? Give the command.",
     "expected": ["git checkout -b", "git switch -c"], "difficulty": "hard"},
]


def write_set(folder: Path, name: str, items: list[dict], **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": name, "version": 1, "domain": "test", "scorer": "numeric", "max_tokens": 48,
            "system_prompt": "Answer briefly. End your reply with a line `Answer: <answer>`.", **fields}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return folder / f"{name}.yaml"


@pytest.fixture(scope="module")
def ggufs():
    return make_test_ggufs()


@pytest.fixture
def catalog_file(tmp_path, ggufs):
    model = {"name": "smol", "family": "smollm", "quant_tags": ["Q4_0", "Q8_0"],
             "sources": {q: {"path": str(ggufs[q])} for q in ("Q4_0", "Q8_0")},
             "engine": {"ctx": 2048, "threads": 2, "parallel": 2}, "sampling": {"temperature": 0.7, "seed": 7}}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"default": "smol", "models": [model]}))
    return path


def cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
           "BV_HOME": str(settings.home), "BV_EVALS_DIR": str(settings.evals_dir)}
    exe = Path(sys.executable).parent / "beyond-vibes"
    return subprocess.run([str(exe), "quick-eval", *args], env=env, capture_output=True, text=True, timeout=900)


def runs_of(settings, suffix: str = "-quick-eval"):
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name(settings.mlflow_experiment + suffix)
    return client, ([] if exp is None else client.search_runs([exp.experiment_id]))


# --- scorers ------------------------------------------------------------------------------------------------------

NUM = EvalSet(name="n", domain="math", scorer="numeric")


@pytest.mark.parametrize("answer, expected, ok", [
    ("The total is 1,234 apples.", 1234, True),  # commas and units
    ("Step 1: 3 * 4 = 12. Step 2: 12 + 30 = 42.\nAnswer: $42.00", 42, True),
    ("Answer: **-3** degrees", -3, True),
    ("I think 5, but after checking: Answer: 7", 5, False),  # the declared answer wins over earlier numbers
    ("The answer is 7. (5 would be wrong)", 7, True),  # `answer is` is a declaration
    ("so x = 3/4\n#### 0.75", 0.75, True),
    ("\\boxed{2.5}", 2.5, True),
    ("12 + 3 = 15 dollars", 15, True),  # no declaration: the last number
    ("It costs 1,000,000 dollars", 1e6, True),
    ("Answer: 41.9999999", 42, True),  # within the relative tolerance: 1e-7 <= 1e-6 * 42
    ("Answer: 41.9", 42, False),
    ("I don't know.", 3, False),
    ("Answer: 1,5", 15, False),  # "1,5" is two numbers, not fifteen
])
def test_numeric_reads_the_final_number(answer, expected, ok):
    assert numeric(NUM, Item(id="x", prompt="p", expected=expected), answer).passed is ok


def test_numeric_extraction_details():
    assert final_number("3/4 cup") == 0.75 and final_number("Answer: −7 °C") == -7 and final_number("v2.0 then 9") == 9
    assert final_number("none here") is None


ANA = EvalSet(name="a", domain="analysis", scorer="analysis")


@pytest.mark.parametrize("answer, expected, ok", [
    ("Binary search halves the range.\nAnswer: O(log n)", ["O(log n)"], True),
    ("Answer: **O(n²)** because of the nested loops", ["O(n^2)"], True),  # markdown, superscript, extra words
    ("Answer: O(n^2)", ["O(n)"], False),  # O(n) is not a token of O(n^2)
    ("Answer: 4040", "404", False),
    ("It returns 404 Not Found.", "404", True),  # no declaration: the expected answer as a whole token
    ("It returns 4041.", "404", False),
    ("Answer: paris.", "Paris", True),
    ("Answer: git switch -c feature", ["git checkout -b", "git switch -c"], True),
])
def test_analysis_normalises_and_matches_whole_tokens(answer, expected, ok):
    assert analysis(ANA, Item(id="x", prompt="p", expected=expected), answer).passed is ok


CODE = EvalSet(name="c", domain="code", scorer="code", time_limit_s=3, memory_limit_mb=256)
ADD = Item(id="x", prompt="p", expected="def add(a, b):\n    return a + b\n",
           tests=["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])


@pytest.mark.parametrize("answer, ok, why", [
    ("Here:\n```python\ndef add(a, b):\n    return a + b\n```\nDone.", True, ""),
    ("```\ndef add(a, b):\n    return a + b\n```", True, ""),  # unlabelled fence
    ("def add(a, b):\n    return a + b", True, ""),  # no fence, plainly code
    ("```python\ndef add(a, b):\n    return a - b\n```", False, "test 1 failed"),
    ("```python\nwhile True:\n    pass\n```", False, "timed out"),  # hangs
    ("```python\nraise ValueError('boom')\n```", False, "ValueError: boom"),  # raises at import
    ("```python\nx = bytearray(1024 ** 3)\n```", False, "MemoryError"),  # over the memory limit
    ("```python\nimport os\nprint('passed', flush=True)\nos._exit(0)\n```", False, "exited before"),  # fakes the harness's line
    ("```python\nimport sys\nsys.exit(0)\n```", False, "SystemExit"),
    ("```python\nprint(open('/proc/1/environ').read())\n```", False, "did not run"),  # not readable as the sandbox user
    ("The function adds two numbers.", False, "no code"),
])
def test_code_runs_the_answer_against_the_tests(answer, ok, why):
    score = code(CODE, ADD, answer)
    assert score.passed is ok and why in score.detail, score.detail


def test_code_of_an_answer_leaves_no_process_behind():
    answer = "```python\nimport subprocess\nsubprocess.Popen(['sleep', '300'])\ndef add(a, b):\n    return a + b\n```"
    assert code(CODE, ADD, answer).passed
    assert not [p for p in our_processes() if "sleep 300" in p]


# --- the shipped sets -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["math", "code", "analysis"])
def test_shipped_sets_are_sound(name):
    s, items = load_set(name, REPO / "evals")
    assert len(items) >= 50 and {i.difficulty.value for i in items} == {"easy", "medium", "hard"}
    assert s.few_shot <= len(s.examples)
    if name == "code":
        # every reference passes its tests, and the tests are not vacuous: a stub that returns None fails them
        for item in items:
            assert code(s, item, f"```python\n{item.expected}\n```").passed, item.id
            fn = next(n.name for n in ast.walk(ast.parse(item.expected)) if isinstance(n, ast.FunctionDef))
            assert not code(s, item, f"```python\ndef {fn}(*a, **k):\n    return None\n```").passed, item.id
    else:
        scorer = SCORERS[s.scorer]
        for item in items:  # the expected answer, declared, scores; a wrong one does not
            right = item.expected[0] if isinstance(item.expected, list) else item.expected
            assert scorer(s, item, f"Answer: {right}").passed, item.id
            assert not scorer(s, item, "Answer: 987654321").passed, item.id


# --- bad input --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, fields, lines, message", [
    ("unknown set", None, None, "unknown eval set 'nope'"),
    ("unknown scorer", {"scorer": "vibes"}, [ARITH[0]], "scorer: Value error, unknown scorer 'vibes'"),
    ("no expected", {}, [{"id": "a", "prompt": "p"}], "t.jsonl:1: expected: field required"),
    ("malformed line", {}, [ARITH[0], "{not json"], "t.jsonl:2: not valid JSON"),
    ("non-numeric expected", {}, [{"id": "a", "prompt": "p", "expected": "five"}], "t.jsonl:1: expected: 'five' is not a number"),
    ("duplicate id", {}, [ARITH[0], ARITH[0]], "t.jsonl:2: id: 'a1' is used twice"),
    ("code without tests", {"scorer": "code"}, [{"id": "a", "prompt": "p", "expected": "def f(): pass"}], "tests: field required"),
    ("few_shot too big", {"few_shot": 2}, [ARITH[0]], "few_shot is 2 but only 0 examples"),
])
def test_bad_sets_are_one_line_and_exit_2_with_no_run(settings, tmp_path, catalog_file, case, fields, lines, message):
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    (tmp_path / "evals").mkdir()
    if fields is not None:
        write_set(tmp_path / "evals", "t", [], **fields)
        (tmp_path / "evals" / "t.jsonl").write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))
    out = cli(settings, "--set", "nope" if fields is None else "t", "--config", str(catalog_file))
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert runs_of(settings)[1] == [] and runs_of(settings, "-servers")[1] == []


def test_a_baseline_that_is_not_evaluated_is_refused_before_anything_starts(settings, tmp_path, catalog_file):
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    write_set(tmp_path / "evals", "t", ARITH[:1])
    out = cli(settings, "--set", "t", "--quant", "Q4_0", "--baseline", "Q8_0", "--config", str(catalog_file))
    assert out.returncode == 2 and "--baseline: 'Q8_0' is not among the evaluated targets (smol:Q4_0)" in out.stderr
    out = cli(settings, "--set", "t", "--quant", "Q3_K", "--config", str(catalog_file))
    assert out.returncode == 2 and "Q3_K" in out.stderr
    assert runs_of(settings)[1] == [] and runs_of(settings, "-servers")[1] == []


# --- flips and McNemar, by hand ----------------------------------------------------------------------------------------

def set_run(outcomes: dict[str, bool | None], quant: str) -> SetRun:
    items = [ItemResult(k, "easy", "sha", "p", "r", None, v, "") for k, v in outcomes.items()]
    return SetRun(EvalSet(name="s", domain="d", scorer="numeric"), "m", quant, items, {})


def test_comparison_against_hand_computed_flips_and_mcnemar():
    # 10 paired items: both pass 4 (1-4), both fail 1 (5), lost 4 (6-9: baseline pass -> candidate fail), gained 1 (10);
    # item 11 only in the baseline and item 12 unscored in the candidate are not paired.
    base = {f"i{k}": k <= 4 or 6 <= k <= 9 or k in (11, 12) for k in range(1, 13)}
    cand = {f"i{k}": k <= 4 or k == 10 for k in range(1, 11)} | {"i12": None}
    c = compare(set_run(base, "Q8_0"), set_run(cand, "Q4_0"))
    assert (c.both_pass, c.both_fail, c.lost, c.gained) == (4, 1, 4, 1)
    assert c.baseline_rate == 0.8 and c.candidate_rate == 0.5 and c.drop_points == pytest.approx(30.0)
    assert c.flip_rate == 0.5
    # exact McNemar: 5 discordant pairs, 1 in the smaller cell: p = 2 * (C(5,0) + C(5,1)) / 2^5 = 12/32
    assert c.p_value == pytest.approx(0.375)
    assert c.decision == "too high"
    same = compare(set_run(base, "Q8_0"), set_run(base, "Q6_K"))
    assert same.lost == same.gained == 0 and same.p_value == 1.0 and same.decision == "ship"


# --- real runs ------------------------------------------------------------------------------------------------------------

def mcnemar_by_hand(lost: int, gained: int) -> float:
    n, k = lost + gained, min(lost, gained)
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


@pytest.mark.integration
def test_quick_eval_of_two_quants_against_a_baseline(settings, tmp_path, catalog_file):
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    write_set(tmp_path / "evals", "arith", ARITH, max_tokens=64)
    write_set(tmp_path / "evals", "facts", FACTS, scorer="analysis", max_tokens=48)
    out = cli(settings, "--set", "arith,facts", "--quant", "Q4_0,Q8_0", "--baseline", "Q8_0", "--config", str(catalog_file))
    assert out.returncode == 0, out.stderr
    assert "vs smol:Q8_0" in out.stdout and "McNemar p" in out.stdout
    client, runs = runs_of(settings)
    assert sorted((r.data.tags["bv.set"], r.data.tags["bv.quant"]) for r in runs) == [
        ("arith", "Q4_0"), ("arith", "Q8_0"), ("facts", "Q4_0"), ("facts", "Q8_0")]
    assert all(r.info.status == "FINISHED" and r.data.tags["bv.kind"] == "quick_eval" for r in runs)
    # one server per quant, shared by both sets
    _, servers = runs_of(settings, "-servers")
    assert len(servers) == 2 and {r.data.tags["bv.server_id"] for r in runs} == {s.data.tags["bv.server_id"] for s in servers}
    tables = {}
    for r in runs:
        s, _ = load_set(r.data.tags["bv.set"], settings.evals_dir)
        assert r.data.params["temperature"] == "0.0" and r.data.params["seed"] == "7"  # pinned, not the model's 0.7
        assert r.data.params["max_tokens"] == str(s.max_tokens)
        rows = table_rows(json.loads(Path(client.download_artifacts(r.info.run_id, ITEMS_TABLE)).read_text()))
        assert len(rows) == (6 if s.name == "arith" else 4)
        items = {i.id: i for i in load_set(s.name, settings.evals_dir)[1]}
        for row in rows:  # every logged verdict is what the scorer says of the logged answer
            assert row["response"] and row["completion_tokens"] > 0 and row["latency_s"] > 0
            assert SCORERS[s.scorer](s, items[row["id"]], row["response"]).passed == row["passed"]
        passed = sum(1 for row in rows if row["passed"])
        assert r.data.metrics["accuracy"] == pytest.approx(passed / len(rows), abs=1e-4)
        assert r.data.metrics["n_items"] == len(rows) and r.data.metrics["gen_tps"] > 0
        tables[(s.name, r.data.tags["bv.quant"])] = {row["id"]: row["passed"] for row in rows}
    for name in ("arith", "facts"):
        base, cand = tables[(name, "Q8_0")], tables[(name, "Q4_0")]
        lost = sum(1 for k in base if base[k] and not cand[k])
        gained = sum(1 for k in base if not base[k] and cand[k])
        [run] = [r for r in runs if r.data.tags["bv.set"] == name and r.data.tags["bv.quant"] == "Q4_0"]
        assert (run.data.metrics["flips_lost"], run.data.metrics["flips_gained"]) == (lost, gained)
        assert run.data.metrics["mcnemar_p"] == pytest.approx(mcnemar_by_hand(lost, gained), abs=1e-6)
        drop = 100 * (sum(base.values()) - sum(cand.values())) / len(base)
        assert run.data.metrics["drop_vs_baseline_points"] == pytest.approx(drop, abs=1e-3)
    assert our_processes() == []


@pytest.mark.integration
def test_scored_items_are_reused_and_only_new_ones_are_asked(settings, tmp_path, catalog_file):
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    catalog = load_catalog(catalog_file)
    model, quant = catalog.choose("smol", "Q8_0")
    engine = catalog.engine_for(model)

    def run():
        [r] = run_quick_eval(settings, model, quant, engine, catalog.engine_spec(engine.engine),
                             [load_set("arith", settings.evals_dir)], tmp_path)
        return r

    write_set(tmp_path / "evals", "arith", ARITH[:3])
    first = run()
    assert first.requests == 3 and first.metrics["n_reused"] == 0
    again = run()
    assert again.requests == 0 and again.metrics["n_reused"] == 3  # nothing asked...
    assert len(runs_of(settings, "-servers")[1]) == 1  # ...and the model was not even loaded
    assert again.outcomes() == first.outcomes() and "gen_tps" not in again.metrics  # no speed measured, none logged
    write_set(tmp_path / "evals", "arith", ARITH[:4])  # one more item: only it is asked
    more = run()
    assert more.requests == 1 and more.metrics["n_reused"] == 3 and more.metrics["n_items"] == 4
    write_set(tmp_path / "evals", "arith", ARITH[:4], system_prompt="Reply with the number only.")  # asked otherwise
    changed = run()
    assert changed.requests == 4 and changed.metrics["n_reused"] == 0
    # Another llama.cpp build (the same binary with one byte more: another sha256) re-uses nothing, then everything.
    rebuilt = tmp_path / "llama-server-rebuilt"
    shutil.copy2(settings.find_llama_server(), rebuilt)
    with rebuilt.open("ab") as f:
        f.write(b"\0")
    settings = settings.model_copy(update={"llama_server_bin": rebuilt})
    on_rebuilt = run()
    assert on_rebuilt.requests == 4 and on_rebuilt.metrics["n_reused"] == 0
    assert run().requests == 0
    # Another chat template: asked again.
    template = tmp_path / "chatml.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                        "<|im_start|>assistant\n")
    data = yaml.safe_load(catalog_file.read_text())
    data["models"][0]["chat_template"] = str(template)
    catalog_file.write_text(yaml.safe_dump(data))
    catalog = load_catalog(catalog_file)
    model, quant = catalog.choose("smol", "Q8_0")
    with_template = run()
    assert with_template.requests == 4 and with_template.metrics["n_reused"] == 0
    # Each run carries its configuration's identity: one id while only the set changed, another for the rebuilt
    # binary (which the identity names) and another for the template; the report shows them as three rows.
    from mlflow import MlflowClient

    from beyond_vibes.identity import differences
    from beyond_vibes.report import build_report

    got = {name: MlflowClient(settings.tracking_uri).get_run(r.run_id).data for name, r in (
        ("first", first), ("changed", changed), ("rebuilt", on_rebuilt), ("template", with_template))}
    ids = {name: d.tags[N.TAG_CONFIG_ID] for name, d in got.items()}
    assert ids["first"] == ids["changed"] and len({ids["first"], ids["rebuilt"], ids["template"]}) == 3
    parts = {name: json.loads(d.params[N.PARAM_CONFIG_IDENTITY]) for name, d in got.items()}
    assert [d.split(":")[0] for d in differences(parts["first"], parts["rebuilt"])] == ["llama_build"]
    assert [d.split(":")[0] for d in differences(parts["rebuilt"], parts["template"])] == ["chat_template_sha256"]
    rows = json.loads(build_report(settings, None, tmp_path / "reports").results_json.read_text())["quick_evals"]
    assert sorted(r["config_id"] for r in rows) == sorted({ids["first"], ids["rebuilt"], ids["template"]})


@pytest.mark.integration
def test_the_judge_scorer_scores_answers_with_a_compiled_judge(settings, tmp_path, catalog_file):
    """A set scored by the committed compiled judge (its judge LM, the default model, served after all answers)."""
    # The committed judge was compiled with the 0.5B (models.yaml's judge is now the 1.5B): name its LM.
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals", "judges_dir": REPO / "judges",
                                           "judge_model": "qwen2.5-coder-0.5b"})
    write_set(tmp_path / "evals", "explain", FACTS[:2], scorer="judge", judge="feature_implementation", max_tokens=48,
              pass_score=0.5)
    catalog = load_catalog(catalog_file)
    model, quant = catalog.choose("smol", "Q8_0")
    engine = catalog.engine_for(model)
    [run] = run_quick_eval(settings, model, quant, engine, catalog.engine_spec(engine.engine),
                           [load_set("explain", settings.evals_dir)], tmp_path)
    scored = run.scored
    assert scored and all(0.0 <= r.judge_score <= 1.0 and r.detail.startswith("judge feature_implementation@")
                          for r in scored)
    assert all(r.passed == (r.judge_score >= 0.5) for r in scored)
    assert run.metrics["judge_score_mean"] == pytest.approx(sum(r.judge_score for r in scored) / len(scored), abs=1e-4)
    # two servers: the model under test, then the judge's model
    assert len(runs_of(settings, "-servers")[1]) == 2 and our_processes() == []


def test_a_judge_set_needs_a_known_archetype_and_a_fresh_compiled_judge(settings, tmp_path, catalog_file):
    import shutil

    shutil.copytree(REPO / "judges", tmp_path / "judges", ignore=shutil.ignore_patterns("compiled"))  # never compiled
    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals", "judges_dir": tmp_path / "judges"})
    write_set(tmp_path / "evals", "j", FACTS[:1], scorer="judge", judge="poetry")
    out = cli(settings, "--set", "j", "--config", str(catalog_file))
    assert out.returncode == 2 and "j.yaml: judge: " in out.stderr, out.stderr
    write_set(tmp_path / "evals", "j", FACTS[:1], scorer="judge", judge="feature_implementation")
    catalog = load_catalog(catalog_file)
    model, quant = catalog.choose("smol", "Q8_0")
    engine = catalog.engine_for(model)
    with pytest.raises(ConfigError, match="judges compile --archetype feature_implementation"):
        run_quick_eval(settings, model, quant, engine, catalog.engine_spec(engine.engine),
                       [load_set("j", settings.evals_dir)], tmp_path)
    assert runs_of(settings)[1] == [] and runs_of(settings, "-servers")[1] == []


def test_an_interrupted_quick_eval_keeps_its_scored_items_and_resumes_from_them(settings, tmp_path):
    """Ctrl-C at some of 12 items: a KILLED run holds the items scored before the stop; the next run asks only the
    rest (counted at the scripted model)."""
    import signal
    import time

    from conftest import write_catalog
    from scripted_llm import ScriptedLLM, Step

    settings = settings.model_copy(update={"evals_dir": tmp_path / "evals"})
    items = [{"id": f"q{i}", "prompt": f"What is {i} + 1?", "expected": i + 1, "difficulty": "easy"} for i in range(12)]
    write_set(settings.evals_dir, "slow", items)
    answers = [Step(content=f"Answer: {i + 1}", delay_s=0.4) for i in range(12)]
    with ScriptedLLM(answers * 2) as llm:
        catalog = write_catalog(tmp_path, [{"name": "scripted", "family": "test", "provider": "scripted",
                                            "model_id": llm.model_id, "base_url": llm.base_url, "context_window": 4096}])
        env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "BV_EXPERIMENT": settings.mlflow_experiment,
               "BV_HOME": str(settings.home), "BV_EVALS_DIR": str(settings.evals_dir)}
        exe = Path(sys.executable).parent / "beyond-vibes"
        proc = subprocess.Popen([str(exe), "quick-eval", "--set", "slow", "--model", "scripted", "--config", str(catalog)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while len(llm.requests) < 4 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        asked_before = len(llm.requests)
        client, runs = runs_of(settings)
        [killed] = runs
        assert killed.info.status == "KILLED" and killed.data.tags["bv.status"] == "interrupted"
        kept = int(killed.data.metrics["n_items"])
        assert 1 <= kept < 12 and kept <= asked_before
        again = cli(settings, "--set", "slow", "--model", "scripted", "--config", str(catalog))
        assert again.returncode == 0, again.stderr
        assert len(llm.requests) - asked_before == 12 - kept  # only what was not scored before the stop
    finished = [r for r in runs_of(settings)[1] if r.info.status == "FINISHED"]
    assert [(r.data.metrics["n_items"], r.data.metrics["n_reused"]) for r in finished] == [(12, kept)]
    # Both runs were served the same way: one served id (identity.served_id), carried by each.
    assert finished[0].data.tags["bv.served_id"] == killed.data.tags["bv.served_id"] != ""
