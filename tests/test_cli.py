"""The CLI: bad input is one line on stderr, exit code 2, and no MLflow run (let alone a RUNNING one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from beyond_vibes.cli import main
from conftest import REPO, experiment_runs


@pytest.fixture
def cli_env(settings, monkeypatch):
    for k, v in {"BV_HOME": str(settings.home), "MLFLOW_TRACKING_URI": settings.tracking_uri,
                 "BV_MODELS_FILE": str(REPO / "models.yaml"), "BV_TASKS_DIR": str(REPO / "tasks"),
                 "BV_EXPERIMENT": settings.mlflow_experiment, "HF_ENDPOINT": "http://127.0.0.1:9",
                 "BV_MODEL_DIR": str(settings.home / "models")}.items():
        monkeypatch.setenv(k, v)
    return settings


def bad_task(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\narchetype: repo_maintenance\nrepository: {path: x}\nprompt: [unclosed\n")
    return path


@pytest.mark.parametrize("args, message", [
    (["--task", "no_such_task"], "no_such_task.yaml: no such task file"),
    (["--task", "fix_failing_test", "--model", "nope"], "unknown model 'nope'; choose one of qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, smollm2-135m"),
    (["--task", "fix_failing_test", "--model", "smollm2-135m", "--quant", "Q2_K"], "has no quant 'Q2_K'; available: Q4_1"),
    (["--task", "fix_failing_test", "--quant", "Q2_K"], "no model offers quant 'Q2_K'"),
    (["--task", "fix_failing_test", "--quant", "IQ1_S"], "no model offers quant 'IQ1_S'"),
    (["--task", "fix_failing_test", "--prompt-vars", "{bad json"], "--prompt-vars: not valid JSON"),
    (["--task", "fix_failing_test", "--model", "qwen3-0.6B"], "model qwen3-0.6B quant Q6_K_XL: hugging face: cannot reach http://127.0.0.1:9"),
    (["--task", "fix_failing_test", "--model", "gpt-4o"], "environment variable OPENAI_API_KEY is not set"),
])
def test_bad_simulate_input(cli_env, monkeypatch, args, message):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in " ".join(lines), result.stderr
    assert experiment_runs(cli_env) == []


def test_malformed_task_file(cli_env, tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--task", str(bad_task(tmp_path))])
    assert result.exit_code == 2
    assert "broken.yaml: line" in result.stderr and "not valid YAML" in result.stderr
    assert experiment_runs(cli_env) == []


def test_real_process_exit_code_and_one_line(cli_env):
    """The installed entry point, as a user runs it."""
    exe = Path(sys.executable).parent / "beyond-vibes"
    out = subprocess.run([str(exe), "simulate", "--task", "fix_failing_test", "--model", "smollm2-135m", "--quant", "Q9"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "has no quant 'Q9'" in out.stderr
    assert out.stdout == ""


def test_lists_and_validate(cli_env, tmp_path):
    runner = CliRunner()
    assert "smollm2-135m" in runner.invoke(main, ["models", "list"]).output
    assert "fix_failing_test" in runner.invoke(main, ["tasks", "list"]).output
    result = runner.invoke(main, ["tasks", "validate", "fix_failing_test"])
    assert result.exit_code == 0 and "✓ fix_failing_test" in result.output
    from conftest import write_task

    unsolved = write_task(tmp_path, "unsolved", repository={"path": str(REPO / "tasks" / "repos" / "mathutils")},
                          checks=[{"name": "t", "command": "true"}])
    result = runner.invoke(main, ["tasks", "validate", str(unsolved)])
    assert result.exit_code == 2 and "solution: none given" in result.stderr


def test_doctor_sees_the_real_tools(cli_env):
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in ("llama-server", "pi", "node", "mlflow store"):
        assert name in result.output


def test_missing_repository_folder_is_caught_before_a_run(cli_env, tmp_path):
    task = tmp_path / "tasks" / "lost.yaml"
    task.parent.mkdir()
    task.write_text("name: lost\narchetype: repo_maintenance\nrepository: {path: no/such/folder}\nprompt: hi\n")
    result = CliRunner().invoke(main, ["simulate", "--task", str(task), "--model", "smollm2-135m"])
    assert result.exit_code == 2 and "repository.path:" in result.stderr and "does not exist" in result.stderr
    assert experiment_runs(cli_env) == []
