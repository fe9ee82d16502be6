"""The planning tasks' check (checktools/plan_check.py) on a real repository: a specific plan passes; a lazy one
(invented paths, too few real ones, missing sections) fails, each for its own reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

TOOL = REPO / "src" / "beyond_vibes" / "checktools" / "plan_check.py"


@pytest.fixture
def repo(tmp_path):
    for path in ("src/app/server.py", "src/app/settings.py", "pyproject.toml", ".env.sample"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x\n")
    run = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,  # noqa: E731
                                    check=True, capture_output=True, text=True).stdout.strip()
    run("init", "-q")
    run("add", "-A")
    run("commit", "-qm", "base")
    return tmp_path, run("rev-parse", "HEAD")


def check(repo, commit, plan: str, *args) -> tuple[int, str]:
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "docs" / "plan.md").write_text(plan)
    out = subprocess.run([sys.executable, str(TOOL), "docs/plan.md", "--section", "threat model", "--section", "steps",
                          "--min-paths", "3", *args], cwd=repo, env={"BV_BASE_COMMIT": commit, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    return out.returncode, out.stdout


GOOD = """# Plan
## Threat model
Secrets in .env.sample; sessions in `src/app/server.py`.
## Steps
1. src/app/settings.py: read the client id/secret from the environment (see https://example.com/oidc/docs.md).
2. pyproject.toml: add Authlib.
"""


def test_a_specific_plan_passes(repo):
    code, out = check(*repo, GOOD)
    assert code == 0 and out.startswith("ok: 4 repository paths"), out


@pytest.mark.parametrize("plan, why", [
    (GOOD + "3. src/app/auth/middleware.py: new.\n4. app/views/login.py\n", "do not exist at the base commit: app/views/login.py, src/app/auth/middleware.py"),
    ("## Threat model\nUsers.\n## Steps\nAdd auth to the server.\n", "cites 0 existing repository path(s), needs 3"),
    (GOOD.replace("## Threat model", "## Risks"), "no section 'threat model'"),
])
def test_a_lazy_plan_fails_for_its_reason(repo, plan, why):
    code, out = check(*repo, plan)
    assert code == 1 and why in out, out
