"""Sweeps: a plan expanded into cells grouped by served model, run locally (one model at a time), resumable."""

from __future__ import annotations

from pathlib import Path

SMOKE_EXPERIMENT = "beyond-vibes-smoke"


def smoke_plan():
    """A tiny end-to-end sweep in its own experiment: the smallest demo model and its demo adapter (a base-vs-adapter
    pair), one quick task, two repeats."""
    from beyond_vibes.sweep.plan import SweepPlan

    return SweepPlan(name="smoke", experiment=SMOKE_EXPERIMENT, models=[{"name": "smollm2-135m", "adapters": [None, "demo-shift"]}],
                     tasks=["fix_failing_test"], repeats=2, max_turns=2, timeout_s=300), Path("(built-in smoke plan)")
