"""Write the report folder: report.md, index.html (self-contained: inline CSS and SVG), results.json and, with
roles, promotion.md. Files are written to a temporary name and renamed, so a reader never sees half a file."""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from beyond_vibes.redact import Redactor
from beyond_vibes.report.data import ReportData
from beyond_vibes.report.plots import Plot
from beyond_vibes.report.tables import PROMOTION_RULES, Section, Table, promotion_sections, sections


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---- Markdown

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    lines = ([f"*{t.caption}*", ""] if t.caption else []) + [
        "| " + " | ".join(_md_cell(h) for h in t.headers) + " |",
        "|" + "|".join("---" for _ in t.headers) + "|",
        *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows)]
    return "\n".join(lines)


def md_sections(secs: list[Section], level: int = 2) -> str:
    parts = []
    for s in secs:
        parts.append(f"{'#' * (level + (1 if s.anchor.startswith('role-') else 0))} {s.title}")
        parts.extend(s.notes)
        if s.empty:
            parts.append(f"_{s.empty}_")
        parts.extend(md_table(t) for t in s.tables)
    return "\n\n".join(parts) + "\n"


def markdown(data: ReportData) -> str:
    head = (f"# beyond-vibes report: {data.experiment}\n\nGenerated {data.generated_at} from `{data.tracking_uri}`."
            + (f" Baseline: {data.baseline}." if data.baseline else "") + "\n\n"
            "Plots: see index.html in this folder. All numbers: results.json.\n\n")
    return head + md_sections(sections(data))


def promotion_markdown(data: ReportData) -> str:
    head = f"# Promotion: {data.experiment}\n\nGenerated {data.generated_at}.\n\n" + "\n\n".join(PROMOTION_RULES) + "\n\n"
    return head + md_sections(promotion_sections(data.promotion or []))


# ---- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#c8ccd6;font-size:13px}nav{padding:8px 28px;background:#e9ecf2;font-size:13px}
nav a{margin-right:14px;color:#2a4d8f;text-decoration:none}main{padding:8px 28px 40px}
h2{margin-top:30px;border-bottom:2px solid #d5dae3;padding-bottom:4px}h3{margin-top:22px}
p.note{max-width:1100px;font-size:13px;color:#444;line-height:1.45}p.empty{font-style:italic;color:#777}
.tbl{overflow-x:auto;margin:10px 0}table{border-collapse:collapse;font-size:12.5px;background:#fff}
th,td{border:1px solid #d5dae3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;position:sticky;top:0}tr:nth-child(even) td{background:#fafbfc}
tr.muted td{color:#999;background:#f6f6f6}td.pass{color:#1d7a35;font-weight:600}td.fail{color:#b3261e;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:18px}figure{background:#fff;border:1px solid #d5dae3;margin:0;padding:10px;
max-width:100%}figure svg{max-width:100%;height:auto}figcaption{font-size:12.5px;color:#444;max-width:760px}
caption{text-align:left;font-style:italic;padding:4px 0}
"""


def _inline(text: str) -> str:
    """Escape, then the little Markdown the notes use: **bold** and `code`."""
    out, parts = [], html.escape(text).split("`")
    for i, part in enumerate(parts):
        out.append(f"<code>{part}</code>" if i % 2 else part)
    chunks = "".join(out).split("**")
    return "".join(f"<b>{c}</b>" if i % 2 else c for i, c in enumerate(chunks))


def html_table(t: Table) -> str:
    def cell(c: str) -> str:
        cls = ' class="pass"' if c == "pass" else ' class="fail"' if c == "FAIL" else ""
        return f"<td{cls}>{html.escape(str(c))}</td>"

    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(("<tr class=\"muted\">" if i in t.muted else "<tr>") + "".join(cell(c) for c in row) + "</tr>"
                   for i, row in enumerate(t.rows))
    return f'<div class="tbl"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def html_section(s: Section) -> str:
    tag = "h3" if s.anchor.startswith("role-") else "h2"
    parts = [f'<section id="{html.escape(s.anchor)}"><{tag}>{html.escape(s.title)}</{tag}>']
    parts += [f'<p class="note">{_inline(n)}</p>' for n in s.notes]
    if s.empty:
        parts.append(f'<p class="empty">{html.escape(s.empty)}</p>')
    parts += [html_table(t) for t in s.tables]
    return "".join(parts) + "</section>"


def html_plots(plots: list[Plot]) -> str:
    figs = []
    for p in plots:
        body = p.svg if p.svg else '<p class="empty">none recorded</p>'
        figs.append(f'<figure id="plot-{p.key}"><h3>{html.escape(p.title)}</h3>{body}'
                    f"<figcaption>{html.escape(p.caption)}</figcaption></figure>")
    return f'<section id="plots"><h2>Plots</h2><div class="plots">{"".join(figs)}</div></section>'


def html_page(data: ReportData, plots: list[Plot]) -> str:
    secs = sections(data)
    nav = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in secs
                  if not s.anchor.startswith("role-"))
    body = html_section(secs[0]) + html_plots(plots) + "".join(html_section(s) for s in secs[1:])
    title = f"beyond-vibes report: {data.experiment}"
    sub = (f"Generated {data.generated_at} from {data.tracking_uri}; {len(data.collected.sims)} simulation runs"
           + (f"; filter {data.filter_string}" if data.filter_string else "")
           + (f"; baseline {data.baseline}" if data.baseline else ""))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(sub)}</p></header>"
            f'<nav><a href="#plots">Plots</a>{nav}</nav><main>{body}</main></body></html>\n')


# ---- JSON

def _clean(value):
    """JSON without NaN/Infinity (not valid JSON) and with string keys."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    return value


def results(data: ReportData) -> dict:
    agg = data.aggregates
    return _clean({
        "experiment": data.experiment, "generated_at": data.generated_at, "tracking_uri": data.tracking_uri,
        "filter": data.filter_string, "baseline": data.baseline, "thresholds": asdict(data.thresholds),
        "tasks_per_month": data.tasks_per_month,
        "tco_formula": "TCO_12m = cost_per_task * tasks_per_month * 12 (null when no cost_usd was logged)",
        "runs": [r.row() for r in data.collected.sims],
        "skipped_unfinished": data.collected.skipped_unfinished, "missing_run_ids": data.collected.missing_run_ids,
        "aggregates": {"by_config": [g.as_dict() for g in agg.by_config],
                       "by_archetype": [g.as_dict() for g in agg.by_archetype],
                       "by_task": [g.as_dict() for g in agg.by_task]},
        "comparisons": [c.as_dict() for c in data.comparisons],
        "quick_evals": [q.as_dict() for q in data.quick_evals],
        "quick_eval_comparisons": [c.as_dict() for c in data.quick_comparisons],
        "promotion": [d.as_dict() for d in data.promotion] if data.promotion is not None else None,
        "speed_references": [{"served_id": k, "model": v.model, "quant": v.quant, "engine": v.engine, "run_id": v.run_id,
                               **v.metrics}
                             for k, v in sorted(data.collected.speed.items())],
        "judges": {a: j.as_dict() for a, j in data.judges.items()},
        "environment": data.environment,
    })


def write_all(folder: Path, data: ReportData, plots: list[Plot], redact: Redactor | None = None) -> dict[str, Path]:
    """The report's files; every text passes `redact` (the store's runs are redacted already, but the report also
    reads local files: compiled judges' meta, whose judge LM name may hold what it should not)."""
    r = (redact or Redactor([])).text
    folder.mkdir(parents=True, exist_ok=True)
    out = {"index_html": _write(folder / "index.html", r(html_page(data, plots))),
           "report_md": _write(folder / "report.md", r(markdown(data))),
           "results_json": _write(folder / "results.json", r(json.dumps(results(data), indent=2, sort_keys=False) + "\n"))}
    if data.promotion is not None:
        out["promotion_md"] = _write(folder / "promotion.md", r(promotion_markdown(data)))
    return out
