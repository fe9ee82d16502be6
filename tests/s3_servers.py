"""Real S3-compatible servers on loopback for tests: `rclone serve s3` (stores real files, enforces keys)
and `moto_server` (closest to AWS responses)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from beyond_vibes.procs import stop_group
from beyond_vibes.runtime.probe import free_port

ACCESS, SECRET = "bv-test-access-key", "bv-test-secret-key-0123456789"


class S3Server:
    kind = ""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"bv-{self.kind}-"))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> "S3Server":
        log = (self.dir / "server.log").open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.client().list_buckets()
                return self
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.dir / "server.log").read_text()[-2000:])
                time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not start")

    def __exit__(self, *exc) -> None:
        stop_group(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, access: str = ACCESS, secret: str = SECRET):
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                            region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                                   retries={"max_attempts": 1}))

    def env(self, bucket: str) -> dict[str, str]:
        return {"S3_ENDPOINT": self.endpoint, "S3_BUCKET": bucket, "S3_ACCESS_KEY": ACCESS, "S3_SECRET_KEY": SECRET}


class RcloneS3(S3Server):
    kind = "rclone"

    def command(self) -> list[str]:
        rclone = Path(sys.executable).parent / "rclone"
        (self.dir / "data").mkdir()
        return [str(rclone), "serve", "s3", "--auth-key", f"{ACCESS},{SECRET}", "--addr", f"127.0.0.1:{self.port}",
                "--config", "/dev/null", str(self.dir / "data")]


class MotoS3(S3Server):
    kind = "moto"

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
