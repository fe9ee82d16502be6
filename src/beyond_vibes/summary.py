"""The table `simulate` prints: the numbers a user looks at first ("n/a" where nothing was measured)."""

from __future__ import annotations

from rich.table import Table

from beyond_vibes import names as N


def _fmt(metrics: dict, name: str, spec: str, unit: str = "") -> str:
    value = metrics.get(name)
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def summary_table(result) -> Table:
    m = result.metrics
    colour = {"success": "green", "failed": "yellow"}.get(result.status, "red")
    table = Table(title=f"{result.model}:{result.quant or 'api'} · {result.task}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("status", f"[{colour}]{result.status}[/{colour}]" + (f" ({result.error})" if result.error else "")),
        ("checks passed", f"{_fmt(m, N.M_CHECKS_PASSED, '.0f')}/{_fmt(m, N.M_CHECKS_TOTAL, '.0f')}"),
        ("turns", f"{_fmt(m, N.M_TURNS, '.0f')} ({_fmt(m, N.M_TOOL_CALLS, '.0f')} tool calls, "
                  f"{_fmt(m, N.M_TOOL_ERRORS, '.0f')} errors)"),
        ("tokens", f"{_fmt(m, N.M_TOKENS_PROMPT, '.0f')} prompt / {_fmt(m, N.M_TOKENS_COMPLETION, '.0f')} completion"),
        ("median TTFT", _fmt(m, N.M_TTFT_S, ".3f", " s")),
        ("prompt speed", _fmt(m, N.M_PROMPT_TPS, ".1f", " tokens/s")),
        ("generation speed", _fmt(m, N.M_GEN_TPS, ".1f", " tokens/s")),
        ("model load", _fmt(m, N.M_LOAD_S, ".2f", " s")),
        ("peak RSS / VRAM", f"{_fmt(m, N.M_PEAK_RSS_MB, '.0f', ' MB')} / {_fmt(m, N.M_PEAK_VRAM_MB, '.0f', ' MB')}"),
        ("cost", _fmt(m, N.M_COST_USD, ".4f", " USD")),
        ("wall time", _fmt(m, N.M_WALL_S, ".1f", " s")),
        ("MLflow run", result.run_id),
        ("trace", result.trace_id or "-"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    return table
