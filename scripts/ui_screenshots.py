"""See what a reviewer sees: start the MLflow UI on a store and screenshot its pages in headless Chromium.

For the newest runs of an experiment (or the runs given) it renders the experiment's runs table, each run's
overview (description, tags, metrics), its diff in the artifact view, and its trace (the root span, the `checks`
span, a tool span), waiting for each page's data like a person would. Needs Debian's chromium
(`apt-get install -y chromium`).

Run: .venv/bin/python scripts/ui_screenshots.py --store sqlite:///.beyond-vibes/mlflow.db --experiment beyond-vibes \
        --out /tmp/shots [--runs 2] [--run-id ID ...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from beyond_vibes.browser import Browser
from beyond_vibes.runtime.probe import free_port


def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def tidy(browser: Browser) -> None:
    """Close MLflow's assistant side panel and first-visit tips, which cover a third of every page."""
    browser.evaluate("""(() => {
      for (const b of document.querySelectorAll('button')) {
        const label = (b.getAttribute('aria-label') || '') + ' ' + b.innerText;
        if (/got it/i.test(label)) b.click();
      }
      const panel = [...document.querySelectorAll('*')].find(e => e.innerText && e.innerText.startsWith('MLflow Assistant'));
      if (panel) { const close = panel.querySelectorAll('button'); if (close.length) close[close.length - 1].click(); }
    })()""")
    time.sleep(0.5)


def shot(browser: Browser, url: str, wait_text: str, out: Path) -> None:
    browser.goto(url)
    ok = browser.wait_for_text(wait_text)
    tidy(browser)
    time.sleep(1.0)
    browser.screenshot(out)
    print(f"{out}  <- {url}" + ("" if ok else f"  (did not see {wait_text!r})"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True, help="tracking URI (sqlite:///...) the UI serves")
    parser.add_argument("--experiment", default="beyond-vibes")
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=2, help="how many of the newest runs to show")
    parser.add_argument("--run-id", action="append", default=[], help="show these runs instead")
    args = parser.parse_args()
    from mlflow import MlflowClient

    client = MlflowClient(args.store)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        raise SystemExit(f"no experiment {args.experiment!r} in {args.store}")
    runs = [client.get_run(r) for r in args.run_id] or client.search_runs([exp.experiment_id], max_results=args.runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", args.store,
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health")
        e = exp.experiment_id
        with Browser(1700, 1100) as browser:
            shot(browser, f"{base}/#/experiments/{e}/runs", runs[0].info.run_name, out / "runs-table.png")
            for i, run in enumerate(runs):
                rid, tag = run.info.run_id, f"{i}-{run.data.tags.get('bv.status', 'run')}"
                shot(browser, f"{base}/#/experiments/{e}/runs/{rid}", "Description", out / f"{tag}-run.png")
                diff = next((f.path for f in client.list_artifacts(rid)
                             if f.path.startswith("diff.") or f.path == "quick_eval_items.json"), None)  # a quick eval's table
                if diff:
                    shot(browser, f"{base}/#/experiments/{e}/runs/{rid}/artifacts/{diff}", diff, out / f"{tag}-diff.png")
                trace = run.data.tags.get("bv.trace_id")
                if not trace:
                    continue
                shot(browser, f"{base}/#/experiments/{e}/traces?selectedEvaluationId={trace}", "simulation",
                     out / f"{tag}-trace.png")
                for span, name in (("checks", "checks"), ("tests_pass", "check"), ("turn-2", "turn")):
                    if browser.click_text(span):
                        time.sleep(1.5)
                        browser.screenshot(out / f"{tag}-trace-{name}.png")
                        print(f"{out / f'{tag}-trace-{name}.png'}  <- span {span}")
                tools = [s for s in browser.evaluate(
                    "[...document.querySelectorAll('span, div')].map(e => e.innerText).filter(t => t && "
                    "/^(bash|read|edit|write): /.test(t) && !t.includes('\\n')).slice(0, 1)") or []]
                if tools and browser.click_text(tools[0]):
                    time.sleep(1.5)
                    browser.screenshot(out / f"{tag}-trace-tool.png")
                    print(f"{out / f'{tag}-trace-tool.png'}  <- span {tools[0]}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
