"""Settings from the environment and `.env`: store, tracking, secrets, tool locations."""

from __future__ import annotations

import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from beyond_vibes.redact import safe_uri, uri_password

LLAMA_CPP_VERSION = "0.3.36"  # llama-cpp-python sdist whose vendored llama.cpp setup.sh builds
PI_VERSION = "0.73.1"

# Environment variable names whose values are secrets wherever they appear (never logged, never given
# to the agent). Anything matching this pattern is treated the same way.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
SECRET_FIELDS = ("s3_access_key", "s3_secret_key", "hf_token", "judge_api_key")
URI_FIELDS = ("mlflow_tracking_uri", "s3_endpoint", "hf_endpoint", "judge_base_url")  # may carry user:password@


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "beyond_vibes").exists():
            return parent
    return Path.cwd()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Files users write.
    models_file: Path = Field(default=Path("models.yaml"), alias="BV_MODELS_FILE")
    tasks_dir: Path = Field(default=Path("tasks"), alias="BV_TASKS_DIR")
    judges_dir: Path = Field(default=Path("judges"), alias="BV_JUDGES_DIR")  # rubrics, labels/, compiled/
    evals_dir: Path = Field(default=Path("evals"), alias="BV_EVALS_DIR")  # quick-eval sets: <set>.yaml + <set>.jsonl
    # Local state: the default MLflow store, model cache, run scratch space.
    home: Path = Field(default=Path(".beyond-vibes"), alias="BV_HOME")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "beyond-vibes", alias="BV_CACHE_DIR")
    model_dir_override: Path | None = Field(default=None, alias="BV_MODEL_DIR")  # the local model store

    mlflow_tracking_uri: str | None = Field(default=None, alias="MLFLOW_TRACKING_URI")
    mlflow_experiment: str = Field(default="beyond-vibes", alias="BV_EXPERIMENT")

    s3_bucket: str | None = Field(default=None, alias="S3_BUCKET")
    s3_endpoint: str | None = Field(default=None, alias="S3_ENDPOINT")
    s3_region: str | None = Field(default=None, alias="S3_REGION")
    s3_access_key: SecretStr | None = Field(default=None, alias="S3_ACCESS_KEY")
    s3_secret_key: SecretStr | None = Field(default=None, alias="S3_SECRET_KEY")

    hf_token: SecretStr | None = Field(default=None, alias="HF_TOKEN")
    hf_endpoint: str | None = Field(default=None, alias="HF_ENDPOINT")

    judge_model: str | None = Field(default=None, alias="JUDGE_MODEL")
    judge_base_url: str | None = Field(default=None, alias="JUDGE_BASE_URL")
    judge_api_key: SecretStr | None = Field(default=None, alias="JUDGE_API_KEY")

    docker_host: str | None = Field(default=None, alias="DOCKER_HOST")  # Docker, or podman's Docker API socket
    llama_server_bin: Path | None = Field(default=None, alias="LLAMA_SERVER_BIN")
    pi_bin: Path | None = Field(default=None, alias="PI_BIN")
    git_mirrors: Path | None = Field(default=None, alias="BV_GIT_MIRRORS")  # <owner>/<name>.bundle or bare repos

    @property
    def model_dir(self) -> Path:
        """Downloaded models (`<repo_id>/<file>` + checksum sidecars); BV_MODEL_DIR puts them on a big disk."""
        return self.model_dir_override or self.cache_dir / "models"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def with_bucket(self, catalog_bucket: str | None) -> "Settings":
        """S3 is used when S3_BUCKET or S3_ENDPOINT is set; models.yaml's `bucket` fills in a missing S3_BUCKET.
        (A bucket in models.yaml alone does not switch a laptop to AWS.)"""
        if self.s3_bucket or not self.s3_endpoint or not catalog_bucket:
            return self
        return self.model_copy(update={"s3_bucket": catalog_bucket})

    def secret_values(self) -> list[str]:
        """Every secret value we know of: settings fields plus secret-looking environment variables."""
        values = [
            s.get_secret_value()
            for s in (self.s3_access_key, self.s3_secret_key, self.hf_token, self.judge_api_key)
            if s is not None
        ]
        values += [v for k, v in os.environ.items() if SECRET_NAME.search(k)]
        values += [uri_password(getattr(self, f)) for f in URI_FIELDS]
        values += [uri_password(os.environ.get("MLFLOW_TRACKING_URI"))]
        from beyond_vibes.confinement import index_secrets

        values += index_secrets()  # package index credentials a `packages` command may print
        # Short values ("1", "true") would redact half of every log; real keys are longer.
        return sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)

    def without_secrets(self) -> "Settings":
        """A copy safe to send to another machine: no secret fields, no password in the tracking URI."""
        update: dict = {f: None for f in SECRET_FIELDS}
        if self.mlflow_tracking_uri:
            update["mlflow_tracking_uri"] = safe_uri(self.mlflow_tracking_uri)
        return self.model_copy(update=update)

    def with_secrets_from(self, local: "Settings") -> "Settings":
        """This (sent) copy with the secrets of `local` (Settings() where it runs: its environment and .env); the
        tracking URI's credentials too, when `local` names the same store."""
        update: dict = {f: getattr(local, f) for f in SECRET_FIELDS}
        if local.mlflow_tracking_uri and safe_uri(local.mlflow_tracking_uri) == self.mlflow_tracking_uri:
            update["mlflow_tracking_uri"] = local.mlflow_tracking_uri
        return self.model_copy(update=update)

    def find_llama_server(self) -> Path | None:
        return _find_tool("llama-server", self.llama_server_bin, self.llama_bin_dirs())

    def find_llama_tool(self, name: str) -> Path | None:
        dirs = ([self.llama_server_bin.parent] if self.llama_server_bin else []) + self.llama_bin_dirs()
        return _find_tool(name, None, dirs)

    def llama_bin_dirs(self) -> list[Path]:
        root = self.cache_dir / "llama.cpp"
        pinned = root / LLAMA_CPP_VERSION / "bin"
        others = sorted(root.glob("*/bin"), reverse=True) if root.exists() else []
        return [pinned] + [d for d in others if d != pinned]

    def find_pi(self) -> Path | None:
        local = [project_root() / ".tools" / "pi" / "node_modules" / ".bin", Path.cwd() / ".tools" / "pi" / "node_modules" / ".bin"]
        return _find_tool("pi", self.pi_bin, local)


def scrubbed_environ() -> dict[str, str]:
    """Our environment without anything secret-looking: for servers we start (they need CUDA/ROCm variables,
    library paths, proxies; never our keys)."""
    return {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}


def _find_tool(name: str, override: Path | None, dirs: list[Path]) -> Path | None:
    if override:
        return override if override.exists() else None
    for d in dirs:
        candidate = d / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def env_value(name: str) -> str | None:
    """A variable from the environment, else from ./.env (where API keys named in models.yaml usually live)."""
    if os.environ.get(name):
        return os.environ[name]
    from dotenv import dotenv_values

    return dotenv_values(".env").get(name) if Path(".env").exists() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
