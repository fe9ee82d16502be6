"""`tasks mine` on a real repository built here: a commit that adds a function and its test becomes a task whose
checks fail on the parent and pass on the commit; a docs-only commit and a commit whose test needs a network
service are dropped, each with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_vibes.mine import mine
from beyond_vibes.tasks import load_task
from beyond_vibes.validate import validate_task

pytestmark = pytest.mark.integration


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str]) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path) -> dict[str, str]:
    repo = tmp_path / "calc"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = {"base": commit(repo, "Initial calculator", {
        "calc.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"})}
    shas["feature"] = commit(repo, "Add mul (closes #7)", {
        "calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
        "tests/test_calc.py": "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                              "def test_mul():\n    assert mul(4, 5) == 20\n"})
    shas["docs"] = commit(repo, "Document the calculator", {"README.md": "# calc\nadd and mul.\n"})
    shas["service"] = commit(repo, "Fetch rates from the rates service", {
        "rates.py": "import urllib.request\n\n\ndef rate():\n    return float(urllib.request.urlopen('http://127.0.0.1:9/rate', timeout=2).read())\n",
        "tests/test_rates.py": "from rates import rate\n\n\ndef test_rate():\n    assert rate() > 0\n"})
    return {"repo": str(repo), **shas}


def test_mine_keeps_the_real_case_and_says_why_it_drops_the_others(tmp_path, history):
    out = tmp_path / "mined"
    outcomes = {o.commit: o for o in mine(history["repo"], None, 5, out)}
    kept = [o for o in outcomes.values() if o.kept]
    assert [o.commit for o in kept] == [history["feature"]]
    feature = kept[0]
    assert feature.fail_to_pass == ["tests/test_calc.py::test_mul"] and feature.pass_to_pass == ["tests/test_calc.py::test_add"]
    assert outcomes[history["docs"]].why == "no tests touched"
    assert outcomes[history["service"]].why.startswith("tests fail on the commit itself")
    assert "test_rate" in outcomes[history["service"]].why
    assert outcomes[history["base"]].why.startswith("the root commit")
    # The task it wrote is an ordinary task: sound, based on the parent, prompted with the commit message.
    [path] = out.glob("*.yaml")
    task = load_task(str(path), out)
    assert task.repository.ref == git(history["repo"], "rev-parse", f"{history['feature']}^")
    assert task.prompt.startswith("Add mul (closes #7)") and "test_mul" not in task.prompt
    s = validate_task(task)
    assert s.sound and not s.before[0].passed and all(c.passed for c in s.after)
    assert "def mul" in (out / "solutions" / f"{task.name}.patch").read_text()
    assert "test_calc" not in (out / "solutions" / f"{task.name}.patch").read_text()  # the solution is the code only


def test_mine_cli_prints_what_it_kept_and_dropped(tmp_path, history):
    out = subprocess.run([str(Path(sys.executable).parent / "beyond-vibes"), "tasks", "mine", history["repo"], "--out",
                          str(tmp_path / "m")], capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "kept" in out.stdout and "1 fail-to-pass, 1 pass-to-pass" in out.stdout
    assert "no tests touched" in out.stdout and "1 task(s) written" in out.stdout and "3 commit(s) dropped" in out.stdout


def test_mine_with_a_setup_mines_a_commit_whose_tests_need_a_package(tmp_path):
    """Tests that import a dependency cannot run on the bare toolchain: the drop says which import failed. With
    `--setup` installing it (sandboxed, from the package index) the commit becomes a sound task carrying that setup."""
    repo = tmp_path / "fmt"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "Start", {"fmt.py": "def shout(s):\n    return s.upper()\n",
                           "tests/test_fmt.py": "from fmt import shout\n\n\ndef test_shout():\n    assert shout('a') == 'A'\n"})
    feature = commit(repo, "Add is_text on six's string types", {
        "fmt.py": "import six\n\n\ndef shout(s):\n    return s.upper()\n\n\ndef is_text(x):\n"
                  "    return isinstance(x, six.string_types)\n",
        "tests/test_fmt.py": "import six\nfrom fmt import is_text, shout\n\n\ndef test_shout():\n    assert shout('a') == 'A'\n"
                             "\n\ndef test_is_text():\n    assert is_text('x') and not is_text(1) and six.PY3\n"})
    [bare] = [o for o in mine(str(repo), None, 5, tmp_path / "bare") if o.commit == feature]
    assert not bare.kept and "No module named 'six'" in bare.why and "--setup installs what they import" in bare.why
    setup = "uv venv -q .venv && uv pip install -q --python .venv/bin/python six==1.17.0 pytest==9.2.0"
    [kept] = [o for o in mine(str(repo), None, 5, tmp_path / "mined", setup=[setup]) if o.commit == feature]
    assert kept.kept and kept.fail_to_pass == ["tests/test_fmt.py::test_is_text"], kept.why
    task = load_task(str(next((tmp_path / "mined").glob("*.yaml"))), tmp_path / "mined")
    assert task.setup == [setup]
