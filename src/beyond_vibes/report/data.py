"""Everything one report shows, computed once and rendered three ways (Markdown, HTML, JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from beyond_vibes.report.aggregate import Aggregates
from beyond_vibes.report.collect import Collected
from beyond_vibes.report.compare import Comparison
from beyond_vibes.report.judging import JudgeInfo
from beyond_vibes.report.promote import RoleDecision
from beyond_vibes.report.quick import QuickEvalSummary
from beyond_vibes.stats import Thresholds


@dataclass
class ReportData:
    experiment: str
    generated_at: str  # ISO 8601, UTC
    tracking_uri: str
    filter_string: str | None
    baseline: str | None  # the resolved model:quant:engine
    thresholds: Thresholds
    tasks_per_month: int
    collected: Collected
    aggregates: Aggregates
    judges: dict[str, JudgeInfo]
    comparisons: list[Comparison] = field(default_factory=list)
    quick_evals: list[QuickEvalSummary] = field(default_factory=list)
    quick_comparisons: list[Comparison] = field(default_factory=list)
    promotion: list[RoleDecision] | None = None
    environment: dict = field(default_factory=dict)
