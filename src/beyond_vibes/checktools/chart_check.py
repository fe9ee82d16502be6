"""A Helm chart task's checks (stdlib + PyYAML + jsonschema: it runs inside the sandbox with the toolchain's Python,
mounted read-only at /opt/bv/checktools). Every subcommand takes the chart folder and the helm binary to use, and
refuses a helm whose sha256 is not the pinned one (a workspace could swap in a fake that always succeeds):

    chart_check.py lint   CHART --helm H --helm-sha256 X [--values F]... [--unchanged REL]...
        Chart.yaml is well-formed, values.yaml (and values.yaml with each F over it) validates against
        values.schema.json, `helm lint --strict` and `helm template` succeed with the defaults and with each F, and
        each REL (relative to CHART) is as it was at $BV_BASE_COMMIT.
    chart_check.py expect CHART --helm H --helm-sha256 X --values F [--hook REL] [--gone REL]
        What the kube-ai-stack chart must render for the values F (the conventions of its AGENTS.md and README):
        resources per enabled model and none for a disabled one, the Service selecting the Deployment's pods, the
        PVC it mounts, per-model overrides, the LiteLLM model list, string annotations and sync waves, values that
        break the schema rejected, and the Helm test hook rendered from templates/ (REL --hook) and not left
        where Helm never reads it (REL --gone).
    chart_check.py tests  TESTS --helm H --helm-sha256 X [--min-tests N]
        The pytest file TESTS passes with `helm` on PATH, at least N tests pass, none is skipped, and they ran both
        `helm lint` and `helm template`.
    chart_check.py breaks TESTS --chart CHART --helm H --helm-sha256 X --breaks SPEC.yaml
        TESTS pass on the chart as it is, then fail with each break of SPEC planted in the chart (one at a time,
        in place, restored afterwards) and still pass with each of SPEC's controls (edits that keep what the chart
        renders: tests that compare file text instead of rendered manifests fail those).

Helm insists on finding a chart's dependencies in its charts/ folder even when their conditions disable them, and
`helm dependency update` needs the network: the chart is rendered from a temporary copy in which every dependency
that is missing gets an empty stand-in chart of its name and version. The chart itself is never changed, except
by `breaks`, which restores every file it touched.

Exit 0 when it holds; otherwise 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

HELM_TIMEOUT_S = 120
PYTEST_TIMEOUT_S = 300  # the tests on the chart as it is
BREAK_TIMEOUT_S = 90  # each run with a break planted: a dozen runs stay inside the check's timeout, so the
# check is never killed with a break still in the chart
SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
# Sync-wave keys of integrations.argocd.syncWave by resource kind (the chart's AGENTS.md: every resource has one).
WAVE_KEYS = {"ConfigMap": "configMap", "PersistentVolumeClaim": "pvc", "Deployment": "deployment",
             "Service": "service", "ServiceMonitor": "serviceMonitor", "ElastiService": "autoscaling"}
WAVE = "argocd.argoproj.io/sync-wave"
HOOK = "helm.sh/hook"


# ---- helm -----------------------------------------------------------------------------------------------------


def helm_problem(helm: Path, sha256: str) -> str | None:
    """Why `helm` cannot be used: missing, or not the pinned build."""
    if not helm.is_file():
        return f"{helm}: no helm binary there (the task's setup puts the pinned helm there)"
    digest = hashlib.sha256(helm.read_bytes()).hexdigest()
    if digest != sha256.lower():
        return f"{helm}: sha256 {digest} is not the pinned helm's {sha256}"
    return None


def helm_env(home: Path) -> dict[str, str]:
    """helm's config, cache and data in a scratch folder: nothing of the workspace's or the home's is read."""
    return {**os.environ, "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data")}


def run_helm(helm: Path, args: list[str], scratch: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=HELM_TIMEOUT_S,
                              env=helm_env(scratch))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([str(helm), *args], 124, "", f"helm timed out after {HELM_TIMEOUT_S}s")


def staged_chart(chart: Path, scratch: Path) -> Path:
    """A copy of `chart` with an empty stand-in for each dependency that its charts/ folder lacks."""
    dest = scratch / "chart" / chart.resolve().name
    shutil.rmtree(dest.parent, ignore_errors=True)
    shutil.copytree(chart, dest, symlinks=True)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    for dep in meta.get("dependencies") or []:
        name, version = str(dep.get("name", "")), str(dep.get("version", "0.0.0"))
        sub = dest / "charts" / name
        if name and not sub.exists() and not list((dest / "charts").glob(f"{name}-*.tgz")):
            sub.mkdir(parents=True)
            (sub / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version}))
    return dest


def first_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("==>")]
    return " | ".join(lines[:n]) or "no output"


def documents(rendered: str) -> list[tuple[str, dict]]:
    """`helm template` output as (source template, manifest) pairs; empty documents dropped."""
    docs = []
    for chunk in re.split(r"^---\s*$", rendered, flags=re.MULTILINE):
        source = next((line[len("# Source: "):].strip() for line in chunk.splitlines()
                       if line.startswith("# Source: ")), "")
        doc = yaml.safe_load(chunk)
        if isinstance(doc, dict):
            docs.append((source, doc))
    return docs


# ---- values ---------------------------------------------------------------------------------------------------


def merged(base, over):
    """Helm's coalescing of a values file over the chart's values: maps merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merged(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def load_yaml(path: Path, problems: list[str]):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"{path}: cannot be read as YAML ({str(e).splitlines()[0]})")
        return None


def schema_problems(values, schema: dict, what: str) -> list[str]:
    errors = sorted(Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
    return [f"{what}: at /{'/'.join(map(str, e.absolute_path))}: {e.message} (values.schema.json)" for e in errors]


def chart_yaml_problems(chart: Path) -> list[str]:
    """Chart.yaml parses to a v2 chart with a name, a semantic version and well-formed dependencies."""
    problems: list[str] = []
    meta = load_yaml(chart / "Chart.yaml", problems)
    if problems:
        return problems
    if not isinstance(meta, dict):
        return [f"{chart}/Chart.yaml: not a mapping"]
    if meta.get("apiVersion") != "v2":
        problems.append(f"{chart}/Chart.yaml: apiVersion is {meta.get('apiVersion')!r}, not 'v2'")
    for key in ("name", "version"):
        if not isinstance(meta.get(key), str) or not meta.get(key):
            problems.append(f"{chart}/Chart.yaml: {key} is missing or not a string")
    if isinstance(meta.get("version"), str) and not SEMVER.match(meta["version"]):
        problems.append(f"{chart}/Chart.yaml: version {meta['version']!r} is not a semantic version")
    deps = meta.get("dependencies") or []
    if not isinstance(deps, list):
        return problems + [f"{chart}/Chart.yaml: dependencies is not a list"]
    for i, dep in enumerate(deps):
        missing = [k for k in ("name", "version", "repository") if not isinstance(dep, dict) or not dep.get(k)]
        if missing:
            problems.append(f"{chart}/Chart.yaml: dependencies[{i}] lacks {', '.join(missing)}")
    return problems


def unchanged_problems(chart: Path, rels: list[str]) -> list[str]:
    base = os.environ.get("BV_BASE_COMMIT")
    if rels and not base:
        return ["BV_BASE_COMMIT is not set: cannot compare with the base commit"]
    problems = []
    for rel in rels:
        path = chart / rel
        code = subprocess.run(["git", "diff", "--quiet", base, "--", str(path)], capture_output=True).returncode
        if code != 0:
            problems.append(f"{path}: changed since the base commit; the task asks to leave it as it was")
    return problems


# ---- lint -----------------------------------------------------------------------------------------------------


def lint(chart: Path, helm: Path, values_files: list[Path], unchanged: list[str]) -> list[str]:
    problems = chart_yaml_problems(chart) + unchanged_problems(chart, unchanged)
    values = load_yaml(chart / "values.yaml", problems)
    schema_path = chart / "values.schema.json"
    try:
        schema = json.loads(schema_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return problems + [f"{schema_path}: not valid JSON ({e})"]
    problems += schema_problems(values, schema, f"{chart}/values.yaml")
    for extra in values_files:
        over = load_yaml(extra, problems)
        problems += schema_problems(merged(values, over), schema, f"{chart}/values.yaml with {extra.name}")
    with tempfile.TemporaryDirectory() as tmp:
        staged = staged_chart(chart, Path(tmp))
        for extra in [None, *values_files]:
            args = ["-f", str(extra)] if extra else []
            what = f"with {extra.name}" if extra else "with its default values"
            done = run_helm(helm, ["lint", "--strict", str(staged), *args], Path(tmp))
            if done.returncode != 0:
                errors = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "[ERROR]" in line)
                problems.append(f"helm lint --strict {what} fails: {first_lines(errors or done.stderr)}")
            done = run_helm(helm, ["template", "release", str(staged), *args], Path(tmp))
            if done.returncode != 0:
                problems.append(f"helm template {what} fails: {first_lines(done.stderr)}")
    return problems


# ---- expect (kube-ai-stack) -----------------------------------------------------------------------------------


def render(chart: Path, helm: Path, values_file: Path | None) -> tuple[subprocess.CompletedProcess, list]:
    with tempfile.TemporaryDirectory() as tmp:
        staged = staged_chart(chart, Path(tmp))
        done = run_helm(helm, ["template", "release", str(staged), *(["-f", str(values_file)] if values_file else [])],
                        Path(tmp))
    return done, (documents(done.stdout) if done.returncode == 0 else [])


def find(docs: list, kind: str, name: str) -> dict | None:
    return next((d for _, d in docs if d.get("kind") == kind and (d.get("metadata") or {}).get("name") == name), None)


def model_port(model: dict, glob: dict) -> int:
    return (model.get("service") or {}).get("port", glob["service"]["port"])


def model_problems(docs: list, model: dict, glob: dict) -> list[str]:
    """An enabled model's Deployment, Service and PVC, and how they fit together."""
    name = model["name"]
    deploy, service = find(docs, "Deployment", name), find(docs, "Service", name)
    pvc = find(docs, "PersistentVolumeClaim", f"{name}-cache")
    wanted = ((f"Deployment {name}", deploy), (f"Service {name}", service),
              (f"PersistentVolumeClaim {name}-cache", pvc))
    problems = [f"model {name!r} is enabled but no {what} renders" for what, doc in wanted if doc is None]
    if deploy is None:
        return problems
    pod = deploy["spec"]["template"]
    claims = [(v.get("persistentVolumeClaim") or {}).get("claimName") for v in pod["spec"].get("volumes") or []]
    if f"{name}-cache" not in claims:
        problems.append(f"Deployment {name} does not mount the PersistentVolumeClaim {name}-cache (claims: {claims})")
    labels = pod.get("metadata", {}).get("labels") or {}
    image = merged(glob.get("image") or {}, model.get("image") or {})
    want = f"{image.get('repository')}:{image.get('tag')}"
    got = [c.get("image") for c in pod["spec"].get("containers") or []]
    if want not in got:
        problems.append(f"Deployment {name} runs {got}, not the model's image {want} (its image overrides global)")
    if service is not None:
        selector = service["spec"].get("selector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"Service {name} selects {selector}, which does not match its Deployment's pods {labels}")
        ports = [p.get("port") for p in service["spec"].get("ports") or []]
        if model_port(model, glob) not in ports:
            problems.append(f"Service {name} listens on {ports}, not the model's port {model_port(model, glob)}")
    return problems


def litellm_problems(docs: list, models: list[dict], glob: dict) -> list[str]:
    if not (glob.get("litellm") or {}).get("manage_config"):
        return []
    config_map = find(docs, "ConfigMap", "litellm-config")
    if config_map is None:
        return ["no ConfigMap litellm-config renders although global.litellm.manage_config is true"]
    config = yaml.safe_load((config_map.get("data") or {}).get("config.yaml") or "") or {}
    listed = {e.get("model_name"): e for e in config.get("model_list") or []}
    want = [m["name"] for m in models if m.get("enabled") and (m.get("litellm") or {}).get("enabled", True)]
    problems = []
    if sorted(listed) != sorted(want):
        problems.append(f"litellm-config lists {sorted(listed)}, not the enabled, registered models {sorted(want)}")
    for m in models:
        entry = listed.get(m["name"])
        base = f"http://{m['name']}.{glob['namespace']}.svc.cluster.local:{model_port(m, glob)}/v1"
        got = (entry or {}).get("litellm_params", {}).get("api_base")
        if entry and got != base:
            problems.append(f"litellm-config sends {m['name']!r} to {got}, not to its Service at {base}")
    return problems


def annotation_problems(docs: list, waves: dict) -> list[str]:
    """Annotation values are strings, and every resource but a hook has the sync wave of its kind."""
    problems = []
    for _, doc in docs:
        meta = doc.get("metadata") or {}
        what = f"{doc.get('kind')} {meta.get('name')}"
        notes = meta.get("annotations") or {}
        for key, value in notes.items():
            if not isinstance(value, str):
                problems.append(f"{what}: annotation {key} is {value!r}, a {type(value).__name__}; Kubernetes takes "
                                "only strings")
        key = WAVE_KEYS.get(doc.get("kind"))
        if key and HOOK not in notes and str(notes.get(WAVE)) != str(waves.get(key)):
            problems.append(f"{what}: {WAVE} is {notes.get(WAVE)!r}, not integrations.argocd.syncWave.{key} "
                            f"({waves.get(key)!r})")
    return problems


def hook_problems(docs: list, chart: Path, models: list[dict], glob: dict, hook: str, gone: str) -> list[str]:
    problems = [f"{chart / gone}: still there; Helm renders only templates/, so `helm test` never finds it"] \
        if (chart / gone).exists() else []
    pods = [(src, d) for src, d in docs if d.get("kind") == "Pod"
            and "test" in str((d.get("metadata", {}).get("annotations") or {}).get(HOOK, "")).split(",")]
    if not pods:
        return problems + [f"no Pod with the annotation {HOOK}: test renders (the chart's Helm test)"]
    source, pod = pods[0]
    if not source.endswith(f"/{hook}"):
        problems.append(f"the Helm test Pod renders from {source}, not from {hook}")
    if models and models[0].get("enabled"):
        target = f"{models[0]['name']}:{model_port(models[0], glob)}/health"
        words = [str(w) for c in pod["spec"].get("containers") or []
                 for w in (c.get("command") or []) + (c.get("args") or [])]
        if not any(target in w for w in words):
            problems.append(f"the Helm test Pod runs {words}, which does not fetch {target} (the first model's health)")
    return problems


def expect(chart: Path, helm: Path, values_file: Path, hook: str, gone: str) -> list[str]:
    problems: list[str] = []
    values = merged(load_yaml(chart / "values.yaml", problems) or {}, load_yaml(values_file, problems) or {})
    if problems:
        return problems
    glob, models = values["global"], values.get("models") or []
    try:
        done, docs = render(chart, helm, values_file)
    except yaml.YAMLError as e:
        return [f"helm template with {values_file.name} renders YAML that does not parse: {str(e).splitlines()[0]}"]
    if done.returncode != 0:
        return [f"helm template with {values_file.name} fails: {first_lines(done.stderr)}"]
    for model in models:
        if model.get("enabled"):
            problems += model_problems(docs, model, glob)
        else:
            names = {model["name"], f"{model['name']}-cache", f"{model['name']}-template"}
            problems += [f"model {model['name']!r} is disabled but {d['kind']} {d['metadata']['name']} renders"
                         for _, d in docs if (d.get("metadata") or {}).get("name") in names]
    problems += litellm_problems(docs, models, glob)
    waves = ((values.get("integrations") or {}).get("argocd") or {}).get("syncWave") or {}
    problems += annotation_problems(docs, waves)
    problems += hook_problems(docs, chart, models, glob, hook, gone)
    with tempfile.TemporaryDirectory() as tmp:
        nameless = Path(tmp) / "nameless-model.yaml"
        nameless.write_text("models:\n  - enabled: true\n")
        if render(chart, helm, nameless)[0].returncode == 0:
            problems.append("a model without a name renders: values.schema.json no longer requires models[].name")
    return problems


# ---- the agent's tests ----------------------------------------------------------------------------------------


def shim(helm: Path, where: Path) -> tuple[Path, Path]:
    """A folder with a `helm` that logs its arguments and runs the real one: the tests find helm on PATH, and the
    log shows what they ran."""
    bin_dir, log = where / "bin", where / "helm-calls.log"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "helm"
    script.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> "{log}"\nexec "{helm.resolve()}" "$@"\n')
    script.chmod(0o755)
    log.touch()
    return bin_dir, log


def run_tests(tests: Path, bin_dir: Path, junit: Path, timeout_s: int = PYTEST_TIMEOUT_S) -> tuple[int | None, str]:
    """pytest on the test file, from the repository root, with the helm shim first on PATH. (exit code or None on
    a timeout, output)."""
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), f"--junitxml={junit}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s}s"
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def junit_counts(junit: Path) -> dict[str, int]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    except (OSError, ET.ParseError):
        pass
    return counts


def tests_check(tests: Path, helm: Path, min_tests: int) -> list[str]:
    if not tests.is_file():
        return [f"{tests}: no such file (the task asks for the chart's tests there)"]
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir, log = shim(helm, Path(tmp))
        junit = Path(tmp) / "junit.xml"
        code, output = run_tests(tests, bin_dir, junit)
        counts, calls = junit_counts(junit), log.read_text().splitlines()
    problems = []
    if code != 0:
        problems.append(f"{tests} does not pass (pytest exit {code}): {summary(output)}")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    if passed < min_tests:
        problems.append(f"{tests}: {passed} tests passed; the task asks for at least {min_tests}")
    if counts["skipped"]:
        problems.append(f"{tests}: {counts['skipped']} tests skipped; a skipped test checks nothing")
    for sub in ("lint", "template"):
        if not any(call.split()[:1] == [sub] for call in calls):
            problems.append(f"{tests} never ran `helm {sub}` (helm on PATH)")
    return problems


# ---- breaks ---------------------------------------------------------------------------------------------------


def plant(chart: Path, edit: dict) -> tuple[Path, str | None, str | None]:
    """Apply one edit of a breaks spec to the chart: (file, its original text, why it could not be applied)."""
    path = chart / edit["file"]
    try:
        original = path.read_text()
    except OSError:
        return path, None, f"{path} does not exist"
    if "append" in edit:
        new = original + edit["append"]
    elif "json" in edit:
        new = json.dumps(json.loads(original), indent=int(edit["json"])) + "\n"
    else:
        new, count = re.subn(edit["find"], edit["replace"], original)
        if not count:
            return path, None, f"/{edit['find']}/ matches nothing in {path}"
    path.write_text(new)
    return path, original, None


def _terminate(signum, frame):  # a timeout's SIGTERM still restores the chart (the `finally` below)
    raise SystemExit(f"stopped by signal {signum}")


def breaks_check(tests: Path, chart: Path, helm: Path, spec: dict) -> list[str]:
    if not tests.is_file():
        return [f"{tests}: no such file (the task asks for the chart's tests there)"]
    signal.signal(signal.SIGTERM, _terminate)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir, _ = shim(helm, Path(tmp))
        junit = Path(tmp) / "junit.xml"
        code, output = run_tests(tests, bin_dir, junit)
        if code != 0:
            return [f"{tests} does not pass on the unbroken chart (pytest exit {code}), so a break proves nothing: "
                    f"{summary(output)}"]
        for kind, edits in (("break", spec.get("breaks") or []), ("control", spec.get("controls") or [])):
            for edit in edits:
                path, original, why_not = plant(chart, edit)
                if why_not:
                    problems.append(f"{kind} {edit['name']!r}: cannot be planted: {why_not} (keep that template's "
                                    "logic as it was)")
                    continue
                try:
                    code, output = run_tests(tests, bin_dir, junit, BREAK_TIMEOUT_S)
                finally:
                    path.write_text(original)
                problems += verdict(kind, edit, code, output)
    return problems


def verdict(kind: str, edit: dict, code: int | None, output: str) -> list[str]:
    """A break must make the tests fail (pytest exit 1, or 2 for an error while collecting); a control must not."""
    where = edit["file"]
    if kind == "break" and code not in (1, 2):
        how = "still pass" if code == 0 else f"end with exit {code}: {summary(output)}"
        return [f"break {edit['name']!r} ({where}) goes unnoticed: the tests {how}; they should catch: {edit['why']}"]
    if kind == "control" and code != 0:
        return [f"control {edit['name']!r} ({where}: {edit['why']}) makes the tests fail (exit {code}): they check "
                f"the files' text, not what the chart renders: {summary(output)}"]
    return []


# ---- command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("lint", "expect", "tests", "breaks"):
        p = sub.add_parser(name)
        p.add_argument("target", type=Path, help="the chart (lint, expect) or the pytest file (tests, breaks)")
        p.add_argument("--helm", type=Path, required=True)
        p.add_argument("--helm-sha256", required=True)
        p.add_argument("--values", type=Path, action="append", default=[], required=name == "expect")
        p.add_argument("--unchanged", action="append", default=[])
        p.add_argument("--chart", type=Path, help="breaks: the chart to plant the breaks in")
        p.add_argument("--min-tests", type=int, default=1)
        p.add_argument("--breaks", type=Path)
        p.add_argument("--hook", default="templates/tests/test-connection.yaml")
        p.add_argument("--gone", default="tests/test-connection.yaml")
    args = ap.parse_args(argv)
    if args.command == "breaks" and not (args.chart and args.breaks):
        ap.error("breaks needs --chart and --breaks")
    problem = helm_problem(args.helm, args.helm_sha256)
    if problem:
        problems = [problem]
    elif args.command == "lint":
        problems = lint(args.target, args.helm, args.values, args.unchanged)
    elif args.command == "expect":
        try:
            problems = expect(args.target, args.helm, args.values[0], args.hook, args.gone)
        except (KeyError, TypeError, AttributeError, IndexError) as e:  # a manifest without spec, a list for a map
            problems = [f"the rendered manifests lack what a {e.__class__.__name__} names: {e}"]
    elif args.command == "tests":
        problems = tests_check(args.target, args.helm, args.min_tests)
    else:
        problems = breaks_check(args.target, args.chart, args.helm, yaml.safe_load(args.breaks.read_text()))
    for line in problems:
        print(line)
    if not problems:
        print(f"chart_check {args.command}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
