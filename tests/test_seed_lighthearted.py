"""The lighthearted seed tasks against lazy answers: each check named in the task fails for the shortcut it exists
to catch (the soundness of every seed task is tests/test_seed_tasks.py's)."""

from __future__ import annotations

import subprocess

import pytest
from packaging.version import Version

from beyond_vibes.checks import run_checks
from beyond_vibes.checktools.poetry_deps_check import poetry_range, problems
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from conftest import REPO


@pytest.mark.parametrize("constraint, low, high", [
    ("^2.5.43", "2.5.43", "3"), ("^0.5.7", "0.5.7", "0.6"), ("^0.0.3", "0.0.3", "0.0.4"), ("^3.12", "3.12", "4"),
    ("~1.2.3", "1.2.3", "1.3"), ("~1.2", "1.2", "1.3"), ("~1", "1", "2"), ("~=1.2", "1.2", "2"), ("1.0.1", "1.0.1", "2"),
])
def test_poetry_constraints_mean_what_poetry_means(constraint, low, high):
    assert poetry_range(constraint) == (Version(low), Version(high))
    assert poetry_range("==1.4") == (Version("1.4"), None) and poetry_range("*") is None


OLD = {"tool": {"poetry": {"dependencies": {"python": "^3.12", "dspy": "^2.5.43", "ruff-like": "^0.5.7"},
                           "group": {"dev": {"dependencies": {"pytest": "^8.3.2"}}}}}}


def test_a_dropped_upper_bound_a_lost_group_and_a_left_poetry_section_each_name_their_problem():
    good = {"project": {"requires-python": ">=3.12,<4", "dependencies": ["dspy>=2.5.43,<3", "ruff_like~=0.5.7"]},
            "dependency-groups": {"dev": ["pytest>=8.3.2,<9"]}}
    assert problems(OLD, good) == []
    lazy = {"project": {"requires-python": ">=3.11", "dependencies": ["dspy>=2.5.43"]},
            "tool": {"poetry": {}}, "build-system": {"build-backend": "poetry.core.masonry.api"}}
    found = problems(OLD, lazy)
    assert "pyproject.toml still has [tool.poetry] sections" in found
    assert "pyproject.toml: build-system.build-backend is still 'poetry.core.masonry.api'" in found
    assert "project.requires-python: >=3.11 admits 4, which poetry's '^3.12' excludes (keep the upper bound: <4)" in found
    assert "dspy (project.dependencies): >=2.5.43 admits 3, which poetry's '^2.5.43' excludes (keep the upper bound: <3)" \
        in found
    assert "ruff-like (project.dependencies): missing" in found and "pytest (group dev): missing" in found
    moved = {**good, "dependency-groups": {"test": ["pytest>=8.3.2,<9"]}}
    assert problems(OLD, moved) == ["pytest (group dev): missing (found in group 'test' instead)"]
    raised = {**good, "project": {**good["project"], "dependencies": ["dspy>=2.6,<3", "ruff_like~=0.5.7"]}}
    assert problems(OLD, raised) == ["dspy (project.dependencies): <3,>=2.6 excludes 2.5.43, which poetry's '^2.5.43' "
                                     "admits"]



@pytest.mark.integration
def test_touching_uv_lock_and_deleting_poetry_lock_fails_what_matters():
    """The issue's shortcut: `touch uv.lock; rm poetry.lock` (plus a [project] table) passed two of the old four
    checks. Now only no_poetry_lock passes; the lock is not uv's, nothing installs, dependencies are gone."""
    task = load_task("poetry_to_uv", REPO / "tasks")
    with workspace(task) as ws:
        subprocess.run("touch uv.lock && rm poetry.lock && sed -i 's/^\\[tool.poetry\\]$/[project]/' pyproject.toml",
                       shell=True, cwd=ws.repo, check=True)
        checks = {c.name: c for c in run_checks(task.checks, ws)}
    assert checks["no_poetry_lock"].passed
    failed = {n for n, c in checks.items() if not c.passed}
    assert failed == {"dependencies_survive", "uv_lock_resolves", "uv_sync_frozen", "docs_and_ci_use_uv"}, failed
    assert "pyproject.toml still has [tool.poetry] sections" in checks["dependencies_survive"].output_tail


LAZY_COVERING_SUITE = '''
from streamlit.testing.v1 import AppTest
import types, dspy
import lighthearted.dspy_utils as d, lighthearted.utils as u, lighthearted.settings


def test_everything_runs(monkeypatch):
    monkeypatch.setattr(u, "time", types.SimpleNamespace(sleep=lambda s: None))
    monkeypatch.setattr(dspy, "configure", lambda **kw: None)
    monkeypatch.setattr(d, "generate_follow_up_questions", lambda **kw: types.SimpleNamespace(follow_up_question=["a", "b"]))
    list(u.stream_text("x y"))
    at = AppTest.from_file("src/lighthearted/streamlit.py", default_timeout=60).run()
    for answer in ["1", "2", "3", "4"]:
        at.chat_input[0].set_value(answer).run()
'''


@pytest.mark.integration
def test_tests_that_cover_everything_and_assert_nothing_pass_coverage_but_not_the_planted_bugs():
    """Coverage alone is gameable: a suite that drives every line and asserts nothing reaches it. The planted bugs
    are not: each survives such a suite, and `assert True` fails coverage as well."""
    from beyond_vibes.checks import run_setup

    task = load_task("unit_tests", REPO / "tasks")
    with workspace(task) as ws:
        seconds, problem = run_setup(task, ws)
        assert problem is None, problem
        (ws.repo / "tests").mkdir()
        (ws.repo / "tests" / "test_app.py").write_text(LAZY_COVERING_SUITE)
        covering = {c.name: c for c in run_checks(task.checks, ws)}
        (ws.repo / "tests" / "test_app.py").write_text("def test_ok():\n    assert True\n")
        trivial = {c.name: c for c in run_checks(task.checks, ws)}
    assert covering["tests_pass"].passed and covering["coverage_80"].passed, covering["coverage_80"].output_tail
    bugs = covering["catches_planted_bugs"]
    assert not bugs.passed
    for mutant in ("utils-drops-space", "app-skips-first-follow-up", "app-reverses-questions"):
        assert f"{mutant}: the tests still pass with this bug planted" in bugs.output_tail, bugs.output_tail
    assert trivial["tests_pass"].passed and not trivial["coverage_80"].passed
    assert not trivial["catches_planted_bugs"].passed and trivial["source_untouched"].passed


@pytest.mark.integration
def test_a_new_file_under_src_counts_as_touching_the_source():
    """`git diff "$BV_BASE_COMMIT" -- src` in a check sees files the agent added: the checks run on a staged index."""
    task = load_task("unit_tests", REPO / "tasks")
    source_untouched = [c for c in task.checks if c.name == "source_untouched"]
    with workspace(task) as ws:
        (ws.repo / "src" / "lighthearted" / "conftest_helper.py").write_text("x = 1\n")
        (result,) = run_checks(source_untouched, ws)
    assert not result.passed and result.exit_code == 1


LAZY_API = '''
import streamlit  # noqa: F401  (not decoupled)
from fastapi import FastAPI


def create_app(generate_follow_ups=None):
    app = FastAPI()

    @app.post("/conversations")
    def start():
        return {"id": "1", "messages": [{"role": "ai", "content": "Welcome to lighthearted!"}]}

    @app.post("/conversations/{cid}/messages")
    def answer(cid: str, body: dict):
        return {"id": cid, "messages": [], "reply": "What are some of your most important values?"}

    return app
'''
LAZY_API_TEST = "from fastapi.testclient import TestClient\n\ndef test_ok():\n    assert True\n"


@pytest.mark.integration
def test_an_api_that_answers_without_the_flow_fails_the_hidden_tests():
    from beyond_vibes.checks import run_setup

    task = load_task("fastapi_endpoints", REPO / "tasks")
    with workspace(task) as ws:
        assert run_setup(task, ws)[1] is None
        (ws.repo / "src" / "lighthearted" / "api.py").write_text(LAZY_API)
        (ws.repo / "tests").mkdir()
        (ws.repo / "tests" / "test_api.py").write_text(LAZY_API_TEST)
        checks = {c.name: c for c in run_checks(task.checks, ws)}
    hidden = checks["hidden_api_tests"]
    assert not hidden.passed and checks["agent_tests_use_testclient"].passed  # its own tests are no evidence
    for test in ("test_a_new_conversation_opens_with_the_welcome", "test_the_flow_is_the_apps_follow_ups",
                 "test_unknown_ids_are_404", "test_delete_ends_a_conversation", "test_the_api_does_not_need_the_streamlit"):
        assert test in hidden.output_tail, hidden.output_tail


@pytest.mark.integration
def test_a_scripted_lazy_agent_on_poetry_to_uv_fails_through_the_whole_run(settings, tmp_path):
    """The issue's shortcut played by an agent: real pi in the sandbox, driven by a scripted model that runs
    `touch uv.lock; rm poetry.lock` and claims success. The run is the model's `failed`, not a harness error, and
    the checks say why."""
    from beyond_vibes import names as N
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.simulate import simulate
    from conftest import write_catalog
    from scripted_llm import ScriptedLLM, Step, bash
    from test_success_path import scripted_model

    script = [bash("touch uv.lock && rm poetry.lock && sed -i 's/^\\[tool.poetry\\]$/[project]/' pyproject.toml"),
              Step(content="Migrated to uv: uv.lock generated, poetry.lock removed.")]
    with ScriptedLLM(script) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted_model(llm)])).choose("scripted")
        result = simulate(load_task("poetry_to_uv", REPO / "tasks"), model, quant, settings)
    checks = {c.name: c.passed for c in result.checks}
    assert result.status == N.STATUS_FAILED
    assert checks == {"no_poetry_lock": True, "dependencies_survive": False, "uv_lock_resolves": False,
                      "uv_sync_frozen": False, "docs_and_ci_use_uv": False}
