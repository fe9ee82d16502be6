"""Workspace (clone at a pinned ref, scrubbed env, diff), checks, and task soundness, on real git repos."""

from __future__ import annotations

import os
import subprocess

import pytest

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.checks import run_check, run_checks
from beyond_vibes.sandbox import agent_env, workspace
from beyond_vibes.tasks import Check, load_task
from beyond_vibes.validate import validate_task
from conftest import FAKE_SECRETS, REPO, git, write_task


def test_clone_at_pinned_commit_and_diff_with_new_files(tmp_path, git_repo):
    repo, first = git_repo
    task = load_task(str(write_task(tmp_path, "t", repository={"path": str(repo), "ref": first})), tmp_path / "tasks")
    with workspace(task) as ws:
        assert ws.commit == first and (ws.repo / "a.txt").read_text() == "v1\n"
        (ws.repo / "a.txt").write_text("changed\n")
        (ws.repo / "new.py").write_text("print('new')\n")
        (ws.repo / "__pycache__").mkdir()
        (ws.repo / "__pycache__" / "x.pyc").write_bytes(b"\0")
        diff = ws.diff()
        root = ws.root
    assert "+changed" in diff and "new file mode" in diff and "+print('new')" in diff and "pyc" not in diff
    assert not root.exists()


def test_unknown_ref_is_a_clear_error(tmp_path, git_repo):
    repo, _ = git_repo
    task = load_task(str(write_task(tmp_path, "t", repository={"path": str(repo), "ref": "deadbeef"})), tmp_path / "tasks")
    with pytest.raises(SimulationError, match="could not get .* at deadbeef"):
        with workspace(task):
            pass


def test_plain_folder_snapshot_is_the_same_commit_every_time(tmp_path):
    task = load_task("fix_failing_test", REPO / "tasks")
    with workspace(task) as a, workspace(task) as b:
        assert a.commit == b.commit and len(a.commit) == 40
    pinned = write_task(tmp_path, "p", repository={"path": str(REPO / "tasks/repos/mathutils"), "ref": "0000000"})
    with pytest.raises(ConfigError, match="does not match the folder's snapshot"):
        with workspace(load_task(str(pinned), tmp_path / "tasks")):
            pass


def test_agent_env_is_built_not_inherited(tmp_path, monkeypatch):
    for k, v in FAKE_SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:pw@tracking")
    monkeypatch.setenv("VIRTUAL_ENV", str(REPO / ".venv"))  # the user ran `source .venv/bin/activate`
    monkeypatch.setenv("PATH", f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    env = agent_env(tmp_path)
    assert env["HOME"] == str(tmp_path) and env["PYTHONNOUSERSITE"] == "1"
    assert env["PATH"].split(":")[0].endswith("/bin") and ".venv" not in env["PATH"]
    assert env["UV_CACHE_DIR"].startswith(str(tmp_path)) and env["PIP_CACHE_DIR"].startswith(str(tmp_path))
    assert not set(FAKE_SECRETS) & set(env) and not {"MLFLOW_TRACKING_URI", "VIRTUAL_ENV", "PYTHONPATH"} & set(env)


def test_checks_pass_fail_and_timeout():
    with workspace(load_task("fix_failing_test", REPO / "tasks")) as ws:
        ok = run_check(Check(name="ok", command="echo hi"), ws)
        bad = run_check(Check(name="bad", command="echo boom >&2; exit 3"), ws)
        slow = run_check(Check(name="slow", command="sleep 30", timeout_s=1), ws)
        missing = run_check(Check(name="missing", command="no-such-tool --version"), ws)
    assert (ok.passed, ok.exit_code, ok.output_tail.strip()) == (True, 0, "hi")
    assert missing.cannot_start == "check missing could not run: no-such-tool: command not found"
    assert ok.cannot_start is None and bad.cannot_start is None
    assert (bad.passed, bad.exit_code) == (False, 3) and "boom" in bad.output_tail
    assert slow.passed is False and slow.exit_code is None and slow.duration_s < 10 and "killed after 1s" in slow.output_tail


@pytest.mark.parametrize("name", ["fix_failing_test", "add_slugify"])
def test_shipped_offline_tasks_are_sound(name):
    s = validate_task(load_task(name, REPO / "tasks"))
    assert s.sound, s.problem
    assert not all(c.passed for c in s.before) and all(c.passed for c in s.after)


def test_unsound_task_is_caught(tmp_path, mathutils_repo):
    always = write_task(tmp_path, "always", repository={"path": str(mathutils_repo)},
                        checks=[{"name": "true", "command": "true"}], solution={"commands": ["true"]})
    assert "already passes" in validate_task(load_task(str(always), tmp_path / "tasks")).problem
    never = write_task(tmp_path, "never", repository={"path": str(mathutils_repo)},
                       checks=[{"name": "tests", "command": "python3 -m unittest discover -s tests"}],
                       solution={"commands": ["echo nothing"]})
    assert "still fail after the reference solution: tests" in validate_task(load_task(str(never), tmp_path / "tasks")).problem


HOOKS = {  # each would run a program as soon as the harness runs git in the workspace
    "core.fsmonitor": "{dump} fsmonitor",
    "filter.evil.clean": "{dump} clean",
    "filter.evil.smudge": "{dump} smudge",
    "diff.external": "{dump} diff",
    "diff.evil.textconv": "{dump} textconv",
    "core.hooksPath": "{hooks}",
}


def as_agent(ws) -> dict:
    """subprocess keywords for git on the agent's repo from the test (another owner: git's safe.directory)."""
    return {"env": {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}}


def plant_hooks(repo, dump_dir, **as_user):
    """What a hostile agent can do with write access to its workspace: programs that dump the environment,
    wired into every place git runs programs from, and attributes that route all files through them."""
    dump = dump_dir / "dump.sh"
    dump.write_text(f"#!/bin/sh\nenv > {dump_dir}/env-$1-$$.txt\ncat\n")
    dump.chmod(0o755)
    hooks = repo / ".git" / "evil-hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-checkout", "post-index-change", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\nenv > {dump_dir}/env-hook-{hook}-$$.txt\n")
        (hooks / hook).chmod(0o755)
    dump_dir.chmod(0o777)  # the agent's user writes its dumps here
    for key, value in HOOKS.items():
        subprocess.run(["git", "config", key, value.format(dump=dump, hooks=hooks)], cwd=repo, check=True, **as_user)

    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    info = repo / ".git" / "info" / "attributes"
    info.write_text("* filter=evil diff=evil\n")


def test_harness_git_runs_no_agent_planted_program_and_sees_through_commits(tmp_path, monkeypatch):
    for k, v in FAKE_SECRETS.items():
        monkeypatch.setenv(k, v)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    task = load_task("fix_failing_test", REPO / "tasks")
    with workspace(task) as ws:
        plant_hooks(ws.repo, dumps, **as_agent(ws))
        # The agent games the task: rewrites the test, commits it (so HEAD moves), and "fixes" nothing.
        test_file = ws.repo / "tests" / "test_mathutils.py"
        test_file.write_text(test_file.read_text().replace("assertEqual", "assertTrue or self.assertEqual"))
        subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "safe.directory=*", "-c", "user.name=a",
                        "-c", "user.email=a@a", "commit", "-qam", "tests fixed"], cwd=ws.repo,
                       env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"}, check=True, capture_output=True)
        for f in dumps.glob("env-*"):
            f.unlink()  # only the harness's own git use counts below
        diff = ws.diff()
        checks = {c.name: c for c in run_checks(task.checks, ws)}
    assert sorted(p.name for p in dumps.glob("env-*")) == []  # no planted program ran
    assert "tests/test_mathutils.py" in diff  # the committed change is still a change against the base commit
    assert checks["tests_untouched"].passed is False
    assert "BV_BASE_COMMIT" in task.checks[1].command


def test_a_local_folder_never_brings_secrets(tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('hi')\n")
    (project / ".env").write_text("OPENAI_API_KEY=sk-real-secret\n")
    (project / ".env.local").write_text("X=1\n")
    (project / ".env.example").write_text("OPENAI_API_KEY=\n")
    (project / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (project / ".venv").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    task = load_task(str(write_task(tmp_path, "t", repository={"path": str(project)})), tmp_path / "tasks")
    with workspace(task) as ws:
        files = sorted(str(p.relative_to(ws.repo)) for p in ws.repo.rglob("*") if ".git" not in p.parts and p.is_file())
    assert files == [".env.example", "src/app.py"]


def test_a_local_git_repository_gives_its_committed_state_only(tmp_path, git_repo):
    repo, _ = git_repo
    (repo / ".env").write_text("HF_TOKEN=hf_secret\n")  # untracked, as .env files are
    task = load_task(str(write_task(tmp_path, "t", repository={"path": str(repo)})), tmp_path / "tasks")
    with workspace(task) as ws:
        assert not (ws.repo / ".env").exists() and (ws.repo / "a.txt").read_text() == "v2\n"
        remotes = subprocess.run(["git", "remote", "-v"], cwd=ws.repo, capture_output=True, text=True).stdout
    assert "bv-harness" not in remotes  # the agent's clone does not point at the harness's private copy
