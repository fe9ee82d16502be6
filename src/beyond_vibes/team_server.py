"""A team's MLflow tracking server: PostgreSQL for runs and traces (many writers at once, unlike one SQLite file),
artifacts in the S3-compatible store of the model mirror (the same S3_* settings), `mlflow server` on top with
artifacts proxied (clients need no S3 keys). Every command then works against it with
`MLFLOW_TRACKING_URI=http://HOST:PORT`. Started and stopped as one context: nothing outlives it.

PostgreSQL asks for a password on every connection (scram-sha-256, local socket and TCP alike): a generated one, kept
in `<data>/postgres.password` (mode 0600). mlflow server gets it inside its backend URI through its environment
(MLFLOW_BACKEND_STORE_URI), never on a command line `ps` shows, and it is never printed."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import spawn, stop_group
from beyond_vibes.redact import Redactor, uri_password
from beyond_vibes.settings import Settings, scrubbed_environ

ARTIFACT_PREFIX = "mlflow-artifacts"
PASSWORD_FILE = "postgres.password"


@dataclass
class TeamServer:
    url: str  # what MLFLOW_TRACKING_URI should be
    backend_uri: str = field(repr=False)  # postgresql+psycopg2://postgres:<password>@...: never print it
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
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for dirpath, _, files in os.walk(path):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if out.returncode != 0:
        raise SimulationError(f"{what} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:] or out.returncode}")


def _password(data_dir: Path, pg: Path) -> tuple[Path, str]:
    """The cluster's password file (made before initdb, mode 0600) and the password."""
    path = data_dir / PASSWORD_FILE
    if (pg / "PG_VERSION").exists() and not path.exists():
        raise ConfigError(f"{pg}: a PostgreSQL cluster without {path.name} (made with trust authentication by an "
                          "earlier beyond-vibes): move it away to have a password-protected one made")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    if os.geteuid() == 0:  # initdb runs as `postgres` and reads it (--pwfile)
        _chown_postgres(path)
    return path, path.read_text().strip()


@contextmanager
def postgres(data_dir: Path, port: int, listen: str = "127.0.0.1") -> Iterator[str]:
    """A private PostgreSQL cluster (created on first use) listening on `listen` (loopback by default), password
    auth for every connection, with a `mlflow` database; yields its URI (the password inside)."""
    bin_dir = postgres_bin()
    pg = data_dir / "postgres"
    pwfile, password = _password(data_dir, pg)
    if not (pg / "PG_VERSION").exists():
        pg.mkdir(parents=True, exist_ok=True)
        _chown_postgres(pg)
        _run(_as_postgres([str(bin_dir / "initdb"), "-D", str(pg), "-U", "postgres", "--auth=scram-sha-256",
                           f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"]), "initdb")
    _chown_postgres(pg)
    options = f"-p {port} -k {pg} -c listen_addresses={listen}"
    _run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pg), "-w", "-l", str(pg / "server.log"), "-o", options,
                       "start"]), "starting PostgreSQL")
    try:
        env = {**scrubbed_environ(), "PGPASSWORD": password}  # psql/createdb read it from there, not from argv
        out = subprocess.run([str(bin_dir / "psql"), "-h", str(pg), "-p", str(port), "-U", "postgres", "-tAc",
                              "SELECT 1 FROM pg_database WHERE datname = 'mlflow'"], capture_output=True, text=True,
                             timeout=60, env=env)
        if out.stdout.strip() != "1":
            _run([str(bin_dir / "createdb"), "-h", str(pg), "-p", str(port), "-U", "postgres", "mlflow"], "createdb", env)
        host = listen.split(",")[0].strip()
        host = "127.0.0.1" if host in ("*", "0.0.0.0", "") else host
        yield f"postgresql+psycopg2://postgres:{quote(password, safe='')}@{host}:{port}/mlflow"
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
        # The backend URI (with the password) in the server's environment: argv is world-readable in `ps`.
        env = {**scrubbed_environ(), **s3_env, "MLFLOW_BACKEND_STORE_URI": backend}
        with log_path.open("ab") as log:
            proc = spawn([str(mlflow_bin), "server", "--artifacts-destination", artifacts,
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
                    shown = Redactor([uri_password(backend) or ""]).text(str(tail))  # the URI, its password: masked
                    raise SimulationError(f"mlflow server exited with code {proc.returncode}: {shown}")
                if time.monotonic() > deadline:
                    raise SimulationError(f"mlflow server not healthy after {ready_timeout_s:.0f} s; see {log_path}")
                time.sleep(0.5)
            yield TeamServer(url, backend, artifacts, log_path)
        finally:
            stop_group(proc, grace_s=20)
