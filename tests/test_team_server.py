"""The team tracking server for real: PostgreSQL + an S3-compatible store + `mlflow server` on loopback; a sweep with
two simulations writing at once against it, then a resume against it; nothing left running afterwards. PostgreSQL
refuses connections without its generated password, which no command line, log or printout shows."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError
from beyond_vibes.runtime.probe import free_port
from beyond_vibes.settings import Settings
from beyond_vibes.redact import uri_password
from beyond_vibes.team_server import PASSWORD_FILE, postgres, postgres_bin, team_server
from conftest import REPO, SMOLLM, have_pi, our_processes
from s3_servers import RcloneS3

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not have_pi(), reason="pi not installed: run ./setup.sh")]

BUCKET = "bv-team"


def have_postgres() -> bool:
    try:
        return (postgres_bin() / "initdb").exists()
    except ConfigError:
        return False


@pytest.fixture
def team_parts(tmp_path):
    """A data folder the postgres user can reach (under /tmp) and settings for a real S3 server with our bucket."""
    data = Path(tempfile.mkdtemp(prefix="bv-team-"))
    data.chmod(0o755)
    try:
        with RcloneS3() as s3:
            s3.client().create_bucket(Bucket=BUCKET)
            yield data, Settings(**s3.env(BUCKET), BV_HOME=str(tmp_path / "home")), s3
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_without_s3_the_server_says_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="set S3_BUCKET"):
        with team_server(Settings(S3_BUCKET=None), tmp_path):
            pass


@pytest.mark.skipif(not have_postgres(), reason="PostgreSQL not installed (apt-get install -y postgresql)")
def test_a_sweep_with_parallel_writers_and_a_resume_against_the_team_server(tmp_path, team_parts):
    data, settings, s3 = team_parts
    port = free_port()
    with team_server(settings, data, port=port, pg_port=free_port()) as team:
        assert team.backend_uri.startswith("postgresql+psycopg2://")
        catalog = tmp_path / "models.yaml"
        catalog.write_text(yaml.safe_dump({"default": "smollm2-135m", "models": [
            {**SMOLLM, "engine": {"ctx": 4096, "threads": 2, "parallel": 2}}]}))
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump({"name": "team", "models": [{"name": "smollm2-135m"}],
                                        "tasks": ["fix_failing_test"], "repeats": 2, "max_turns": 1,
                                        "timeout_s": 300, "parallel": 2}))
        # The clients hold no S3 keys: artifacts go through the server.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))}
        env.update(MLFLOW_TRACKING_URI=team.url, BV_EXPERIMENT="team-sweep", BV_HOME=str(tmp_path / "home"),
                   BV_TASKS_DIR=str(REPO / "tasks"))
        exe = str(Path(sys.executable).parent / "beyond-vibes")
        out = subprocess.run([exe, "sweep", str(plan), "--config", str(catalog)], env=env, capture_output=True,
                             text=True, timeout=1200)
        assert out.returncode == 0, out.stderr
        assert "[2/2]" in out.stdout and "1 model load(s)" in out.stdout
        from mlflow import MlflowClient

        client = MlflowClient(team.url)
        exp = client.get_experiment_by_name("team-sweep")
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
        # the two simulations overlapped in time: parallel writers
        (a, b) = sorted(runs, key=lambda r: r.info.start_time)
        assert b.info.start_time < a.info.end_time
        for r in runs:
            assert r.data.tags[N.TAG_TRACE_ID] and r.data.metrics[N.M_TOKENS_COMPLETION] > 0
            assert N.A_SUMMARY in {f.path for f in client.list_artifacts(r.info.run_id)}
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert any(k.endswith(N.A_SUMMARY) for k in keys) and all(k.startswith("mlflow-artifacts/") for k in keys)
        again = subprocess.run([exe, "sweep", str(plan), "--config", str(catalog), "--resume"], env=env,
                               capture_output=True, text=True, timeout=600)
        assert again.returncode == 0 and "2 skipped, 0 model load(s)" in again.stdout, again.stderr
        assert len(client.search_runs([exp.experiment_id])) == 2
    for pattern in (str(data), f"--port {port}"):  # PostgreSQL and mlflow server (and its workers) are gone
        probe = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
        assert probe.stdout.strip() == "", pattern
    assert our_processes() == []


@pytest.mark.skipif(not have_postgres(), reason="PostgreSQL not installed (apt-get install -y postgresql)")
def test_postgres_asks_for_its_generated_password_which_nobody_sees(team_parts):
    import psutil
    import psycopg2
    from mlflow import MlflowClient

    data, settings, _ = team_parts
    pg_port = free_port()
    with team_server(settings, data, port=free_port(), pg_port=pg_port) as team:
        password = uri_password(team.backend_uri)
        pwfile = data / PASSWORD_FILE
        assert password and len(password) >= 32 and pwfile.read_text().strip() == password
        assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
        where = {"host": "127.0.0.1", "port": pg_port, "user": "postgres", "dbname": "mlflow", "connect_timeout": 10}
        for attempt in ({}, {"password": "not-the-password"}, {"host": str(data / "postgres")}):  # TCP and socket
            with pytest.raises(psycopg2.OperationalError, match="password"):
                psycopg2.connect(**{**where, **attempt}).close()
        with psycopg2.connect(**where, password=password) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM experiments")  # mlflow server made its tables with it
            assert cur.fetchone()[0] >= 0
        conn.close()
        assert MlflowClient(team.url).create_experiment("through-the-server")
        # Nobody sees it: no command line (`ps`), not the server's log, not the object's printout.
        shown = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
        assert [c for c in shown if password in c] == []
        assert password not in team.log_path.read_text(errors="replace") and password not in repr(team)


@pytest.mark.skipif(not have_postgres(), reason="PostgreSQL not installed (apt-get install -y postgresql)")
def test_a_cluster_made_without_a_password_is_refused_with_the_fix(tmp_path):
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "PG_VERSION").write_text("15\n")  # an earlier, trust-authenticated cluster
    with pytest.raises(ConfigError, match="trust authentication .* move it away"):
        with postgres(tmp_path, free_port()):
            pass
