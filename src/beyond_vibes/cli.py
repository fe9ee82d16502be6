"""The beyond-vibes command line: parses arguments, calls the library, prints results."""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["simulate"]:  # it will record in MLflow: start the recording process (seconds of imports) first
    from beyond_vibes.tracking import start_worker_early

    start_worker_early()

import functools
import os
import shutil
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from beyond_vibes.errors import ConfigError, SimulationError
from beyond_vibes.procs import Terminated, signals_as_interrupt
from beyond_vibes.redact import safe_uri
from beyond_vibes.settings import get_settings

# Piped output (CI logs, `| less`) gets 160 columns instead of rich's 80, so file names and keys are not folded.
_WIDTH = shutil.get_terminal_size((160, 24)).columns
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=max(_WIDTH, 400))  # errors stay one line


def handle_errors(fn):
    """Bad input: one line and exit 2. A simulation that broke: one line and exit 1 (its run is recorded)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            err_console.print(f"[red]error:[/red] {escape(safe_uri(str(e)))}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except SimulationError as e:
            err_console.print(f"[red]simulation error:[/red] {escape(safe_uri(str(e)))}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except KeyboardInterrupt as e:
            err_console.print(f"[red]stopped:[/red] {escape(e.signame if isinstance(e, Terminated) else 'Ctrl-C')}; "
                              "anything started was stopped", highlight=False)
            sys.exit(130 if not isinstance(e, Terminated) else 143)
        except Exception as e:  # noqa: BLE001 - a bug or an outside failure: one line (BV_DEBUG=1 for the traceback)
            if os.environ.get("BV_DEBUG"):
                raise
            detail = safe_uri(str(e).strip().splitlines()[0][:500]) if str(e).strip() else ""
            err_console.print(f"[red]error:[/red] {type(e).__name__}: {escape(detail)} (BV_DEBUG=1 shows the traceback)",
                              highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.version_option(package_name="beyond-vibes")
def main() -> None:
    """Evidence, not vibes: which local model, quant and llama.cpp build to trust with which work."""


def _catalog(config: str | None):
    from beyond_vibes.catalog import load_catalog

    return load_catalog(Path(config) if config else get_settings().models_file)


def _catalog_and_settings(config: str | None):
    """The catalog, and settings whose S3 bucket falls back to the catalog's `bucket`."""
    catalog = _catalog(config)
    return catalog, get_settings().with_bucket(catalog.bucket)


@main.command()
@click.option("--task", required=True, help="Task name (a file in tasks/, without .yaml) or a path to a task file.")
@click.option("--model", default=None, help="Model name from models.yaml (default: the catalog's default).")
@click.option("--provider", default=None, help="Only consider models of this provider (local, openai...).")
@click.option("--quant", default=None, help="Quant tag, e.g. Q4_K_M (default: the model's first).")
@click.option("--adapter", default=None, help="A LoRA adapter of the model (models.yaml adapters) served on top of it.")
@click.option("--prompt-vars", default=None, help='JSON object filling {vars} in the task prompt, e.g. \'{"extra": "..."}\'.')
@click.option("--max-turns", type=click.IntRange(min=1), default=None, help="Turn budget (default: the task's).")
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Wall-clock budget for the agent in seconds.")
@click.option("--config", default=None, type=click.Path(), help="models.yaml to use (default: BV_MODELS_FILE or ./models.yaml).")
@click.option("--experiment", default=None, help="MLflow experiment name (default: beyond-vibes).")
@click.option("--keep-workspace", is_flag=True, help="Keep the agent's workspace for inspection.")
@click.option("--engine", default=None, help="llama.cpp engine: cpu, cuda, rocm or vulkan (default: the model's).")
@click.option("--engine-config", default=None, help="A named engine config from models.yaml (engine_configs).")
@click.option("--runtime", default=None, help="process (a llama-server binary) or container (default: the model's).")
@click.option("--sandbox", default="auto", type=click.Choice(["auto", "bwrap", "container", "none"]), show_default=True,
              help="What confines the agent, the task's setup and the checks: auto (bwrap where it works, else a "
                   "container), bwrap, container, or none (unconfined: only when you mean it).")
@handle_errors
def simulate(task, model, provider, quant, adapter, prompt_vars, max_turns, timeout, config, experiment, keep_workspace,
             engine, engine_config, runtime, sandbox) -> None:
    """Run one coding-agent simulation on a model and record it in MLflow."""
    from beyond_vibes.simulate import SimulateOptions, simulate as run_simulation
    from beyond_vibes.summary import summary_table
    from beyond_vibes.tasks import load_task, parse_prompt_vars
    from beyond_vibes.store.resolve import resolve_model

    from beyond_vibes.tracking import review_url, tracking_worker

    variables = parse_prompt_vars(prompt_vars)
    catalog, settings = _catalog_and_settings(config)
    the_task = load_task(task, settings.tasks_dir)
    chosen, chosen_quant = catalog.choose(model, quant, provider)
    chosen = chosen.with_adapter(adapter)
    the_task.render_prompt(variables)  # a missing {var} fails before any download
    from beyond_vibes.confinement import get_sandbox

    get_sandbox(sandbox)  # so does a sandbox that cannot work here
    if the_task.repository.url:
        from beyond_vibes.sandbox import pin_task

        pin_task(the_task)  # and a pinned commit that no source has
    tracking_worker(settings)  # MLflow opens the store in its own process, on the other core, meanwhile
    resolved_engine = catalog.engine_for(chosen, engine, engine_config, runtime) if chosen.is_local else None
    opts = SimulateOptions(prompt_vars=variables, max_turns=max_turns, timeout_s=timeout, experiment=experiment,
                           keep_workspace=keep_workspace, engine=resolved_engine, sandbox=sandbox,
                           engine_spec=catalog.engine_spec(resolved_engine.engine) if resolved_engine else None)
    models_dir = catalog.path.resolve().parent
    resolved = resolve_model(chosen, chosen_quant, settings, base_dir=models_dir)  # progress bars when it downloads
    with signals_as_interrupt(), console.status(f"simulating {the_task.name} on {chosen.label} {chosen_quant or ''}..."):
        result = run_simulation(the_task, chosen, chosen_quant, settings, opts, models_dir=models_dir, resolved=resolved)
    console.print(summary_table(result))
    exp_name = opts.experiment or settings.mlflow_experiment
    base = settings.tracking_uri if settings.tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    console.print(f"review it: beyond-vibes ui --experiment {exp_name}, then {review_url(base, result.experiment_id)}")
    if result.workspace:
        console.print(f"workspace kept at {result.workspace}")
    if result.status == "error":  # the harness, the model server or the agent broke: scripts should notice
        sys.exit(1)


@main.command()
@click.option("--model", default=None, help="Only this model (default: every model with a repo_id).")
@click.option("--quant", default=None, help="Only this quant tag.")
@click.option("--dry-run", is_flag=True, help="Show the plan (files, sizes, targets, upload/skip) and change nothing.")
@click.option("--include-mmproj", is_flag=True, help="Also mirror multimodal projector (mmproj) files.")
@click.option("--config", default=None, type=click.Path())
@handle_errors
def download(model, quant, dry_run, include_mmproj, config) -> None:
    """Mirror GGUF quants from Hugging Face into S3 (S3_BUCKET/S3_ENDPOINT) or the local model cache."""
    from beyond_vibes.store.cache import ModelCache
    from beyond_vibes.store.hf import ChecksumError, HuggingFace
    from beyond_vibes.store.mirror import plan_mirror, run_mirror
    from beyond_vibes.store.s3 import S3Store

    catalog, settings = _catalog_and_settings(config)
    hf, cache = HuggingFace(settings), ModelCache(settings.model_dir)
    s3 = S3Store(settings) if settings.s3_bucket else None
    with console.status("planning: listing the hub, checking the store..."):
        plan = plan_mirror(catalog, hf, cache, s3, model, quant, include_mmproj)
    table = Table("model", "quant", "file", "size", "revision", "target", "action")
    for p in plan:
        colour = {"skip": "dim", "replace": "yellow"}.get(p.action, "green")
        table.add_row(p.model, p.quant, p.file.path, f"{p.file.size / 1e6:,.1f} MB", p.commit[:12], p.target,
                      f"[{colour}]{p.action}[/{colour}]")
    console.print(table)
    todo = [p for p in plan if p.action != "skip"]
    console.print(f"{len(todo)} to transfer ({sum(p.file.size for p in todo) / 1e9:.2f} GB), {len(plan) - len(todo)} up to date")
    if dry_run or not todo:
        return
    try:
        report = run_mirror(plan, hf, cache, s3)
    except ChecksumError as e:
        raise SimulationError(str(e)) from None
    console.print(f"mirrored {len(report.uploaded)} file(s), {report.bytes_uploaded / 1e9:.2f} GB; {len(report.skipped)} already up to date")


@main.group()
def engines() -> None:
    """llama.cpp engines (cpu, cuda, rocm, vulkan): their binaries and images, the GPUs and container engine seen."""


@engines.command("list")
@click.option("--config", default=None, type=click.Path())
@handle_errors
def engines_list(config) -> None:
    """Each engine with its process binary and container image, and what this host can run."""
    from beyond_vibes.engines import survey

    report = survey(get_settings(), _catalog(config))
    table = Table("engine", "process binary", "devices it sees", "container image", "image here", "host GPU")
    for e in report.engines:
        table.add_row(e.engine, e.binary or "-", e.devices, e.image, e.image_state, e.host)
    console.print(table)
    console.print(f"container engine: {report.container_engine}")
    console.print(f"GPU tools: {report.gpu_tools}")
    if report.engine_configs:
        console.print(f"engine configs: {', '.join(report.engine_configs)}")


@main.command()
@click.option("--model", default=None)
@click.option("--quant", default=None)
@click.option("--adapter", default=None, help="A LoRA adapter of the model (models.yaml adapters) on top of it.")
@click.option("--engine", default=None, help="cpu, cuda, rocm or vulkan (default: the model's).")
@click.option("--engine-config", default=None)
@click.option("--runtime", default=None, help="process or container (default: the model's).")
@click.option("--repetitions", default=3, show_default=True, type=click.IntRange(min=2))
@click.option("--config", default=None, type=click.Path())
@click.option("--experiment", default=None)
@handle_errors
def speed(model, quant, adapter, engine, engine_config, runtime, repetitions, config, experiment) -> None:
    """Raw engine speed with llama-bench (pp512 / tg128 tokens/s with their spread), recorded as an MLflow run."""
    from beyond_vibes.speed import run_speed

    catalog, settings = _catalog_and_settings(config)
    chosen, chosen_quant = catalog.choose(model, quant)
    if not chosen.is_local:
        raise ConfigError(f"speed: {chosen.name} is an API model; llama-bench measures local models")
    chosen = chosen.with_adapter(adapter)
    eng = catalog.engine_for(chosen, engine, engine_config, runtime)
    with console.status(f"llama-bench on {chosen.label}:{chosen_quant} ({eng.engine.value}, {eng.runtime})..."):
        r = run_speed(settings, chosen, chosen_quant, eng, catalog.engine_spec(eng.engine), repetitions,
                      models_dir=catalog.path.resolve().parent, experiment=experiment)
    table = Table("test", "tokens/s", "spread (stddev)", "repetitions")
    for t in r.tests:
        table.add_row(t.name, f"{t.tps:.1f}", f"{t.stddev:.1f}", str(t.n))
    console.print(table)
    console.print(f"llama.cpp build {r.build}; MLflow run {r.run_id}")


@main.command()
@click.option("--data-dir", default=None, type=click.Path(), help="PostgreSQL's files and the server log (default: BV_HOME/server).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--pg-port", default=5433, show_default=True, type=int, help="PostgreSQL's port (loopback only).")
@click.option("--workers", default=2, show_default=True, type=int)
@handle_errors
def server(data_dir, host, port, pg_port, workers) -> None:
    """A team's MLflow tracking server: PostgreSQL + artifacts in S3 (S3_*), until Ctrl-C."""
    import threading

    from beyond_vibes.team_server import team_server

    settings = get_settings()
    folder = Path(data_dir) if data_dir else settings.home / "server"
    with signals_as_interrupt(), console.status("starting PostgreSQL and mlflow server (about 20-40 s)..."):
        ctx = team_server(settings, folder, host, port, pg_port, workers)
        team = ctx.__enter__()
    try:
        console.print(f"MLflow tracking server at {team.url} (runs in PostgreSQL, artifacts in {team.artifacts})")
        console.print(f"use it: export MLFLOW_TRACKING_URI={team.url}; stop it with Ctrl-C")
        with signals_as_interrupt():
            threading.Event().wait()
    except KeyboardInterrupt:
        ctx.__exit__(None, None, None)
        console.print("stopped")
        return
    except BaseException as e:
        ctx.__exit__(type(e), e, e.__traceback__)
        raise


@main.command()
@click.argument("plan_file", required=False, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Print the matrix, what already exists and the estimate; start nothing.")
@click.option("--resume", is_flag=True, help="Skip cells that already have a finished run (after a crash or Ctrl-C).")
@click.option("--retry-failed", default=None, help="With --resume, also redo cells that ended so: error,timeout[,failed].")
@click.option("--executor", default="local", show_default=True, help="Where groups run: local, or ray (one Ray task per group).")
@click.option("--ray-address", default=None, help="A Ray cluster (ray://host:10001 or auto); default: a local one.")
@click.option("--parallel", type=click.IntRange(min=1), default=None, help="Simulations at once per served model.")
@click.option("--smoke", is_flag=True, help="A tiny built-in sweep (smollm2-135m, fix_failing_test) in its own experiment.")
@click.option("--config", default=None, type=click.Path(), help="models.yaml (default: the plan's models_file, else BV_MODELS_FILE).")
@handle_errors
def sweep(plan_file, dry_run, resume, retry_failed, executor, ray_address, parallel, smoke, config) -> None:
    """Run a plan's matrix of models x quants x engines x tasks x repeats, one served model per group, resumable."""
    from beyond_vibes.catalog import load_catalog
    from beyond_vibes.sweep import smoke_plan
    from beyond_vibes.sweep.plan import expand, load_plan
    from beyond_vibes.sweep.resume import parse_retry
    from beyond_vibes.sweep.run import dry_run as plan_dry_run, run_sweep

    if smoke == bool(plan_file):
        raise ConfigError("sweep: give a plan file (plans/<name>.yaml) or --smoke, not both or neither")
    plan, where = smoke_plan() if smoke else (load_plan(Path(plan_file)), Path(plan_file))
    retry = parse_retry(retry_failed)
    if retry and not resume:
        raise ConfigError("--retry-failed: only with --resume (it says which finished cells to run again)")
    if parallel:
        plan = plan.model_copy(update={"parallel": parallel})
    settings = get_settings()
    catalog = load_catalog(Path(config) if config else plan.models_file or settings.models_file)
    settings = settings.with_bucket(catalog.bucket)
    experiment = plan.experiment or settings.mlflow_experiment
    with console.status(f"checking plan {plan.name} (models, quants, engines, tasks)..."):
        groups = expand(plan, where, catalog, settings)
    if dry_run:
        d = plan_dry_run(settings, groups, experiment, retry)
        table = Table("group (served model)", "cells", "to run", "already there")
        for g, n, counts in d.groups:
            table.add_row(g.label, str(len(g.cells)), str(n), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-")
        console.print(table)
        est = f"~{d.estimated_s / 60:.1f} min of simulations" if d.estimated_s is not None else "no estimate (no earlier runs of every cell)"
        usd = f", ~${d.estimated_usd:.2f}" if d.estimated_usd is not None else ""
        console.print(f"{d.to_run} of {d.total_cells} runs to do in experiment {experiment!r}: {est}{usd}")
        return
    with signals_as_interrupt():
        result = run_sweep(settings, plan, groups, experiment, catalog.path.resolve().parent, resume, retry, executor,
                           report=lambda line: console.print(escape(safe_uri(line)), highlight=False), ray_address=ray_address)
    by_status: dict[str, int] = {}
    for o in result.outcomes:
        by_status[o.status] = by_status.get(o.status, 0) + 1
    console.print(f"sweep {plan.name}: {len(result.outcomes)} run(s) ({', '.join(f'{k} {v}' for k, v in sorted(by_status.items())) or 'none'}), "
                  f"{result.skipped} skipped, {result.loads} model load(s); experiment {experiment!r}")


@main.command("quick-eval")
@click.option("--set", "sets", required=True, help="Set name(s) from evals/, comma-separated: math,code,analysis.")
@click.option("--model", default=None, help="Model name(s), comma-separated (default: the catalog's default).")
@click.option("--quant", default=None, help="Quant tag(s), comma-separated (default: each model's first).")
@click.option("--baseline", default=None, help="The reference: a quant tag (one model) or model:quant.")
@click.option("--adapter", default=None,
              help="A LoRA adapter (models.yaml adapters): each model that has it runs as base and as base+adapter, "
                   "side by side, compared with its base.")
@click.option("--ood", default=None, help="Out-of-domain set(s), comma-separated: the adapter must stay within "
                                         "--ood-points of its base on each.")
@click.option("--ood-points", default=5.0, show_default=True, type=float,
              help="How far below its base an adapter may fall on an out-of-domain set.")
@click.option("--thresholds", default=None, help="Accuracy-drop points for ship,acceptable,marginal (default 1,3,5).")
@click.option("--engine", default=None)
@click.option("--engine-config", default=None)
@click.option("--runtime", default=None)
@click.option("--config", default=None, type=click.Path())
@click.option("--experiment", default=None)
@handle_errors
def quick_eval(sets, model, quant, baseline, adapter, ood, ood_points, thresholds, engine, engine_config, runtime, config,
               experiment) -> None:
    """Scored question sets straight against each model/quant; against a baseline: drop, flips, McNemar, decision."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from beyond_vibes.quick_eval.matrix import parse_thresholds, run_matrix, split_list

    catalog, settings = _catalog_and_settings(config)
    limits = parse_thresholds(thresholds)
    bars: dict[tuple[str, str], object] = {}
    with signals_as_interrupt(), Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TimeRemainingColumn(), console=console) as bar:
        def progress(target, name, done, total):
            key = (target, name)
            if not console.is_terminal:  # piped (CI logs): a plain line every tenth of a set
                if done == total or done * 10 // total != (done - 1) * 10 // total:
                    console.print(f"{target} · {name}: {done}/{total} items", highlight=False)
                return
            if key not in bars:
                bars[key] = bar.add_task(f"{target} · {name}", total=total)
            bar.update(bars[key], completed=done)

        result = run_matrix(settings, catalog, split_list(sets), model, quant, baseline, engine, engine_config, runtime,
                            experiment, limits, progress=progress, adapter=adapter, ood=split_list(ood),
                            ood_points=ood_points)
    table = Table("set", "model:quant", "items", "accuracy [95% CI]", "easy / medium / hard", "items/s", "gen tok/s",
                  "re-used", "MLflow run")
    for r in result.runs:
        m = r.metrics
        acc = f"{m['accuracy']:.1%} [{m['accuracy_ci_low']:.1%}, {m['accuracy_ci_high']:.1%}]" if "accuracy" in m else "n/a"
        levels = " / ".join(f"{m[f'accuracy_{lv}']:.0%}" if f"accuracy_{lv}" in m else "-" for lv in ("easy", "medium", "hard"))
        table.add_row(r.set.name, f"{r.model}:{r.quant}", str(int(m.get("n_items", 0))), acc, levels,
                      f"{m['items_per_s']:.2f}" if "items_per_s" in m else "n/a",
                      f"{m['gen_tps']:.1f}" if "gen_tps" in m else "n/a", str(int(m.get("n_reused", 0))), r.run_id or "")
    console.print(table)
    if result.comparisons:
        cmp = Table("set", f"vs {result.baseline}", "accuracy", "drop (points)", "lost (pass->fail)",
                    "gained (fail->pass)", "flip rate", "McNemar p", "decision")
        for c in result.comparisons:
            verdict = result.ood_verdict(c)
            cmp.add_row(c.scope + (" (out of domain)" if c.scope in result.ood_sets else ""),
                        c.candidate + (f" (vs its base {c.baseline})" if c.baseline != result.baseline else ""),
                        f"{c.baseline_rate:.1%} -> {c.candidate_rate:.1%}", f"{c.drop_points:+.1f}",
                        str(c.lost), str(c.gained), f"{c.flip_rate:.1%}", f"{c.p_value:.3g}", verdict or c.decision)
        console.print(cmp)
    from beyond_vibes.tracking import review_url, tracking_client

    _, exp_id = tracking_client(settings, f"{experiment or settings.mlflow_experiment}-quick-eval")
    base = settings.tracking_uri if settings.tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    console.print(f"review them: {review_url(base, exp_id)}", highlight=False, soft_wrap=True)
    if any(not r.scored for r in result.runs):
        sys.exit(1)


@main.command()
@click.option("--experiment", default=None, help="MLflow experiment of the simulations (default: BV_EXPERIMENT or beyond-vibes).")
@click.option("--baseline", default=None, help="Compare every configuration with this one: model:quant[:engine].")
@click.option("--filter", "filter_string", default=None,
              help="Extra MLflow search filter on the simulation runs, e.g. \"tags.`bv.task` = 'fix_failing_test'\".")
@click.option("--thresholds", default=None, help="Quality-drop points for ship,acceptable,marginal (default 1,3,5).")
@click.option("--promote", "roles_file", default=None, type=click.Path(),
              help="roles.yaml: per role, does a challenger replace the incumbent (every gate must hold)?")
@click.option("--out", default="reports", show_default=True, type=click.Path(),
              help="Reports folder; this report goes into <out>/<YYYY-MM-DD>/.")
@click.option("--run-ids-file", default=None, type=click.Path(), help="Only these simulation runs (one MLflow run id per line).")
@click.option("--tasks-per-month", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Volume behind the 12-month TCO column (cost per task x tasks per month x 12).")
@click.option("--plan", "plan_file", default=None, type=click.Path(), help="Only a sweep's runs: its plan file (its experiment, its name).")
@click.option("--smoke", is_flag=True, help="Report the built-in smoke sweep (`sweep --smoke`).")
@handle_errors
def report(experiment, baseline, filter_string, thresholds, roles_file, out, run_ids_file, tasks_per_month, plan_file,
           smoke) -> None:
    """Report from MLflow: pass rates with intervals, pass@k, speed, cost/TCO, judges, baseline flips, promotion."""
    from beyond_vibes.quick_eval.matrix import parse_thresholds
    from beyond_vibes.report.build import build_report, read_run_ids

    if plan_file or smoke:
        from beyond_vibes.sweep import smoke_plan
        from beyond_vibes.sweep.plan import load_plan

        plan = smoke_plan()[0] if smoke else load_plan(Path(plan_file))
        experiment = experiment or plan.experiment
        only = f"tags.`bv.sweep` = '{plan.name}'"
        filter_string = f"{only} and {filter_string}" if filter_string else only
    limits = parse_thresholds(thresholds)
    ids = read_run_ids(Path(run_ids_file)) if run_ids_file else None
    with console.status("reading runs from MLflow and writing the report..."):
        r = build_report(get_settings(), experiment, Path(out), baseline=baseline, filter_string=filter_string,
                         thresholds=limits, roles_file=roles_file, run_ids=ids, tasks_per_month=tasks_per_month)
    drops = {c.candidate: c for c in r.comparisons if c.scope == "all"}
    from beyond_vibes.report.collect import config_label

    table = Table("configuration", "runs", "pass rate [95% CI]", "hard fail", "median TTFT s", "gen tok/s",
                  f"vs {r.baseline}" if r.baseline else "vs baseline")
    for g in r.configs:
        label = config_label(g.config)
        c = drops.get(label)
        versus = "baseline" if label == r.baseline else (
            f"{c.drop_points:+.1f} pts, {c.lost}↓ {c.gained}↑, {c.decision}" if c and c.drop_points is not None else "")
        table.add_row(label, str(g.n), f"{g.pass_rate:.1%} [{g.ci_low:.1%}, {g.ci_high:.1%}]", f"{g.hard_failure_rate:.0%}",
                      f"{g.ttft_s_median:.3f}" if g.ttft_s_median is not None else "n/a",
                      f"{g.gen_tps_median:.1f}" if g.gen_tps_median is not None else "n/a", versus)
    console.print(table)
    for d in r.promotion or []:
        gates = Table("challenger", "gate", "incumbent", "challenger", "result", title=f"role {d.role}: {d.verdict}")
        for ch in d.challengers:
            for gate in ch.gates:
                fmt = (lambda v: "" if v is None else f"{v:.3g}")
                gates.add_row(ch.challenger, gate.name, fmt(gate.incumbent), fmt(gate.challenger),
                              ("pass" if gate.passed else "[red]FAIL[/red]") + (f" ({escape(gate.detail)})" if gate.detail else ""))
        console.print(gates)
    console.print(f"report: {r.index_html}  ({r.n_runs} runs; also {r.report_md.name}, {r.results_json.name}"
                  + (f", {r.promotion_md.name}" if r.promotion_md else "") + ")", highlight=False, soft_wrap=True)


@main.group()
def models() -> None:
    """The model catalog (models.yaml)."""


@models.command("list")
@click.option("--config", default=None, type=click.Path())
@handle_errors
def models_list(config) -> None:
    """List the catalog's models and quants."""
    catalog = _catalog(config)
    table = Table("name", "family", "provider", "quants / model id", "adapters", "source")
    for m in catalog.models:
        star = " (default)" if m.name == catalog.default else ""
        table.add_row(m.name + star, m.family, m.provider, ", ".join(m.quants) if m.is_local else m.model_id,
                      ", ".join(m.adapters) or "-",
                      m.repo_id or m.base_url or ", ".join(f"{q}: {s.package or s.path}" for q, s in m.sources.items()))
    console.print(table)


@main.group()
def tasks() -> None:
    """Task files (tasks/*.yaml)."""


@tasks.command("list")
@handle_errors
def tasks_list() -> None:
    """The task suite: archetype, repository and pinned commit, offline or not, checks, proved by `tasks validate`."""
    from beyond_vibes.suite import suite_rows
    from beyond_vibes.tasks import load_tasks

    settings = get_settings()
    table = Table("name", "archetype", "repository", "commit", "offline", "checks", "validated")
    for r in suite_rows(load_tasks(settings.tasks_dir), settings):
        table.add_row(r.name, r.archetype, r.repository, r.commit, r.offline, str(r.checks), r.proved)
    console.print(table)


@tasks.command("mine")
@click.argument("repo")
@click.option("--ref", default=None, help="Where to start walking back (default: HEAD).")
@click.option("--max", "max_tasks", type=click.IntRange(min=1), default=5, show_default=True, help="Tasks to keep.")
@click.option("--out", default="tasks/mined", type=click.Path(), show_default=True, help="Tasks folder to write into.")
@click.option("--setup", "setup", multiple=True, help="A command that installs what the tests import (sandboxed, with "
              "the package index), e.g. 'uv venv && uv pip install -e .'; written into every task.")
@handle_errors
def tasks_mine(repo, ref, max_tasks, out, setup) -> None:
    """Real tasks from a repository's history: commits that change code and tests, proved by tasks validate."""
    from beyond_vibes.mine import mine

    with console.status(f"mining {repo}..."):
        outcomes = mine(repo, ref, max_tasks, Path(out), setup=list(setup))
    for o in outcomes:
        mark = "[green]kept[/green]" if o.kept else "[yellow]dropped[/yellow]"
        detail = f"{o.why}: {len(o.fail_to_pass)} fail-to-pass, {len(o.pass_to_pass)} pass-to-pass tests" if o.kept else o.why
        console.print(f"{mark} {o.commit[:12]} {escape(o.subject[:60])} — {escape(detail)}")
    kept = sum(o.kept for o in outcomes)
    console.print(f"{kept} task(s) written to {out}, {len(outcomes) - kept} commit(s) dropped")


@tasks.command("validate")
@click.argument("name", required=False)
@handle_errors
def tasks_validate(name) -> None:
    """Prove tasks are sound: checks fail on the untouched repo and pass after the reference solution."""
    from beyond_vibes.tasks import load_task, load_tasks
    from beyond_vibes.validate import validate_task

    settings = get_settings()
    every = [load_task(name, settings.tasks_dir)] if name else load_tasks(settings.tasks_dir)
    chosen = [t for t in every if t.solution]
    if not name and len(chosen) < len(every):
        console.print(f"skipped (no reference solution): {', '.join(t.name for t in every if not t.solution)}")
    if name and every[0].solution is None:
        raise ConfigError(f"{every[0].source}: solution: none given, so soundness cannot be shown; add solution.patch or solution.commands")
    bad = 0
    for t in chosen:
        with console.status(f"validating {t.name}..."):
            try:
                s = validate_task(t)
            except SimulationError as e:
                console.print(f"[red]✗ {t.name}[/red]: {escape(str(e))}")
                bad += 1
                continue
        before = " ".join(f"{c.name}={'pass' if c.passed else 'FAIL'}" for c in s.before)
        after = " ".join(f"{c.name}={'pass' if c.passed else 'FAIL'}" for c in s.after)
        from beyond_vibes.suite import record_validation

        record_validation(settings, t, s.sound, s.problem)
        mark = "[green]✓[/green]" if s.sound else "[red]✗[/red]"
        console.print(f"{mark} {t.name}: before ({before}) → after solution ({after})" + (f" — {escape(s.problem)}" if s.problem else ""))
        bad += not s.sound
    if bad:
        sys.exit(1)


@main.command()
@click.option("--dataset", required=True, help="Evaluation dataset name (created if new).")
@click.option("--task", default=None)
@click.option("--archetype", default=None)
@click.option("--model", default=None)
@click.option("--quant", default=None)
@click.option("--engine", default=None)
@click.option("--status", "statuses", multiple=True, type=click.Choice(["success", "failed", "error", "timeout"]),
              help="Only runs with this outcome (repeatable).")
@click.option("--since", default=None, help="Only runs started on or after this date (YYYY-MM-DD).")
@click.option("--experiment", default=None)
@handle_errors
def curate(dataset, task, archetype, model, quant, engine, statuses, since, experiment) -> None:
    """Select simulations into an MLflow evaluation dataset (one self-contained record per run, for the judges)."""
    from beyond_vibes.curate import curate as run_curate

    r = run_curate(get_settings(), dataset, task, archetype, model, quant, engine, list(statuses) or None, since, experiment)
    console.print(f"dataset {r.dataset} ({r.dataset_id}): {r.added} run(s) added, {r.already} already in it "
                  f"({r.matched} matched the filter)")


@main.group()
def judges() -> None:
    """Compiled DSPy judges, one per task archetype."""


@judges.command("compile")
@click.option("--archetype", default=None, help="The archetype whose judge to compile.")
@click.option("--all", "all_", is_flag=True, help="Every archetype.")
@click.option("--changed", is_flag=True, help="With --all: only judges that are stale or missing.")
@click.option("--optimizer", default="bootstrap", type=click.Choice(["bootstrap", "mipro", "simba", "gepa"]), show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--experiment", default=None)
@handle_errors
def judges_compile(archetype, all_, changed, optimizer, seed, experiment) -> None:
    """Compile a judge from its rubric and labels; report its agreement with the held-out labels, per label source."""
    from beyond_vibes.judges.compile import all_archetypes, compile_judge, judge_state

    settings = get_settings()
    if bool(archetype) == bool(all_):
        raise ConfigError("judges compile: give --archetype NAME or --all")
    targets = all_archetypes() if all_ else [archetype]
    if changed:
        targets = [a for a in targets if judge_state(settings, a, experiment=experiment).state != "fresh"]
        if not targets:
            console.print("every judge is fresh; nothing to compile")
            return
    for a in targets:
        with console.status(f"compiling the {a} judge ({optimizer})..."):
            r = compile_judge(settings, a, optimizer, seed, experiment)
        m = r.meta
        console.print(f"[bold]{a}[/bold] judge {m['version']}: {m['judge_lm']}, {optimizer}, {m['train']} train / "
                      f"{m['heldout']} held out, {r.seconds:.0f} s, {r.requests} judge requests; MLflow run {r.run_id}")
        console.print(r.report_md)


@judges.command("label")
@click.option("--archetype", required=True, help="Whose rubric to label with (its runs, or --dataset's records).")
@click.option("--dataset", default=None, help="A curated dataset; default: every simulation of the archetype.")
@click.option("--labeller", default=None, help="Who you are (the assessments' source id); default: your user name.")
@click.option("--experiment", default=None)
@handle_errors
def judges_label(archetype, dataset, labeller, experiment) -> None:
    """Label records in the terminal: a score and a rationale per criterion, saved as MLflow human assessments as
    you go (q quits; the next session resumes). `judges compile` reads them as labels with source human."""
    import getpass

    from beyond_vibes.judges.label import label_session
    from beyond_vibes.tasks import Archetype

    if archetype not in {a.value for a in Archetype}:
        raise ConfigError(f"--archetype: unknown archetype {archetype!r}; choose one of "
                          f"{', '.join(a.value for a in Archetype)}")
    r = label_session(get_settings(), archetype, labeller or getpass.getuser(), dataset, experiment)
    print(f"\n{r.written} assessment(s) written on {len(r.by_record)} record(s); {r.done_before} record(s) already "
          f"done by {r.labeller}" + ("; stopped (run again to resume)" if r.quit else ""))


@judges.command("align")
@click.option("--archetype", required=True, help="The archetype whose criteria to align.")
@click.option("--criterion", "criteria", multiple=True, help="Only this criterion (repeatable); default: every one "
              "with enough labels.")
@click.option("--seed", default=0, show_default=True, help="The labels' train/held-out split (the same as compile's).")
@click.option("--steps", default=1, show_default=True, help="SIMBA optimisation steps.")
@click.option("--candidates", default=2, show_default=True, help="SIMBA candidate programs per step.")
@click.option("--batch-size", "bsize", default=4, show_default=True, help="SIMBA mini-batch size.")
@click.option("--experiment", default=None)
@handle_errors
def judges_align(archetype, criteria, seed, steps, candidates, bsize, experiment) -> None:
    """An MLflow make_judge judge per criterion, aligned to the labels with MLflow's alignment (SIMBA) and measured
    on the held-out labels beside the unaligned judge and the majority baseline."""
    from beyond_vibes.judges.aligned import align_archetype

    with console.status(f"aligning {archetype}'s make_judge judges..."):
        r = align_archetype(get_settings(), archetype, list(criteria) or None, seed, experiment, bsize, candidates, steps)
    table = Table("criterion", "train / held out", "exact [95% CI] aligned", "unaligned", "majority baseline", "trust",
                  "instructions changed", "align s")
    for name, c in r.criteria.items():
        a, u = c["agreement"]["aligned"], c["agreement"]["unaligned"]
        ci = f" [{a['exact_ci'][0]:.2f}, {a['exact_ci'][1]:.2f}]" if a.get("exact_ci") else ""
        table.add_row(name, f"{c['train']} / {c['heldout']}", f"{a['exact']:.2f}{ci}", f"{u['exact']:.2f}",
                      f"{a['majority_exact']:.2f}", c["trust"], "yes" if c["instructions_changed"] else "no",
                      f"{c['align_s']:.0f}")
    console.print(table)
    for name, why in r.skipped.items():
        console.print(f"{name}: not aligned: {why}")
    console.print(f"{r.path}: {len(r.criteria)} criterion judge(s) aligned with {r.requests} judge request(s) in "
                  f"{r.seconds:.0f} s")


@judges.command("agreement")
@click.option("--archetype", default=None, help="One archetype (default: all).")
@click.option("--experiment", default=None)
@handle_errors
def judges_agreement(archetype, experiment) -> None:
    """Agreement with the labels per judge kind: objective code, the compiled DSPy judge, the aligned MLflow
    make_judge judges, MLflow Guidelines."""
    import json as _json

    from beyond_vibes.judges.compile import all_archetypes, compiled_paths, judge_inputs
    from beyond_vibes.judges.kinds import aligned_agreement, dspy_agreement, guidelines_agreement, objective_agreement

    settings = get_settings()
    table = Table("archetype", "kind", "criterion", "n", "exact [95% CI]", "majority baseline", "trust", "by label source",
                  "note")
    for a in [archetype] if archetype else all_archetypes():
        inputs = judge_inputs(settings, a, experiment=experiment)
        meta_path = compiled_paths(settings.judges_dir, a)[1]
        meta = _json.loads(meta_path.read_text()) if meta_path.exists() else None
        rows = (objective_agreement(settings, a, inputs.labels, inputs.rubric) + dspy_agreement(meta)
                + aligned_agreement(settings, a) + [guidelines_agreement()])
        for k in rows:
            exact = "-" if k.exact is None else f"{k.exact:.2f}" + (f" [{k.exact_ci[0]:.2f}, {k.exact_ci[1]:.2f}]" if k.exact_ci else "")
            base = "-" if k.majority_exact is None else f"{k.majority_exact:.2f}"
            trust = "-" if k.exact is None else ("trusted" if k.trusted else "untrusted")
            by = ", ".join(f"{src}: {v if v is None else f'{v:.2f}'} (n {n})" for src, (n, v) in k.by_source.items()) or "-"
            table.add_row(a, k.kind, k.criterion, str(k.n), exact, base, trust, by, k.note)
    console.print(table)


@judges.command("status")
@click.option("--experiment", default=None)
@handle_errors
def judges_status(experiment) -> None:
    """Per judge: fresh, stale (why) or missing; its held-out agreement and judge LM."""
    from beyond_vibes.judges.compile import all_archetypes, judge_state, judge_trust
    from beyond_vibes.judges.program import judge_lm_identity

    settings = get_settings()
    identity = judge_lm_identity(settings)
    table = Table("archetype", "state", "why", "version", "held-out kappa / exact (uncompiled)", "trust", "judge LM",
                  "optimizer")
    for a in all_archetypes():
        st = judge_state(settings, a, lm_identity=identity, experiment=experiment)
        m = st.meta or {}
        ag = m.get("agreement", {})
        comp, base = ag.get("compiled", {}), ag.get("baseline", {})
        colour = {"fresh": "green", "stale": "yellow"}.get(st.state, "red")
        table.add_row(a, f"[{colour}]{st.state}[/{colour}]", st.why, m.get("version", "-"),
                      f"{comp.get('kappa')} / {comp.get('exact')} ({base.get('kappa')} / {base.get('exact')})" if m else "-",
                      judge_trust(m) if m else "-", m.get("judge_lm", "-"), m.get("optimizer", "-"))
    console.print(table)


@main.command()
@click.option("--dataset", required=True, help="A curated evaluation dataset.")
@click.option("--kind", "kinds", default="dspy,guidelines", show_default=True,
              help="Judge kinds: dspy (the compiled judges), guidelines (MLflow's Guidelines, one per task guideline), "
                   "aligned (MLflow make_judge judges made by `judges align`).")
@click.option("--experiment", default=None)
@handle_errors
def evaluate(dataset, kinds, experiment) -> None:
    """Score a curated dataset with the judges: assessments on the traces, aggregates on the runs."""
    from beyond_vibes.judges.evaluate import evaluate as run_evaluate

    with console.status(f"judging {dataset}..."):
        r = run_evaluate(get_settings(), dataset, experiment, tuple(k.strip() for k in kinds.split(",") if k.strip()))
    table = Table("archetype", "judge", "held-out kappa / exact", "trust", "scored", "already scored", "errors",
                  "self-judged", "mean scores")
    for a in r.by_archetype.values():
        table.add_row(a.archetype, a.version, f"{a.agreement_kappa} / {a.agreement_exact}", a.trust, str(a.scored),
                      str(a.skipped), str(a.errors), str(a.self_judged), ", ".join(f"{k} {v}" for k, v in a.means.items()))
    console.print(table)
    if any(not a.trust.startswith("trusted") for a in r.by_archetype.values()):
        console.print("Scores of an untrusted judge are recorded and marked (bv.judge_trust); the report greys them "
                      "and no decision uses them.")
    g = r.guidelines
    if g.judge_lm:
        console.print(f"Guidelines ({g.judge_lm}): {g.verdicts} verdict(s), {g.yes} yes, {g.errors} error(s), "
                      f"{g.skipped} already judged, {g.self_judged} self-judged; no agreement with labels is measured "
                      "for them yet, so no decision uses them")
    for a, s in r.aligned.items():
        console.print(f"aligned make_judge ({a}: {', '.join(s.criteria)}): {s.scored} score(s), {s.errors} error(s), "
                      f"{s.skipped} already scored, {s.self_judged} self-judged; trust per criterion is on each "
                      "assessment (judges agreement shows it)")
    rate = f", {r.scored / (r.seconds / 60):.1f} records/min" if r.scored and r.seconds else ""
    console.print(f"{r.scored} record(s) scored with {r.requests} judge request(s) in {r.seconds:.0f} s{rate}")


@main.command()
@click.option("--port", default=5000, show_default=True)
@click.option("--experiment", default=None, help="Experiment to open (default: beyond-vibes).")
@handle_errors
def ui(port, experiment) -> None:
    """Open the MLflow UI on the tracking store."""
    from beyond_vibes.tracking import review_url, tracking_client

    settings = get_settings()
    uri = settings.tracking_uri
    _, exp_id = tracking_client(settings, experiment)  # creates the store and experiment if this is the first command
    if not uri.startswith("sqlite:"):
        console.print(f"tracking server: {safe_uri(uri)}; the runs as a reviewer sees them: {review_url(uri, exp_id)}")
        return
    console.print(f"MLflow UI on {uri}; the runs as a reviewer sees them: {review_url(f'http://127.0.0.1:{port}', exp_id)}")
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    os.execv(str(mlflow_bin), [str(mlflow_bin), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)])


@main.command()
def doctor() -> None:
    """What is installed and reachable."""
    from beyond_vibes.doctor import diagnose

    findings = diagnose(get_settings())
    table = Table("component", "status", "detail")
    for f in findings:
        status = "[green]ok[/green]" if f.ok else ("[red]missing[/red]" if f.required else "[yellow]no[/yellow]")
        table.add_row(f.name, status, f.detail)
    console.print(table)
    if any(f.required and not f.ok for f in findings):
        sys.exit(1)


if __name__ == "__main__":
    main()
