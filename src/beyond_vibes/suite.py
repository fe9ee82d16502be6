"""The task suite as a user surveys it (`tasks list`): per task its archetype, repository and pinned commit,
whether it runs offline, its checks, and whether `tasks validate` proved it (a record per task file version)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from beyond_vibes.settings import Settings
from beyond_vibes.tasks import Task


@dataclass(frozen=True)
class SuiteRow:
    name: str
    archetype: str
    repository: str
    commit: str  # pinned commit (short), "snapshot" for a plain folder, or the branch it follows
    offline: str  # yes, or why not
    checks: int
    proved: str  # "proved <date>", "failed <date>: why", "stale (task changed)", "no solution", "-"


def _record_path(settings: Settings, task: Task) -> Path:
    return settings.home / "validated" / f"{task.name}.json"


def record_validation(settings: Settings, task: Task, sound: bool, problem: str | None) -> None:
    path = _record_path(settings, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"task_sha256": task.file_sha256, "sound": sound, "problem": problem, "at": time.time()}))
    os.replace(tmp, path)


def _proved(settings: Settings, task: Task) -> str:
    if task.solution is None:
        return "no solution"
    try:
        rec = json.loads(_record_path(settings, task).read_text())
    except (OSError, ValueError):
        return "-"
    if rec.get("task_sha256") != task.file_sha256:
        return "stale (task changed)"
    when = time.strftime("%Y-%m-%d", time.localtime(rec.get("at", 0)))
    return f"proved {when}" if rec.get("sound") else f"failed {when}: {(rec.get('problem') or '')[:60]}"


def _offline(task: Task, settings: Settings) -> str:
    """yes (and from where), or why not: the task says it is online-only, its materials are not cached yet, or its
    repository needs the network."""
    if task.online_only:
        return f"no: {task.online_only}"
    verdict = _local_sources(task, settings)
    needs = index_needs(task)
    if not needs or verdict.startswith("no"):
        return verdict
    return f"needs only the package index ({needs}); {verdict.removeprefix('yes').strip(' ()') or 'local'}"


def _local_sources(task: Task, settings: Settings) -> str:
    repo = _repository_offline(task, settings)
    if not task.materials or repo.startswith("no"):
        return repo
    from beyond_vibes.materials import missing_from_cache

    if missing := missing_from_cache(task, settings.cache_dir):
        return f"no: materials not cached yet ({', '.join(missing)}): the first run fetches them from the package index"
    return "yes (materials cached)" if repo == "yes" else repo[:-1] + "; materials cached)"


def index_needs(task: Task) -> str | None:
    """What of the task reaches the package index (the only network the sandbox ever opens), or None."""
    needs = (["the agent"] if task.network == "packages" else []) + (["its setup"] if task.setup else []) + \
        [f"check {c.name}" for c in task.checks if c.network == "packages"]
    return ", ".join(needs) or None


def _repository_offline(task: Task, settings: Settings) -> str:
    repo = task.repository
    if repo.path:
        return "yes"
    from beyond_vibes.gitsource import mirror_path, mirror_sources, resolve

    mirror = mirror_path(settings.cache_dir, repo.url)
    want = repo.ref or repo.branch or "HEAD"
    if (mirror / "HEAD").exists() and resolve(mirror, want):
        return "yes (mirror cache)"
    mirrors = os.environ.get("BV_GIT_MIRRORS") or settings.git_mirrors
    if len(mirror_sources(repo.url, Path(mirrors) if mirrors else None)) > 1:
        return "yes (BV_GIT_MIRRORS)"
    return "no: needs the network for its repository"


def suite_rows(tasks: list[Task], settings: Settings) -> list[SuiteRow]:
    rows = []
    for t in tasks:
        repo = t.repository
        commit = (repo.ref[:12] if repo.ref else f"follows {repo.branch or 'HEAD'}") if repo.url else (repo.ref or "snapshot")[:12]
        rows.append(SuiteRow(t.name, t.archetype.value, repo.url or repo.path or "", commit, _offline(t, settings),
                             len(t.checks), _proved(settings, t)))
    return rows
