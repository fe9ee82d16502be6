"""The sweep report: `build_report(settings, experiment, out_dir, ...)` -> ReportResult.

Exports are resolved lazily (PEP 562): importing a report module must not pull in MLflow, matplotlib or the rest
of the report. (The statistics live in `beyond_vibes.stats`, shared with the quick evals.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beyond_vibes.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]


def __getattr__(name: str):
    if name in __all__:
        from beyond_vibes.report import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
