"""What the tracking server already holds for a plan's cells, asked before anything starts (works against any
tracking server: the cell key is a tag). A run a killed sweep left RUNNING is reaped first (marked KILLED) and its
cell runs again; finished cells are skipped; `error`/`timeout` (or `failed`) cells run again only when asked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from beyond_vibes import names as N
from beyond_vibes.errors import ConfigError

RETRYABLE = ("error", "timeout", "failed")


@dataclass
class CellState:
    status: str  # success | failed | error | timeout | killed | running
    run_id: str


@dataclass
class Existing:
    by_key: dict[str, CellState] = field(default_factory=dict)
    reaped: list[str] = field(default_factory=list)

    def counts(self, keys: list[str]) -> Counter:
        return Counter(self.by_key[k].status for k in keys if k in self.by_key)


def parse_retry(value: str | None) -> tuple[str, ...]:
    statuses = tuple(s.strip() for s in (value or "").split(",") if s.strip())
    for s in statuses:
        if s not in RETRYABLE:
            raise ConfigError(f"--retry-failed: {s!r} is not a status to retry; choose from {', '.join(RETRYABLE)}")
    return statuses


def existing_cells(settings, experiment: str, keys: set[str]) -> Existing:
    """The newest run of each cell key in `experiment` (after reaping runs whose writer died)."""
    from beyond_vibes.tracking import reap_orphaned_runs, tracking_client

    client, exp_id = tracking_client(settings, experiment)
    out = Existing(reaped=reap_orphaned_runs(client, [exp_id]))
    token = None
    while True:
        page = client.search_runs([exp_id], f"tags.`{N.TAG_KIND}` = 'simulation'", max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        for run in page:
            key = run.data.tags.get(N.TAG_CELL_KEY)
            if key not in keys:
                continue
            status = run.data.tags.get(N.TAG_STATUS, "")
            if run.info.status == "KILLED":
                status = "killed"
            elif run.info.status == "RUNNING":
                status = "running"  # another sweep is on it right now
            out.by_key[key] = CellState(status, run.info.run_id)  # ascending start: the newest wins
        token = page.token
        if not token:
            return out


def to_run(keys: list[str], existing: Existing, retry: tuple[str, ...]) -> list[str]:
    """Cells with no run, a killed one, or a status the user asked to retry."""
    todo = []
    for k in keys:
        state = existing.by_key.get(k)
        if state is None or state.status == "killed" or state.status in retry:
            todo.append(k)
        elif state.status not in ("success", "failed", "error", "timeout", "running"):
            todo.append(k)  # a run that never got its outcome written
    return todo
