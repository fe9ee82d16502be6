"""What is installed and reachable: llama.cpp tools, pi, node, the MLflow store, S3, a container engine, agent
sandboxes, GPUs."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from beyond_vibes.settings import Settings


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout + out.stderr).strip().splitlines()
        return next((ln for ln in text if "version" in ln.lower()), text[-1] if text else "?")
    except (OSError, subprocess.SubprocessError):
        return "?"


def diagnose(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    server = settings.find_llama_server()
    found.append(Finding("llama-server", server is not None,
                         f"{server} ({_version([str(server), '--version'])})" if server else "missing: run ./setup.sh or set LLAMA_SERVER_BIN"))
    for tool in ("llama-quantize", "llama-bench"):
        path = settings.find_llama_tool(tool)
        found.append(Finding(tool, path is not None, str(path) if path else "missing: run ./setup.sh", required=False))
    pi = settings.find_pi()
    found.append(Finding("pi", pi is not None, f"{pi} ({_version([str(pi), '--version'])})" if pi else "missing: run ./setup.sh or set PI_BIN"))
    node = shutil.which("node")
    found.append(Finding("node", node is not None, f"{node} ({_version(['node', '--version'])})" if node else "missing: pi needs node >= 20.6"))
    found.append(_mlflow(settings))
    found.append(_s3(settings))
    found.append(_containers())
    found += _sandboxes()
    gpu = shutil.which("nvidia-smi") or shutil.which("rocm-smi")
    found.append(Finding("gpu tools", gpu is not None, gpu or "none (CPU only; VRAM is not sampled)", required=False))
    return found


def _sandboxes() -> list[Finding]:
    """Which agent sandboxes work here, which one `auto` picks, and the agent toolchain they mount."""
    from beyond_vibes.confinement import available, get_sandbox, toolchain_dir
    from beyond_vibes.errors import ConfigError

    found = [Finding(f"sandbox {name}", why is None, "works" if why is None else why, required=False)
             for name, why in available().items()]
    try:
        found.append(Finding("sandbox auto", True, f"{get_sandbox('auto').name} (simulate's default)"))
    except ConfigError as e:
        found.append(Finding("sandbox auto", False, str(e)))
    try:
        found.append(Finding("agent toolchain", True, str(toolchain_dir())))
    except ConfigError as e:
        found.append(Finding("agent toolchain", False, str(e)))
    return found


def _mlflow(settings: Settings) -> Finding:
    from beyond_vibes.tracking import tracking_client

    from beyond_vibes.redact import safe_uri

    uri = safe_uri(settings.tracking_uri)
    try:
        client, _ = tracking_client(settings)
        client.search_experiments(max_results=1)
        return Finding("mlflow store", True, uri)
    except Exception as e:  # any failure means "not reachable"; the detail says why
        return Finding("mlflow store", False, f"{uri}: {type(e).__name__}: {safe_uri(str(e).splitlines()[0][:200])}")


def _s3(settings: Settings) -> Finding:
    if not settings.s3_bucket:
        return Finding("s3", True, "not configured (models stay in the local store)", required=False)
    try:
        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region or "us-east-1",
            aws_access_key_id=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            aws_secret_access_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
            config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
        )
        s3.head_bucket(Bucket=settings.s3_bucket)
        return Finding("s3", True, f"bucket {settings.s3_bucket} at {settings.s3_endpoint or 'AWS'}", required=False)
    except Exception as e:
        return Finding("s3", False, f"bucket {settings.s3_bucket}: {type(e).__name__}", required=False)


def _containers() -> Finding:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return Finding("container engine", True, str(client.api.base_url), required=False)
    except Exception:
        return Finding("container engine", False, "none reachable (DOCKER_HOST / podman socket); process runtime only", required=False)
