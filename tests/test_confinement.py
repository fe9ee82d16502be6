"""The agent's sandbox, as users meet it: a non-root and a root harness, two users side by side, a real toolchain
for the checks, an environment the agent cannot corrupt, task setup, and bad input. Real pi, real bwrap, a real
MLflow store; the model is scripted (it drives pi down the hostile path a small model never takes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.catalog import load_catalog
from beyond_vibes.confinement import toolchain_dir
from beyond_vibes.settings import Settings
from beyond_vibes.simulate import SimulateOptions, simulate
from beyond_vibes.tasks import load_task
from beyond_vibes.tracking import tracking_client
from conftest import REPO, all_logged_text, leaked, our_processes, write_catalog, write_task
from scripted_llm import ScriptedLLM, Step, bash

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="creates test users and runs the harness as them (root)")]

EXE = Path(sys.executable).parent / "beyond-vibes"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAbvTestKeyMaterial0123456789\n"
DOT_ENV_SECRET = "hf_userDotEnvSecret0123456789abcdef"
MARKER = "sleep 300.5"


def scripted(llm: ScriptedLLM) -> dict:
    return {"name": "scripted", "family": "test", "provider": "scripted", "model_id": llm.model_id,
            "base_url": llm.base_url, "context_window": 16384}


@contextmanager
def traversable(*paths: Path):
    """Let other users pass through the folders above `paths` (this machine's Python lives under root's 0700 home);
    restored afterwards."""
    changed = []
    for path in paths:
        for folder in Path(os.path.realpath(path)).parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(folder, mode | stat.S_IXOTH)
                changed.append((folder, mode))
    try:
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, stat.S_IMODE(mode))


@pytest.fixture(scope="module")
def toolchain_copy(tmp_path_factory) -> Path:
    """The agent toolchain where any user can read it (root's cache is not), relocated: it is a relocatable venv."""
    dest = Path("/tmp") / f"bv-test-toolchain-{os.getpid()}"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(toolchain_dir(), dest, symlinks=True)
    os.chmod(dest, 0o755)
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


def make_user(name: str) -> Path:
    """A real login user with a home, a planted SSH key, and a project folder whose .env holds a secret."""
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
    home = Path(f"/home/{name}")
    project = home / "proj"
    shutil.rmtree(project, ignore_errors=True)
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_ed25519").write_text(KEY)
    project.mkdir()
    (project / ".env").write_text(f"HF_TOKEN={DOT_ENV_SECRET}\n")
    for path in (home / ".ssh", home / ".ssh" / "id_ed25519", project, project / ".env"):
        shutil.chown(path, name, name)
    os.chmod(home / ".ssh" / "id_ed25519", 0o600)
    return home


def store_uri(home: Path) -> str:
    """A store file of its own per test (the test process caches clients by URI)."""
    return f"sqlite:///{home}/proj/mlflow-{os.environ.get('PYTEST_CURRENT_TEST', '').split('::')[-1].split(' ')[0]}.db"


def run_as(user: str, home: Path, args: list[str], toolchain: Path, extra_env: dict | None = None) -> subprocess.Popen:
    """The CLI started by `user` from its project folder, in a login-like environment of its own."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "USER": user, "LANG": "C.UTF-8",
           "BV_TOOLCHAIN": str(toolchain), "BV_TASKS_DIR": str(REPO / "tasks"), "BV_CACHE_DIR": str(home / ".cache" / "bv"),
           "MLFLOW_TRACKING_URI": store_uri(home), **(extra_env or {})}
    return subprocess.Popen(["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], str(EXE), *args],
                            cwd=home / "proj", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Listener:
    """A loopback port that is not the model proxy: counts who connects."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def hostile(home: Path, port: int) -> list[Step]:
    project = home / "proj"
    return [
        bash(f"id -un; cat {home}/.ssh/id_ed25519; echo read-key=$?"),
        bash(f"cat {project}/.env; echo read-env=$?"),
        bash(f"echo pwned > {project}/pwned.txt; echo write-project=$?; echo pwned > {home}/pwned.txt; echo write-home=$?"),
        bash(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)\" 2>&1 | tail -1; "
             f"echo connect=${{PIPESTATUS[0]}}"),
        bash(f"(exec -a '{MARKER}' sleep 300 &) ; echo left-behind"),
        Step(content="Done."),
    ]


def tool_results(llm: ScriptedLLM) -> str:
    return json.dumps([m.get("content") for r in llm.requests for m in r["body"].get("messages", []) if m.get("role") == "tool"])


def leftovers() -> list[int]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if MARKER in " ".join(p.info["cmdline"] or []):
                found.append(p.info["pid"])
        except psutil.Error:
            continue
    return found


def store_text(uri: str, experiment: str) -> tuple[str, object]:
    """Everything logged for the one run in the store (for leak scans), and that run."""
    settings = Settings(MLFLOW_TRACKING_URI=uri, BV_EXPERIMENT=experiment)
    client, exp_id = tracking_client(settings)
    runs = client.search_runs([exp_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    return all_logged_text(client, runs[0].info.run_id, runs[0].data.tags.get(N.TAG_TRACE_ID)), runs[0]


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_hostile_agent_under_a_non_root_harness(tmp_path, toolchain_copy, sandbox):
    """The default sandbox stops every attempt; `none` (asked for) lets each one through, which shows the attempts
    are real."""
    user = "bvharness"
    home = make_user(user)
    listener = Listener()
    with ScriptedLLM(hostile(home, listener.port)) as llm, traversable(sys.executable, EXE, REPO, toolchain_copy):
        catalog = home / "proj" / "models.yaml"
        catalog.write_text(yaml.safe_dump({"default": "scripted", "models": [scripted(llm)]}))
        proc = run_as(user, home, ["simulate", "--task", "fix_failing_test", "--config", str(catalog), "--sandbox", sandbox,
                                   "--experiment", "hostile"], toolchain_copy)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "could not record" not in err, err
    text = tool_results(llm)
    store, run = store_text(store_uri(home), "hostile")
    assert len(llm.requests) == 6 and run.data.metrics[N.M_TOOL_CALLS] == 5  # the run worked: every call proxied
    assert run.data.tags[N.TAG_SANDBOX] == ("bwrap" if sandbox == "auto" else "none")
    stolen = [KEY.splitlines()[1], DOT_ENV_SECRET]
    written = [p for p in (home / "proj" / "pwned.txt", home / "pwned.txt") if p.exists()]
    try:
        if sandbox == "none":  # unconfined: the same attacks work
            assert leaked(text, stolen) == stolen and len(written) == 2 and listener.connections == 1
            assert "bvharness" in text
            return
        assert leaked(text, stolen) == [] and leaked(store, stolen) == []
        assert "read-key=1" in text and "read-env=1" in text and "No such file or directory" in text
        assert "write-project=1" in text and "write-home=1" in text and written == []
        assert "connect=1" in text and listener.connections == 0
        assert "bvharness" in text  # it kept the user's own uid: the sandbox, not a user switch, confined it
        assert leftovers() == [] and our_processes() == []
    finally:
        for p in written:
            p.unlink()
        for pid in leftovers():
            os.kill(pid, 9)


def test_hostile_agent_under_a_root_harness(settings, tmp_path, monkeypatch):
    """Root harness: the agent runs as `nobody` inside bwrap; the harness's project .env, root's home, the harness's
    /proc and other loopback ports are all out of reach; nothing it started survives."""
    home = make_user("bvvictim")  # a home with a key, as root can see it
    (REPO / ".env.bv-test").write_text(f"HF_TOKEN={DOT_ENV_SECRET}\n")
    listener = Listener()
    steps = hostile(home, listener.port)
    steps.insert(1, bash(f"cat {REPO}/.env.bv-test; cat /proc/{os.getpid()}/environ | tr '\\0' '\\n' | grep -c HF_TOKEN; "
                         f"echo mine > inside.txt && echo wrote-inside"))
    try:
        with ScriptedLLM(steps) as llm:
            model, quant = load_catalog(write_catalog(tmp_path, [scripted(llm)])).choose("scripted")
            result = simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    finally:
        (REPO / ".env.bv-test").unlink()
    text = tool_results(llm)
    assert "nobody" in text and "wrote-inside" in text and result.metrics[N.M_TOOL_CALLS] == 6
    assert leaked(text, [KEY.splitlines()[1], DOT_ENV_SECRET]) == []
    assert "read-key=1" in text and "read-env=1" in text and "write-project=1" in text and "connect=1" in text
    assert listener.connections == 0 and not (home / "proj" / "pwned.txt").exists()
    assert leftovers() == [] and our_processes() == []
    client, _ = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert run.data.tags[N.TAG_SANDBOX] == "bwrap" and run.data.params[N.PARAM_SANDBOX] == "bwrap"
    assert "+mine" in Path(client.download_artifacts(result.run_id, N.A_DIFF)).read_text()  # its own workspace it can change
    assert leaked(all_logged_text(client, result.run_id, result.trace_id), [DOT_ENV_SECRET]) == []


def test_two_users_one_after_the_other_and_at_once(toolchain_copy):
    users = {name: make_user(name) for name in ("bvalice", "bvbob")}
    with ScriptedLLM([bash("pwd; ls"), Step(content="Looked around.")]) as llm, \
            traversable(sys.executable, EXE, REPO, toolchain_copy):
        for name, home in users.items():
            (home / "proj" / "models.yaml").write_text(yaml.safe_dump({"default": "scripted", "models": [scripted(llm)]}))

        def start(name):
            home = users[name]
            return run_as(name, home, ["simulate", "--task", "fix_failing_test", "--config", str(home / "proj" / "models.yaml"),
                                       "--experiment", "two"], toolchain_copy)

        for name in users:  # one after the other (the second finds the first's folders on the machine)
            proc = start(name)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        procs = [start(name) for name in users]  # and at the same time
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
    for home in users.values():
        client, exp_id = tracking_client(Settings(MLFLOW_TRACKING_URI=store_uri(home), BV_EXPERIMENT="two"))
        runs = client.search_runs([exp_id])
        assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    prompts = {json.dumps(r["body"]["messages"][:2]) for r in llm.requests if len(r["body"]["messages"]) == 2}
    assert len(prompts) == 1  # every user's agent saw the same prompt (/workspace, /opt/bv/pi: no user's paths)


FIX = "sed -i 's|/ (len(values) - 1)|/ len(values)|' mathutils.py && echo fixed"


def test_pytest_check_passes_in_the_sandbox_and_a_missing_command_is_the_harness_error(settings, tmp_path, mathutils_repo):
    passing = write_task(tmp_path, "with_pytest", repository={"path": str(mathutils_repo)},
                         checks=[{"name": "tests_pass", "command": "python -m pytest -q"}])
    missing = write_task(tmp_path, "with_missing", repository={"path": str(mathutils_repo)},
                         checks=[{"name": "lint", "command": "no-such-linter --strict ."},
                                 {"name": "tests_pass", "command": "python -m pytest -q"}])
    results = {}
    for path in (passing, missing):
        with ScriptedLLM([bash(FIX), Step(content="Fixed.")]) as llm:
            model, quant = load_catalog(write_catalog(tmp_path, [scripted(llm)])).choose("scripted")
            results[path.stem] = simulate(load_task(str(path), tmp_path / "tasks"), model, quant, settings)
    ok = results["with_pytest"]
    assert ok.status == N.STATUS_SUCCESS and "passed" in ok.checks[0].output_tail
    bad = results["with_missing"]
    assert bad.status == N.STATUS_ERROR and bad.error == "check lint could not run: no-such-linter: command not found"
    assert bad.checks[1].passed  # the model's work was fine: the harness could not check it


def test_an_activated_harness_venv_stays_untouched(settings, tmp_path, monkeypatch):
    """The user ran `source .venv/bin/activate`; the agent installs packages and writes into "its" Python."""
    venv = REPO / ".venv"
    site = next((venv / "lib").glob("python3*/site-packages"))
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    monkeypatch.setenv("PATH", f"{venv / 'bin'}:{os.environ['PATH']}")

    def listing(folder: Path) -> str:
        return hashlib.sha256("\n".join(sorted(f"{p.relative_to(folder)} {p.stat().st_size}" for p in folder.rglob("*"))).encode()).hexdigest()

    before, tools_before = listing(site), listing(toolchain_dir())
    steps = [bash("which python pip uv; echo VIRTUAL_ENV=$VIRTUAL_ENV"),
             bash("pip install six 2>&1 | tail -1; uv pip install six 2>&1 | tail -1; "
                  "python -c \"import site; open(site.getsitepackages()[0] + '/bv-evil.pth', 'w').write('import os')\" 2>&1 | tail -1"),
             Step(content="Installed.")]
    with ScriptedLLM(steps) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted(llm)])).choose("scripted")
        simulate(load_task("fix_failing_test", REPO / "tasks"), model, quant, settings)
    text = tool_results(llm)
    assert "/opt/bv/toolchain/bin/python" in text and "VIRTUAL_ENV=\\n" in text  # its Python is the toolchain's
    assert "Read-only file system" in text  # and it tried to write there
    assert listing(site) == before and listing(toolchain_dir()) == tools_before


def test_task_setup_runs_before_the_agent_and_a_failing_one_is_an_error_before_any_model_call(settings, tmp_path, mathutils_repo):
    good = write_task(tmp_path, "with_setup", repository={"path": str(mathutils_repo)},
                      setup=["uv venv -q .venv && .venv/bin/python -c 'print(42)' > setup-ran.txt"],
                      checks=[{"name": "venv", "command": "test -x .venv/bin/python && grep -q 42 setup-ran.txt"}])
    bad = write_task(tmp_path, "bad_setup", repository={"path": str(mathutils_repo)},
                     setup=["echo preparing the venv; echo 'ERROR: no matching distribution for nonexistent-pkg' >&2; exit 1"],
                     checks=[{"name": "true", "command": "true"}])
    with ScriptedLLM([bash("ls -a"), Step(content="Looked.")]) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted(llm)])).choose("scripted")
        ok = simulate(load_task(str(good), tmp_path / "tasks"), model, quant, settings)
        asked = len(llm.requests)
        failed = simulate(load_task(str(bad), tmp_path / "tasks"), model, quant, settings)
    assert ok.status == N.STATUS_SUCCESS and ok.metrics[N.M_SETUP_S] > 0
    assert ".venv" in tool_results(llm)  # the agent found what the setup made...
    diff = Path(tracking_client(settings)[0].download_artifacts(ok.run_id, N.A_DIFF)).read_text()
    assert ".venv/" not in diff  # ...which is not the agent's work
    assert failed.status == N.STATUS_ERROR and len(llm.requests) == asked  # no model call
    assert failed.error.startswith("setup command failed (exit 1): echo preparing")
    assert failed.error.endswith("ERROR: no matching distribution for nonexistent-pkg")
    assert failed.checks == []


FAKE_BWRAP = "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n"


@pytest.mark.parametrize("case", ["missing", "no-userns"])
def test_bwrap_that_cannot_work_is_one_line_and_exit_2_with_no_run(tmp_path, case):
    fake = tmp_path / "bwrap"
    fake.write_text(FAKE_BWRAP)
    fake.chmod(0o755)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with ScriptedLLM([Step(content="Done.")]) as llm:
        catalog = write_catalog(tmp_path, [scripted(llm)])
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BV_TASKS_DIR": str(REPO / "tasks"), "BV_EXPERIMENT": "bad",
               "BV_BWRAP": str(tmp_path / "nothing-here") if case == "missing" else str(fake)}
        out = subprocess.run([str(EXE), "simulate", "--task", "fix_failing_test", "--config", str(catalog), "--sandbox", "bwrap"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    want = "apt-get install bubblewrap" if case == "missing" else "unprivileged user namespaces are disabled"
    assert want in out.stderr and llm.requests == []
    client, exp_id = tracking_client(Settings(MLFLOW_TRACKING_URI=uri, BV_EXPERIMENT="bad"))
    assert client.search_runs([exp_id]) == []


def test_the_package_index_reaches_only_commands_that_ask(tmp_path):
    """`network: packages` gets this machine's index settings (CA bundle, pip config) and the network; `none`
    gets neither: a real download from the package index works in one and not the other."""
    from beyond_vibes.sandbox import workspace

    probe = ("env | grep -c -E '^(SSL_CERT_FILE|PIP_CERT|REQUESTS_CA_BUNDLE)=' ; test -f ~/.config/pip/pip.conf && echo has-pip-conf; "
             "python -m pip download --no-deps --no-cache-dir -q -d \"$TMPDIR/dl\" six==1.16.0 >/dev/null 2>&1 && echo downloaded")
    with workspace(load_task("fix_failing_test", REPO / "tasks")) as ws:
        code_none, out_none, _ = ws.run(probe, 120, network="none")
        code_pkg, out_pkg, _ = ws.run(probe, 120, network="packages")
    assert out_none.split()[0] == "0" and "downloaded" not in out_none
    assert "downloaded" in out_pkg and int(out_pkg.split()[0]) >= 1
    if (Path.home() / ".config" / "pip" / "pip.conf").exists():
        assert "has-pip-conf" in out_pkg and "has-pip-conf" not in out_none


def test_package_index_credentials_reach_a_packages_check_but_never_the_store(settings, tmp_path, monkeypatch, mathutils_repo):
    password = "idxPassw0rd-0123456789"
    monkeypatch.setenv("PIP_INDEX_URL", f"https://bob:{password}@pypi.invalid/simple")
    task = write_task(tmp_path, "index_creds", repository={"path": str(mathutils_repo)},
                      checks=[{"name": "index", "command": "echo \"$PIP_INDEX_URL\"", "network": "packages"},
                              {"name": "offline", "command": "echo \"index=$PIP_INDEX_URL\""}])
    with ScriptedLLM([Step(content="Nothing to do.")]) as llm:
        model, quant = load_catalog(write_catalog(tmp_path, [scripted(llm)])).choose("scripted")
        result = simulate(load_task(str(task), tmp_path / "tasks"), model, quant, settings)
    assert password in result.checks[0].output_tail  # the check that asked for the index has it...
    assert result.checks[1].output_tail.strip() == "index="  # ...the one that did not, has nothing
    client, _ = tracking_client(settings)
    logged = all_logged_text(client, result.run_id, result.trace_id)
    assert "pypi.invalid" in logged and password not in logged  # ...and the store never sees it
