"""A local HTTP server speaking the Hugging Face hub paths huggingface_hub and our downloader use.

It stands in for the hub only (no network here) and serves real GGUF files from disk:
GET /api/models/{repo}/revision/{rev}, GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=true,
HEAD/GET /{repo}/resolve/{rev}/{file} (with X-Repo-Commit, ETag, Content-Length, Range).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from beyond_vibes.runtime.loopback import LoopbackServer, QuietHandler, send_json


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class FakeRepo:
    files: dict[str, Path]  # repo path -> file on disk
    commit: str = "a" * 40
    gated: bool = False
    lie_sha256: set[str] = field(default_factory=set)  # paths whose advertised sha256 is wrong
    _sha: dict[str, str] = field(default_factory=dict)

    def sha(self, path: str) -> str:
        if path not in self._sha:
            self._sha[path] = file_sha256(self.files[path])
        real = self._sha[path]
        return ("0" * 64) if path in self.lie_sha256 else real

    def update(self, path: str, file: Path, commit: str) -> None:
        self.files[path] = file
        self._sha.pop(path, None)
        self.commit = commit


class FakeHub(LoopbackServer):
    def __init__(self, repos: dict[str, FakeRepo], token: str | None = None):
        super().__init__()
        self.repos = repos
        self.token = token
        self.requests: list[tuple[str, str]] = []

    @property
    def endpoint(self) -> str:
        return self.url


_REVISION = re.compile(r"^/api/models/([^/]+/[^/]+)/revision/([^/]+)$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class _Handler(QuietHandler):
    owner: FakeHub

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _error(self, status: int, code: str) -> None:
        send_json(self, status, {"error": code}, headers={"X-Error-Code": code})

    def _json(self, obj) -> None:
        send_json(self, 200, obj)

    def _repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.owner.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound")
            return None
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.owner.token}":
            self._error(403, "GatedRepo")
            return None
        return repo

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.owner.requests.append((self.command, path))
        if m := _REVISION.match(path):
            if repo := self._repo(m.group(1)):
                rev = m.group(2)
                if rev not in ("main", repo.commit):
                    return self._error(404, "RevisionNotFound")
                self._json({"id": m.group(1), "modelId": m.group(1), "sha": repo.commit, "private": False,
                            "siblings": [{"rfilename": p} for p in repo.files]})
        elif m := _TREE.match(path):
            if repo := self._repo(m.group(1)):
                sub = m.group(3) or ""
                entries = [{"type": "file", "path": p, "size": f.stat().st_size, "oid": hashlib.sha1(p.encode()).hexdigest(),
                            "lfs": {"oid": repo.sha(p), "size": f.stat().st_size, "pointerSize": 134}}
                           for p, f in sorted(repo.files.items()) if p.startswith(sub)]
                self._json(entries)
        elif m := _RESOLVE.match(path):
            if repo := self._repo(m.group(1)):
                file = repo.files.get(m.group(3))
                if file is None:
                    return self._error(404, "EntryNotFound")
                self._send_file(repo, m.group(3), file, head)
        else:
            self._error(404, "NotFound")

    def _send_file(self, repo: FakeRepo, rel: str, file: Path, head: bool) -> None:
        size = file.stat().st_size
        start = 0
        rng = self.headers.get("Range")
        if rng and (m := re.match(r"bytes=(\d+)-", rng)):
            start = int(m.group(1))
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", f'"{repo.sha(rel)}"')
        self.send_header("X-Linked-Etag", f'"{repo.sha(rel)}"')
        self.send_header("X-Linked-Size", str(size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        if head:
            return
        with file.open("rb") as f:
            f.seek(start)
            for block in iter(lambda: f.read(1 << 20), b""):
                try:
                    self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    return


FakeHub.handler = _Handler
