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


# Longer plans about infrastructure repositories: words that look like paths but are not claims, proposed new files,
# and the options the larger planning tasks use (--allow-new, --mention, --cite, --min-section-words).

NOT_CLAIMS = """
Images: ghcr.io/sokrypton/colabfold:1.5.5, docker.io/rocm/pytorch:latest, rocm/pytorch:latest, quay.io/ceph/ceph:v19.
APIs: apps/v1, batch/v1, ceph.rook.io/v1, amd.com/gpu, feature.node.kubernetes.io/amd-gpu.
A raw file elsewhere: raw.githubusercontent.com/org/repo/main/values.yaml (no scheme), e.g. and i.e. in prose.
Prose: AlphaFold2/ColabFold/OpenFold, RBD/CephFS/RGW, CPU/RAM-heavy, a bucket prefix results/run-1/.
Bare names: values.yaml, ceph.conf, kustomization.yaml. Relative: ../secrets.yaml. Partial: app/server.py.
"""


def test_image_refs_apis_prose_bare_and_partial_names_are_not_claimed_paths(repo):
    code, out = check(*repo, GOOD + NOT_CLAIMS)
    assert code == 0 and out.startswith("ok: 4 repository paths"), out


@pytest.mark.parametrize("line, named", [
    ("Edit src/app/auth/ for the middleware.", "src/app/auth/"),  # a folder under a real top-level folder
    ("See src/app/views/login for the form.", "src/app/views/login"),  # two slashes, starts at a real top level
    ("Tweak src/app/server.py and src/app/routes.py.", "src/app/routes.py"),
])
def test_a_path_under_a_real_top_level_folder_is_claimed(repo, line, named):
    code, out = check(*repo, GOOD + line + "\n")
    assert code == 1 and f"do not exist at the base commit: {named}" in out, out


def test_a_folder_cited_with_and_without_its_slash_counts_once(repo):
    plan = "## Threat model\nsrc/app and src/app/ and ./src/app/.\n## Steps\npyproject.toml\n"
    code, out = check(*repo, plan)
    assert code == 1 and "cites 2 existing repository path(s), needs 3: pyproject.toml, src/app/" in out, out


def test_a_comment_in_a_code_block_is_not_a_heading(repo):
    plan = GOOD.replace("## Threat model", "```bash\n# Threat model\n```")
    code, out = check(*repo, plan)
    assert code == 1 and "no section 'threat model'" in out, out


NEW = GOOD + """3. src/app/auth/ (new): the OIDC callback lives in src/app/auth/callback.py.
4. src/app/auth/session.py: keyed by user.
"""


def test_new_paths_need_the_option_and_their_marker(repo):
    assert check(*repo, NEW, "--allow-new") == (0, "ok: 4 repository paths cited, sections present\n")
    code, out = check(*repo, NEW)
    named = "do not exist at the base commit: src/app/auth/, src/app/auth/callback.py, src/app/auth/session.py"
    assert code == 1 and named in out, out
    unmarked = NEW.replace("(new)", "")
    code, out = check(*repo, unmarked, "--allow-new")
    assert code == 1 and "do not exist at the base commit: src/app/auth/, src/app/auth/callback.py" in out, out


def test_new_paths_outside_the_existing_folders_fail_and_never_count(repo):
    code, out = check(*repo, GOOD + "3. tests/test_auth.py (new).\n", "--allow-new")
    assert code == 1 and "proposes new paths outside the repository's existing folders: tests/test_auth.py" in out
    only_new = "## Threat model\nSessions.\n## Steps\n1. src/app/auth/a.py (new)\n2. src/app/auth/b.py (new)\n"
    code, out = check(*repo, only_new, "--allow-new")
    assert code == 1 and "cites 0 existing repository path(s), needs 3: none" in out, out


def test_mention_takes_alternatives_and_each_term_must_appear(repo):
    assert check(*repo, GOOD, "--mention", "authlib|oauth2-proxy", "--mention", "SECRET")[0] == 0
    code, out = check(*repo, GOOD, "--mention", "rook", "--mention", "keycloak|dex")
    assert code == 1 and "does not mention rook" in out and "does not mention keycloak or dex" in out, out


def test_cite_needs_an_existing_path_inside_one_of_the_prefixes(repo):
    assert check(*repo, GOOD, "--cite", "src/app/", "--cite", "docs/|pyproject.toml", "--cite", "src/app/set")[0] == 0
    code, out = check(*repo, GOOD, "--cite", "lib/|docs/")
    assert code == 1 and "cites no existing path under lib/ or docs/" in out, out
    folder_only = GOOD.replace("`src/app/server.py`", "src/app/")
    code, out = check(*repo, folder_only, "--cite", "src/app/")
    assert code == 0, out  # settings.py is still inside src/app/
    code, out = check(*repo, folder_only.replace("src/app/settings.py", "the settings"), "--cite", "src/app/")
    assert code == 1 and "cites no existing path under src/app/" in out, out


def test_min_section_words_counts_the_body_down_to_the_next_heading_of_its_level(repo):
    plan = "## Threat model\nAttackers.\n### Assets\n" + "word " * 12 + "\n## Steps\n" + "src/app/server.py " * 3
    plan += "pyproject.toml .env.sample src/app/settings.py\n"
    code, out = check(*repo, plan, "--min-section-words", "10")
    assert code == 0, out  # the subsection's words belong to the threat model
    code, out = check(*repo, plan.replace("### Assets", "## Assets"), "--min-section-words", "10")
    assert code == 1 and "section 'threat model' has 1 word(s), needs 10" in out, out
