"""A team's MLflow tracking server: PostgreSQL for runs and traces (many writers at once, unlike one SQLite file),
artifacts in the S3-compatible store of the model mirror (the same S3_* settings), `mlflow server` on top with
artifacts proxied (clients need no S3 keys). Every command then works against it with
`MLFLOW_TRACKING_URI=http://HOST:PORT`. Started and stopped as one context: nothing outlives it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import spawn, stop_group
from beyond_vibes.settings import Settings, scrubbed_environ

ARTIFACT_PREFIX = "mlflow-artifacts"


@dataclass
class TeamServer:
    url: str  # what MLFLOW_TRACKING_URI should be
    backend_uri: str  # postgresql+psycopg2://... (no password: a loopback cluster with trust auth)
    artifacts: str  # s3://bucket/mlflow-artifacts
    log_path: Path


def postgres_bin() -> Path:
    """The folder with initdb/pg_ctl: PG_BIN, else the newest /usr/lib/postgresql/<v>/bin, else PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ConfigError("PostgreSQL not found: apt-get install -y postgresql (Debian), or set PG_BIN to the folder with "
                      "initdb and pg_ctl")


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise ConfigError("running as root needs a `postgres` user (the postgresql package creates it)") from None
        for dirpath, _, files in os.walk(path):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SimulationError(f"{what} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:] or out.returncode}")


@contextmanager
def postgres(data_dir: Path, port: int) -> Iterator[str]:
    """A private PostgreSQL cluster on loopback (created on first use), with a `mlflow` database; yields its URI."""
    bin_dir = postgres_bin()
    pg = data_dir / "postgres"
    if not (pg / "PG_VERSION").exists():
        pg.mkdir(parents=True, exist_ok=True)
        _chown_postgres(pg)
        _run(_as_postgres([str(bin_dir / "initdb"), "-D", str(pg), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--locale=C.UTF-8"]), "initdb")
    _chown_postgres(pg)
    options = f"-p {port} -k {pg} -c listen_addresses=127.0.0.1"
    _run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pg), "-w", "-l", str(pg / "server.log"), "-o", options,
                       "start"]), "starting PostgreSQL")
    try:
        out = subprocess.run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tAc",
                              "SELECT 1 FROM pg_database WHERE datname = 'mlflow'"], capture_output=True, text=True, timeout=60)
        if out.stdout.strip() != "1":
            _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"], "createdb")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pg), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=120)


def artifacts_env(settings: Settings) -> tuple[str, dict[str, str]]:
    """(s3://bucket/prefix, the server's S3 variables): the keys reach only the server process."""
    if not settings.s3_bucket:
        raise ConfigError("server: artifacts go to S3: set S3_BUCKET (and S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY for "
                          "an S3-compatible store such as MinIO)")
    env = {"AWS_DEFAULT_REGION": settings.s3_region or "us-east-1"}
    if settings.s3_endpoint:
        env["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint
    if settings.s3_access_key and settings.s3_secret_key:
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key.get_secret_value()
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_key.get_secret_value()
    return f"s3://{settings.s3_bucket}/{ARTIFACT_PREFIX}", env


@contextmanager
def team_server(settings: Settings, data_dir: Path, host: str = "127.0.0.1", port: int = 5000, pg_port: int = 5433,
                workers: int = 2, ready_timeout_s: float = 240.0) -> Iterator[TeamServer]:
    artifacts, s3_env = artifacts_env(settings)  # bad input first: nothing started yet
    postgres_bin()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "mlflow-server.log"
    with postgres(data_dir, pg_port) as backend:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        env = {**scrubbed_environ(), **s3_env}
        with log_path.open("ab") as log:
            proc = spawn([str(mlflow_bin), "server", "--backend-store-uri", backend, "--artifacts-destination", artifacts,
                          "--host", host, "--port", str(port), "--workers", str(workers)],
                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            url = f"http://{host}:{port}"
            deadline = time.monotonic() + ready_timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None:
                    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                    raise SimulationError(f"mlflow server exited with code {proc.returncode}: {tail}")
                if time.monotonic() > deadline:
                    raise SimulationError(f"mlflow server not healthy after {ready_timeout_s:.0f} s; see {log_path}")
                time.sleep(0.5)
            yield TeamServer(url, backend, artifacts, log_path)
        finally:
            stop_group(proc, grace_s=20)
