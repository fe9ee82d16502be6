"""The report's plots as inline SVG text (matplotlib, no display, no files): the HTML stays one self-contained file.

Figures are made with matplotlib's object API (Figure, not pyplot), so no global backend or figure registry is
touched by a library call; text stays text in the SVG (svg.fonttype none) and ids are salted per plot, so several
SVGs in one page never share an id and the output is the same for the same data.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from beyond_vibes.report.aggregate import GroupStats

COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


@dataclass
class Plot:
    key: str  # the HTML element id: plot-<key>
    title: str
    svg: str | None  # None: nothing measured for it
    caption: str


def labeller(groups: list[GroupStats]) -> Callable[[GroupStats], str]:
    """model:quant, plus the engine when several ran, plus the config id when one model:quant:engine ran as several
    configurations (so two bars never share a label)."""
    engines = len({g.engine for g in groups}) > 1
    ids = len({g.config[:3] for g in groups}) < len(groups)
    return lambda g: (f"{g.model}:{g.quant}" + (f" ({g.engine})" if engines else "")
                      + (f" #{g.config_id[:6]}" if ids and g.config_id else ""))


def _svg(fig, salt: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML declaration and doctype: the SVG is inlined in HTML


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def quality_vs_speed(groups: list[GroupStats], label: Callable[[GroupStats], str]) -> Plot:
    pts = [g for g in groups if g.gen_tps_median is not None]
    caption = "Pass rate against median generation tokens/s, one point per model/quant/engine."
    if not pts:
        return Plot("quality-speed", "Quality vs generation speed", None, caption + " No generation speed measured.")
    fig, (ax,) = _figure(7.5, 4.5)
    for i, g in enumerate(pts):
        ax.errorbar([g.gen_tps_median], [g.pass_rate * 100], yerr=[[max(0.0, (g.pass_rate - g.ci_low) * 100)],
                    [max(0.0, (g.ci_high - g.pass_rate) * 100)]], fmt="o", color=COLORS[i % len(COLORS)],
                    ecolor="#999999", capsize=3, markersize=8)
        ax.annotate(label(g), (g.gen_tps_median, g.pass_rate * 100), textcoords="offset points",
                    xytext=(6, 6), fontsize=9)
    ax.set_xlabel("median generation tokens/s")
    ax.set_ylabel("pass rate (%)")
    ax.set_ylim(-5, 105)
    ax.set_xlim(left=0, right=max(g.gen_tps_median for g in pts) * 1.3 + 1)
    missing = len(groups) - len(pts)
    return Plot("quality-speed", "Quality vs generation speed", _svg(fig, "quality-speed"),
                caption + (f" {missing} configuration(s) without a measured speed are not shown." if missing else ""))


def pass_rates(groups: list[GroupStats], label: Callable[[GroupStats], str]) -> Plot:
    caption = ("Pass rate per configuration with its 95% interval (clustered by task where tasks were repeated, "
               "else Wilson).")
    if not groups:
        return Plot("pass-rate", "Pass rate", None, caption)
    fig, (ax,) = _figure(max(6.0, 1.1 * len(groups) + 2), 4.5)
    xs = list(range(len(groups)))
    rates = [g.pass_rate * 100 for g in groups]
    err = [[(g.pass_rate - g.ci_low) * 100 for g in groups], [(g.ci_high - g.pass_rate) * 100 for g in groups]]
    ax.bar(xs, rates, yerr=err, capsize=4, color=[COLORS[i % len(COLORS)] for i in xs], ecolor="#333333")
    for x, r, g in zip(xs, rates, groups):  # dark text on the bar's top (a 0% bar has no bar to be white on)
        top = min(r + 1.5, 90.0)
        ax.text(x, top, f"{r:.0f}%\nn={g.n}", ha="center", va="bottom", fontsize=8, color="#111111",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.set_xticks(xs, [label(g) for g in groups], rotation=20, ha="right", fontsize=9)
    ax.set_ylabel("pass rate (%)")
    ax.set_ylim(0, 105)
    return Plot("pass-rate", "Pass rate", _svg(fig, "pass-rate"), caption)


def latency(groups: list[GroupStats], label: Callable[[GroupStats], str]) -> Plot:
    caption = "Median time to first token per run (left) and median model load time per served model (right)."
    if not any(g.ttft_s_median is not None or g.load_s_median is not None for g in groups):
        return Plot("latency", "TTFT and load time", None, caption + " Neither was measured.")
    fig, (ax1, ax2) = _figure(max(8.0, 1.6 * len(groups) + 3), 4.2, ncols=2)
    labels = [label(g) for g in groups]
    xs = list(range(len(groups)))
    for ax, values, title, unit in ((ax1, [g.ttft_s_median for g in groups], "median TTFT", "s"),
                                    (ax2, [g.load_s_median for g in groups], "load time", "s")):
        ax.bar(xs, [v or 0.0 for v in values], color=[COLORS[i % len(COLORS)] for i in xs])
        for x, v in zip(xs, values):
            ax.text(x, v or 0.0, "n/a" if v is None else f"{v:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs, labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
    return Plot("latency", "TTFT and load time", _svg(fig, "latency"), caption)


def cost(groups: list[GroupStats], label: Callable[[GroupStats], str]) -> Plot:
    priced = [g for g in groups if g.cost_per_task is not None]
    caption = "Mean cost per task (runs that logged cost_usd); unpriced (local) configurations are left out."
    if not priced:
        return Plot("cost", "Cost per task", None, "No cost logged (local models are unpriced).")
    fig, (ax,) = _figure(max(6.0, 1.1 * len(priced) + 2), 4.0)
    xs = list(range(len(priced)))
    ax.bar(xs, [g.cost_per_task for g in priced], color=[COLORS[i % len(COLORS)] for i in xs])
    for x, g in zip(xs, priced):
        ax.text(x, g.cost_per_task, f"${g.cost_per_task:.4f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [label(g) for g in priced], rotation=20, ha="right", fontsize=9)
    ax.set_ylabel("USD per task")
    return Plot("cost", "Cost per task", _svg(fig, "cost"), caption)


def plots(groups: list[GroupStats]) -> list[Plot]:
    label = labeller(groups)
    return [quality_vs_speed(groups, label), pass_rates(groups, label), latency(groups, label), cost(groups, label)]
