"""Hugging Face hub: resolve a revision to a commit, list its files with sha256/size, download and verify."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import build_hf_headers

from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings

DEFAULT_ENDPOINT = "https://huggingface.co"
try:  # huggingface_hub 2.x talks through its own httpx fork; its connection errors are not httpx's
    import httpx2

    NETWORK_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, httpx2.HTTPError, OSError)
except ImportError:
    NETWORK_ERRORS = (httpx.HTTPError, OSError)


class ChecksumError(Exception):
    """A downloaded file does not match the sha256/size the source reported: it is never used or uploaded."""


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None  # LFS files (all GGUFs) carry one; small git files do not


@dataclass(frozen=True)
class HubSnapshot:
    repo_id: str
    revision: str  # what was asked for (branch, tag or sha)
    commit: str  # what it resolved to
    files: list[HubFile]


class HuggingFace:
    def __init__(self, settings: Settings):
        self.endpoint = (settings.hf_endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = settings.hf_token.get_secret_value() if settings.hf_token else None
        self.api = HfApi(endpoint=self.endpoint, token=self.token or False)

    @contextmanager
    def _errors(self, repo_id: str, revision: str) -> Iterator[None]:
        try:
            yield
        except GatedRepoError:
            hint = "HF_TOKEN is set but has no access" if self.token else "set HF_TOKEN"
            raise ConfigError(f"hugging face: {repo_id} is gated: accept its license on the hub and {hint}") from None
        except RevisionNotFoundError:
            raise ConfigError(f"hugging face: {repo_id} has no revision {revision!r} (models.yaml: revision)") from None
        except RepositoryNotFoundError:
            hint = "" if self.token else " (if it is private, set HF_TOKEN)"
            raise ConfigError(f"hugging face: repository {repo_id!r} not found at {self.endpoint}{hint} (models.yaml: repo_id)") from None
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else "?"
            raise ConfigError(f"hugging face: {repo_id}@{revision}: HTTP {status} from {self.endpoint}") from None
        except NETWORK_ERRORS as e:
            raise ConfigError(f"hugging face: cannot reach {self.endpoint} ({type(e).__name__}); check HF_ENDPOINT or the network") from None

    def snapshot(self, repo_id: str, revision: str | None = None) -> HubSnapshot:
        rev = revision or "main"
        with self._errors(repo_id, rev):
            commit = self.api.model_info(repo_id, revision=rev).sha
            tree = self.api.list_repo_tree(repo_id, revision=commit, recursive=True)
            files = [HubFile(f.path, int(f.size), f.lfs.sha256 if getattr(f, "lfs", None) else None)
                     for f in tree if hasattr(f, "size")]
        return HubSnapshot(repo_id, rev, commit, files)

    def download(self, repo_id: str, commit: str, file: HubFile, dest: Path,
                 progress: Callable[[int], None] = lambda n: None) -> Path:
        """Stream `file` to `dest`, hashing as it arrives; resumes a `.part` left by an interrupted run.
        The file appears under `dest` only once its size and sha256 match what the hub reported."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        have = part.stat().st_size if part.exists() else 0
        if have > file.size:
            part.unlink()
            have = 0
        if have:
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            progress(have)
        url = hf_hub_url(repo_id, file.path, revision=commit, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.token or False)
        if have:
            headers["Range"] = f"bytes={have}-"
        with self._errors(repo_id, commit), httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=60) as r:
            if r.status_code == 416 or (have and r.status_code == 200):  # no range support: start over
                have, digest = 0, hashlib.sha256()
                part.unlink(missing_ok=True)
            if r.status_code >= 400 and r.status_code != 416:
                r.read()
                from huggingface_hub.utils import hf_raise_for_status

                hf_raise_for_status(r)
            with part.open("ab" if have else "wb") as out:
                for chunk in r.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    progress(len(chunk))
        size = part.stat().st_size
        if size != file.size or (file.sha256 and digest.hexdigest() != file.sha256):
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{repo_id}/{file.path}@{commit[:12]}: got {size} bytes sha256 {digest.hexdigest()[:12]}, "
                f"hub says {file.size} bytes sha256 {(file.sha256 or '?')[:12]}; refused"
            )
        part.replace(dest)
        return dest
