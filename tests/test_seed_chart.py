"""The chart_tests seed task (kube-ai-stack's Helm chart) against lazy answers: each check fails for the shortcut it
exists to catch, and every planted break is a real break of what the prompt lists (the task's soundness is
tests/test_seed_tasks.py's). The integration tests fetch the pinned helm through the task's setup (PyPI)."""

from __future__ import annotations

import pytest
import yaml

from beyond_vibes.checks import run_checks, run_setup
from beyond_vibes.checktools import chart_check
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from conftest import REPO

TASK = "chart_tests"
CHART = "charts/kube-ai-stack"
SPEC = yaml.safe_load((REPO / "tasks" / "checks" / TASK / "breaks.yaml").read_text())
# Nine tests that pass whatever the chart does: the shortcut the breaks check exists for.
ASSERT_TRUE = "\n".join(f"def test_{i}():\n    assert True\n" for i in range(9))
# Tests that run helm (so the helm-usage check is satisfied) but pin the chart files' text instead of what it
# renders: every break fails them, and so does every control.
GOLDEN = '''import hashlib, pathlib, subprocess
CHART = pathlib.Path("charts/kube-ai-stack")
def digest():
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(CHART.rglob("*")) if p.is_file())).hexdigest()
def test_helm_runs():
    assert subprocess.run(["helm", "lint", str(CHART)]).returncode == 0
    subprocess.run(["helm", "template", "x", str(CHART)])
''' + "".join(f"def test_files_{i}():\n    assert digest() == DIGEST\n" for i in range(9))


def test_helm_values_coalesce_maps_and_replace_lists():
    base = {"global": {"image": {"repository": "a", "tag": "1"}, "tolerations": [1]}, "models": []}
    over = {"global": {"image": {"tag": "2"}, "tolerations": []}, "models": [{"name": "m"}]}
    assert chart_check.merged(base, over) == {"global": {"image": {"repository": "a", "tag": "2"}, "tolerations": []},
                                              "models": [{"name": "m"}]}


def test_rendered_documents_keep_their_source_template():
    out = "---\n# Source: c/templates/a.yaml\nkind: Service\nmetadata: {name: s}\n---\n# Source: c/templates/b.yaml\n"
    assert chart_check.documents(out) == [("c/templates/a.yaml", {"kind": "Service", "metadata": {"name": "s"}})]


def test_a_break_that_leaves_the_tests_green_and_a_control_that_turns_them_red_are_named():
    edit = {"name": "pvc renamed", "file": "templates/pvc.yaml", "why": "the PVC no longer exists"}
    assert chart_check.verdict("break", edit, 1, "") == [] and chart_check.verdict("control", edit, 0, "") == []
    assert "'pvc renamed' (templates/pvc.yaml) goes unnoticed: the tests still pass" in \
        chart_check.verdict("break", edit, 0, "9 passed")[0]
    assert "exit 5" in chart_check.verdict("break", edit, 5, "no tests ran")[0]
    assert "makes the tests fail" in chart_check.verdict("control", edit, 1, "1 failed")[0]


def test_a_break_whose_pattern_is_gone_is_reported_not_skipped(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "pvc.yaml").write_text("kind: PersistentVolumeClaim\n")
    path, original, why = chart_check.plant(tmp_path, next(b for b in SPEC["breaks"] if b["name"] == "pvc renamed"))
    assert original is None and "matches nothing in" in why and path.read_text() == "kind: PersistentVolumeClaim\n"


def in_sandbox(ws, *scripts: str) -> None:
    """Run an answer's commands as the agent would: in the sandbox, as the agent's user."""
    for script in scripts:
        code, out, _ = ws.run(script, 600, with_git=True)
        assert code == 0, out[-2000:]


def checks_after(*scripts: str) -> dict:
    task = load_task(TASK, REPO / "tasks")
    with workspace(task) as ws:
        _, failure = run_setup(task, ws)
        assert failure is None, failure
        in_sandbox(ws, *scripts)
        return {c.name: c for c in run_checks(task.checks, ws)}


def solution(index: int) -> str:
    return load_task(TASK, REPO / "tasks").solution.commands[index]


def write_tests(text: str) -> str:
    return f"mkdir -p tests && cat > tests/test_chart.py <<'TESTS'\n{text}\nTESTS\n"


@pytest.mark.integration
def test_assert_true_tests_catch_no_break_and_never_run_helm():
    checks = checks_after(solution(0), write_tests(ASSERT_TRUE))
    assert checks["chart_lints_and_renders"].passed and checks["chart_renders_as_documented"].passed
    tail = checks["chart_tests_pass"].output_tail
    assert not checks["chart_tests_pass"].passed
    assert "never ran `helm lint`" in tail and "never ran `helm template`" in tail
    breaks = checks["chart_tests_catch_breaks"]
    assert not breaks.passed and breaks.output_tail.count("goes unnoticed: the tests still pass") == len(SPEC["breaks"])


@pytest.mark.integration
def test_skipped_tests_and_a_missing_test_file_fail():
    skipped = solution(1).replace("import pytest\n", "import pytest\npytestmark = pytest.mark.skip('no helm')\n", 1)
    checks = checks_after(solution(0), skipped)
    tail = checks["chart_tests_pass"].output_tail
    assert not checks["chart_tests_pass"].passed and "0 tests passed" in tail and "tests skipped" in tail
    assert not checks["chart_tests_catch_breaks"].passed
    checks = checks_after(solution(0))  # chart fixed, no tests written
    assert checks["chart_renders_as_documented"].passed
    for name in ("chart_tests_pass", "chart_tests_catch_breaks"):
        assert not checks[name].passed and "tests/test_chart.py: no such file" in checks[name].output_tail


@pytest.mark.integration
def test_golden_file_tests_fail_the_controls():
    stamp = ("python - <<'PY'\nimport hashlib, pathlib\nc = pathlib.Path('charts/kube-ai-stack')\nd = hashlib.sha256("
             "b''.join(p.read_bytes() for p in sorted(c.rglob('*')) if p.is_file())).hexdigest()\n"
             "t = pathlib.Path('tests/test_chart.py')\nt.write_text(t.read_text().replace('DIGEST', repr(d)))\nPY\n")
    checks = checks_after(solution(0), write_tests(GOLDEN), stamp)
    assert checks["chart_tests_pass"].passed, checks["chart_tests_pass"].output_tail
    breaks = checks["chart_tests_catch_breaks"]
    assert not breaks.passed and "control 'template comment'" in breaks.output_tail
    assert "control 'schema reformatted'" in breaks.output_tail and "goes unnoticed" not in breaks.output_tail


@pytest.mark.integration
def test_a_values_edit_that_breaks_the_schema_and_a_fake_helm_fail():
    values = f"{CHART}/values.yaml"
    to_string = f"sed -i 's/^    port: 8080$/    port: \"8080\"/' {values} && grep -q 'port: \"8080\"' {values}"
    checks = checks_after(solution(0), solution(1), to_string)
    tail = checks["chart_lints_and_renders"].output_tail
    assert not checks["chart_lints_and_renders"].passed
    assert f"{CHART}/values.yaml: at /global/service/port: '8080' is not of type 'integer'" in tail
    assert f"{CHART}/values.yaml: changed since the base commit" in tail
    checks = checks_after(solution(0), solution(1), "printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/helm")
    assert not any(c.passed for c in checks.values())
    assert all("is not the pinned helm's" in c.output_tail for c in checks.values())


@pytest.mark.integration
def test_every_break_violates_a_listed_behaviour_and_no_control_does():
    """The breaks are fair: on the reference chart each one makes the checks' own lint or expectations fail (so a
    test suite that covers the prompt's list catches it), and the controls change nothing they look at."""
    check_dir = "/opt/bv/task-checks"
    helm = "--helm .venv/bin/helm --helm-sha256 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
    probe = (f"import sys, yaml\nsys.path.insert(0, '/opt/bv/checktools')\nimport chart_check as cc\n"
             f"from pathlib import Path\nchart, values = Path('{CHART}'), Path('{check_dir}/models.yaml')\n"
             f"spec = yaml.safe_load(Path('{check_dir}/breaks.yaml').read_text())\n"
             "for kind in ('breaks', 'controls'):\n"
             "    for edit in spec[kind]:\n"
             "        path, original, why = cc.plant(chart, edit)\n"
             "        assert not why, why\n"
             "        try:\n"
             "            found = cc.lint(chart, Path('.venv/bin/helm'), [values], []) + cc.expect(chart, "
             "Path('.venv/bin/helm'), values, 'templates/tests/test-connection.yaml', 'tests/test-connection.yaml')\n"
             "        finally:\n"
             "            path.write_text(original)\n"
             "        print(f'{kind}|{edit[\"name\"]}|{len(found)}|{found[:1]}')\n")
    task = load_task(TASK, REPO / "tasks")
    with workspace(task) as ws:
        assert run_setup(task, ws)[1] is None
        in_sandbox(ws, solution(0))
        code, out, _ = ws.run(f"python - <<'PY'\n{probe}PY\n", 600, with_git=True)
        assert code == 0, out[-2000:]
        # Every planted file is back as it was: the reference chart still meets every expectation.
        code, clean, _ = ws.run(f"python /opt/bv/checktools/chart_check.py expect {CHART} --values "
                                f"{check_dir}/models.yaml {helm}", 120, with_git=True)
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 3]
    assert {r[1] for r in rows} == {e["name"] for e in SPEC["breaks"] + SPEC["controls"]}
    assert all(int(count) > 0 for kind, _, count, _ in rows if kind == "breaks"), rows
    assert all(int(count) == 0 for kind, _, count, _ in rows if kind == "controls"), rows
    assert "chart_check expect: ok" in clean
