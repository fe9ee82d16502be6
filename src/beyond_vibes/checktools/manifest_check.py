"""A Kubernetes feature task's check (stdlib + PyYAML: it runs inside the sandbox with the toolchain's Python, mounted
read-only at /opt/bv/checktools): new apps in a kustomize folder follow the pattern of reference apps beside them.

    python /opt/bv/checktools/manifest_check.py kubernetes/manifests/apps/media/servarr \
        --app lidarr --app readarr --like radarr --like sonarr
    python /opt/bv/checktools/manifest_check.py kubernetes/manifests/apps/media/servarr \
        --app lidarr --app readarr --ports-only --port lidarr=8686 --port readarr=8787

What "the pattern" is comes from the reference apps themselves, never from a list in this file:

- layout and kinds: the new app's folder has the files and the resource kinds that every reference app has;
- namespace: its namespaced resources live in the namespace the references share;
- names: wherever every reference writes its own name (metadata.name, labels, selectors, container names, env
  names such as RADARR__AUTH__METHOD, claim names such as radarr-config), the new app writes its name;
- Kubernetes consistency: selectors match the pod labels, a Service targets a declared container port, each
  kustomization lists files that exist and every file of the app is listed, a container runs the app's image;
- wiring: in the folder's top-level files (kustomization, Argo CD application values), every list that has an
  entry for each reference (a string naming it, or a mapping whose `name` names it) has one for the new app, with
  what the references' entries share (the same keys and values, the app's name in place of theirs);
- no copies: nothing of the new app names another app of the folder (a copied radarr folder renamed to lidarr
  still says radarr inside).

`--port APP=N` adds: the app's containers declare port N; `--ports-only` checks just that (a check of its own).

It proves the manifests parse and are consistent with each other and with their siblings; it does not render them
with kustomize or check that an image tag exists. Exit 0 when all holds; otherwise 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
CLUSTER_SCOPED = ("Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "PriorityClass", "IngressClass")
KUSTOMIZE = ("Kustomization", "Component")  # kustomize's own files, not cluster resources
TEMPLATE = "{app}"


def tokens(text: str) -> list[str]:
    """The lower-case alphanumeric words of a string: "UN_RADARR_0_API_KEY" has the word "radarr"."""
    return [t for t in re.split(r"[^a-z0-9]+", str(text).lower()) if t]


def names(text: str, app: str) -> bool:
    return app.lower() in tokens(text)


def templated(value, app: str) -> str | None:
    """A string with the app's name (as a whole word, any case) replaced by {app}, lower-cased; None when the value
    does not name the app. radarr's "RADARR__APP__THEME" and sonarr's "SONARR__APP__THEME" give one template."""
    if not isinstance(value, str) or not names(value, app):
        return None
    return re.sub(rf"(?<![a-z0-9]){re.escape(app.lower())}(?![a-z0-9])", TEMPLATE, value.lower())


def yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def load(path: Path) -> tuple[list[dict], str | None]:
    """The YAML documents of a file (mappings only), or the parse error as one line."""
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8", errors="replace")))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return [], f"does not parse as YAML{where}: {getattr(e, 'problem', None) or e}"
    return [d for d in docs if isinstance(d, dict)], None


def leaves(node, path: tuple = ()):
    """(path, scalar) for every scalar under node; list positions are "[]" so that order does not matter."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, str(k)))
    elif isinstance(node, list):
        for v in node:
            yield from leaves(v, (*path, "[]"))
    else:
        yield path, node


def keys(node):
    """Every mapping key under node (a copied recyclarr-like `radarr:` key names radarr as much as a value does)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from keys(v)


def show(path: tuple) -> str:
    return ".".join(path).replace(".[]", "[]") or "(top)"


class App:
    """One app's folder: its files, their documents, parse errors."""

    def __init__(self, root: Path, name: str):
        self.name, self.root, self.folder = name, root, root / name
        self.files = yaml_files(self.folder) if self.folder.is_dir() else []
        self.docs: list[tuple[Path, dict]] = []
        self.errors: list[str] = []
        for f in self.files:
            docs, error = load(f)
            if error:
                self.errors.append(f"{self.rel(f)}: {error}")
            self.docs += [(f, d) for d in docs]

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def layout(self) -> set[str]:
        return {str(f.relative_to(self.folder)) for f in self.files}

    def kinds(self) -> set[str]:
        return {d.get("kind") for _, d in self.docs if isinstance(d.get("kind"), str)}

    def of_kind(self, kinds) -> list[tuple[Path, dict]]:
        return [(f, d) for f, d in self.docs if d.get("kind") in kinds]

    def namespaces(self) -> set:
        return {(d.get("metadata") or {}).get("namespace") for _, d in self.namespaced()}

    def namespaced(self) -> list[tuple[Path, dict]]:
        return [(f, d) for f, d in self.docs if isinstance(d.get("kind"), str)
                and d["kind"] not in CLUSTER_SCOPED + KUSTOMIZE
                and not str(d.get("apiVersion", "")).startswith("kustomize.config.k8s.io")]

    def name_rules(self) -> set[tuple[str, tuple, str]]:
        """(kind, path, template) wherever this app writes its own name."""
        return {(d.get("kind"), p, t) for _, d in self.docs for p, v in leaves(d) if (t := templated(v, self.name))}

    def values(self) -> dict[tuple[str, tuple], set[str]]:
        out: dict[tuple[str, tuple], set[str]] = {}
        for _, d in self.docs:
            for p, v in leaves(d):
                out.setdefault((d.get("kind"), p), set()).add(str(v).lower())
        return out


def containers(doc: dict) -> list[dict]:
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]


def pod_labels(doc: dict) -> dict:
    return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def image_name(image: str) -> str:
    """The repository's last path part: "lscr.io/linuxserver/lidarr:2.13.3" is "lidarr"."""
    return str(image).split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def container_ports(app: App) -> tuple[set[int], set[str]]:
    numbers, named = set(), set()
    for _, d in app.of_kind(WORKLOADS):
        for c in containers(d):
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    if isinstance(port.get("containerPort"), int):
                        numbers.add(port["containerPort"])
                    if port.get("name"):
                        named.add(str(port["name"]))
    return numbers, named


def check_layout(app: App, refs: list[App]) -> list[str]:
    if not app.files:
        return [f"{app.name}: no YAML files in {app.name}/ (the references have {', '.join(sorted(refs[0].layout()))})"]
    want = set.intersection(*(r.layout() for r in refs))
    return [f"{app.name}: no {app.name}/{f} ({' and '.join(r.name for r in refs)} each have one)"
            for f in sorted(want - app.layout())]


def check_kinds(app: App, refs: list[App]) -> list[str]:
    want = set.intersection(*(r.kinds() for r in refs))
    return [f"{app.name}: no {kind} ({' and '.join(r.name for r in refs)} each have one)"
            for kind in sorted(want - app.kinds())]


def check_namespace(app: App, refs: list[App]) -> list[str]:
    shared = set.union(*(r.namespaces() for r in refs))
    if len(shared) != 1 or None in shared:
        return []
    (ns,) = shared
    out = []
    for f, d in app.namespaced():
        have = (d.get("metadata") or {}).get("namespace")
        if have != ns:
            what = f"namespace {have!r}" if have else "no namespace"
            out.append(f"{app.rel(f)}: {d['kind']} {(d.get('metadata') or {}).get('name')} has {what}, "
                       f"the references use {ns!r}")
    return out


def check_names(app: App, refs: list[App]) -> list[str]:
    """Wherever every reference writes its own name, the app writes its name: one line per kind of resource, naming
    the places (a copied Deployment gets one line, not one per label)."""
    want = set.intersection(*(r.name_rules() for r in refs))
    have = app.values()
    misses: dict[str, list[str]] = {}
    for kind, path, template in sorted(want, key=lambda r: (str(r[0]), r[1], r[2])):
        if kind not in app.kinds():
            continue  # reported once as a missing kind
        expected = template.replace(TEMPLATE, app.name.lower())
        got = have.get((kind, path), set())
        if expected in got:
            continue
        if "[]" in path or not got:  # a list (env names, volumes): the value is one among others
            misses.setdefault(kind, []).append(f"{show(path)} has no {expected!r}")
        else:
            misses.setdefault(kind, []).append(f"{show(path)} is {', '.join(sorted(got))!r}")
    refs_text = " and ".join(r.name for r in refs)
    out = []
    for kind, places in misses.items():
        more = f"; and {len(places) - 4} more" if len(places) > 4 else ""
        out.append(f"{app.name}: {kind} does not carry its own name where {refs_text} carry theirs: "
                   f"{'; '.join(places[:4])}{more}")
    return out


def check_workloads(app: App) -> list[str]:
    """Selectors match pod labels and a container runs the app's image."""
    out = []
    for f, d in app.of_kind(WORKLOADS):
        name = (d.get("metadata") or {}).get("name")
        match = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        labels = pod_labels(d)
        if not match:
            out.append(f"{app.rel(f)}: {d['kind']} {name} has no spec.selector.matchLabels")
        elif any(labels.get(k) != v for k, v in match.items()):
            out.append(f"{app.rel(f)}: {d['kind']} {name} selects {match}, its pods are labelled {labels}")
        images = [str(c.get("image", "")) for c in containers(d)]
        if not any(names(image_name(i), app.name) for i in images):
            out.append(f"{app.rel(f)}: {d['kind']} {name} runs no {app.name} image "
                       f"(images: {', '.join(images) or 'none'})")
    return out


def check_ports(app: App, ports: list[int]) -> list[str]:
    """The app's containers declare the requested ports (the app's real default ports, say)."""
    if not app.of_kind(WORKLOADS):
        return [f"{app.name}: no workload in {app.name}/ declares container ports {', '.join(map(str, ports))}"]
    numbers, _ = container_ports(app)
    declared = ", ".join(map(str, sorted(numbers))) or "none"
    return [f"{app.name}: container port {port} is not declared (declared: {declared})"
            for port in ports if port not in numbers]


def check_services(app: App) -> list[str]:
    """Each Service selects the app's pods and targets a port a container declares."""
    out = []
    numbers, named = container_ports(app)
    pods = [pod_labels(d) for _, d in app.of_kind(WORKLOADS)]
    for f, d in app.of_kind(("Service",)):
        name = (d.get("metadata") or {}).get("name")
        spec = d.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or not any(all(p.get(k) == v for k, v in selector.items()) for p in pods):
            out.append(f"{app.rel(f)}: Service {name} selects {selector or 'nothing'}, which no {app.name} pod carries")
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            target = port.get("targetPort", port.get("port"))
            if target not in numbers and str(target) not in named:
                out.append(f"{app.rel(f)}: Service {name} targets port {target}, "
                           f"which no {app.name} container declares "
                           f"(declared: {', '.join(map(str, sorted(numbers))) or 'none'})")
    return out


def kustomization_resources(doc: dict) -> list[str]:
    """A kustomization's local resources (remote ones, with "://", are not files here)."""
    return [r for r in doc.get("resources") or [] if isinstance(r, str) and "://" not in r]


def check_kustomizations(app: App) -> list[str]:
    """Each kustomization of the app lists files that exist; each other file of the app is listed by one."""
    out, listed = [], set()
    for f, d in app.docs:
        if d.get("kind") != "Kustomization":
            continue
        for r in kustomization_resources(d):
            target = (f.parent / r).resolve()
            listed.add(target)
            if not target.exists():
                out.append(f"{app.rel(f)}: resources lists {r}, which does not exist")
    kustomizations = {f for f, d in app.docs if d.get("kind") == "Kustomization"}
    for f in app.files:
        if f not in kustomizations and f.resolve() not in listed and f.resolve().parent not in listed:
            out.append(f"{app.rel(f)}: not in the resources of any kustomization of {app.name}")
    return out


def check_copies(app: App, others: list[str]) -> list[str]:
    """Nothing of the app names another app of the folder: one line per file and app named."""
    out = []
    for f in app.files:
        docs = [d for g, d in app.docs if g == f]
        words = [(show(p), str(v)) for d in docs for p, v in leaves(d) if isinstance(v, str)]
        words += [("key", k) for d in docs for k in keys(d)]
        for other in others:
            hits = [where for where, text in words if names(text, other)]
            if hits:
                out.append(f"{app.rel(f)}: names {other} in {len(hits)} place(s), e.g. {hits[0]} "
                           f"(a copy of {other} not renamed?)")
    return out


def about(item, app: str) -> bool:
    """A list entry is about an app when it is a string naming it or a mapping whose `name` names it."""
    if isinstance(item, str):
        return names(item, app)
    return isinstance(item, dict) and isinstance(item.get("name"), str) and names(item["name"], app)


def shape(item, app: str) -> set[tuple[tuple, str]]:
    """An entry as (path, value) pairs, the app's name replaced by {app}: what two apps' entries can share."""
    return {(p, templated(v, app) or str(v).lower()) for p, v in leaves(item)}


def lists(node, path: tuple = ()):
    """(path, list) for every list under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from lists(v, (*path, str(k)))
    elif isinstance(node, list):
        yield path, node
        for v in node:
            yield from lists(v, (*path, "[]"))


def entry_problems(item, app: str, want: set[tuple[tuple, str]]) -> list[str]:
    have = shape(item, app)
    missing = sorted(want - have)
    return [f"{show(p) if p else 'the entry'} = {v.replace(TEMPLATE, app)!r}" for p, v in missing]


def check_wiring(root: Path, apps: list[str], refs: list[str]) -> list[str]:
    """Every list in the folder's top-level files that has an entry for each reference has one for each new app,
    carrying what the references' entries share."""
    out = []
    for f in sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml")):
        docs, error = load(f)
        if error:
            out.append(f"{f.name}: {error}")
            continue
        for doc in docs:
            for path, items in lists(doc):
                per_ref = [[i for i in items if about(i, r)] for r in refs]
                if not all(per_ref):
                    continue
                want = set.intersection(*(set.union(*(shape(i, r) for i in entries))
                                          for r, entries in zip(refs, per_ref)))
                for app in apps:
                    mine = [i for i in items if about(i, app)]
                    where = f"{f.name}: {show(path)}"
                    if not mine:
                        examples = ", ".join(str(e[0] if isinstance(e[0], str) else e[0].get("name")) for e in per_ref)
                        out.append(f"{where} has no entry for {app} (it has {examples})")
                        continue
                    best = min((entry_problems(i, app, want) for i in mine), key=len)
                    if best:
                        out.append(f"{where}: the entry for {app} lacks what the references' entries share: "
                                   f"{'; '.join(best[:4])}{' ...' if len(best) > 4 else ''}")
                    others = [o for o in refs if any(names(str(v), o) for i in mine for _, v in leaves(i))]
                    for other in others:
                        out.append(f"{where}: the entry for {app} still names {other}")
    return out


def check(root: Path, apps: list[str], refs: list[str], ports: dict[str, list[int]]) -> list[str]:
    """Every problem of the new apps, one line each."""
    problems: list[str] = []
    ref_apps = [App(root, r) for r in refs]
    for r in ref_apps:
        if not r.files:
            problems.append(f"reference app {r.name}: no {r.name}/ folder with YAML files in {root}")
    if problems:
        return problems
    siblings = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    copies: list[str] = []
    for name in apps:
        app = App(root, name)
        problems += app.errors
        problems += check_layout(app, ref_apps)
        if not app.docs:
            continue
        problems += check_kinds(app, ref_apps)
        problems += check_namespace(app, ref_apps)
        problems += check_names(app, ref_apps)
        problems += check_workloads(app)
        problems += check_ports(app, ports.get(name, [])) if name in ports else []
        problems += check_services(app)
        problems += check_kustomizations(app)
        copies += check_copies(app, sorted(set(siblings + refs) - {name}))
    # Copies last: a check's output is kept from its end, and a leftover name says the most about a lazy answer.
    return problems + check_wiring(root, apps, refs) + copies


def parse_ports(values: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for value in values:
        app, _, port = value.partition("=")
        out.setdefault(app.strip(), []).append(int(port))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("folder", help="the kustomize folder that holds one sub-folder per app")
    ap.add_argument("--app", action="append", required=True, help="a new app (its folder's name)")
    ap.add_argument("--like", action="append", default=[], help="a reference app whose pattern the new apps follow")
    ap.add_argument("--port", action="append", default=[], help="APP=PORT: a container port the app must declare")
    ap.add_argument("--ports-only", action="store_true", help="check only the --port ports (a check of its own)")
    args = ap.parse_args(argv)
    if not args.like and not args.ports_only:
        ap.error("give at least one --like reference app")
    root = Path(args.folder)
    if not root.is_dir():
        print(f"{root}: no such folder")
        return 1
    ports = parse_ports(args.port)
    if args.ports_only:
        problems = [p for name, want in ports.items() for p in check_ports(App(root, name), want)]
        done = f"ok: container ports {', '.join(args.port)} declared"
    else:
        problems = check(root, args.app, args.like, ports)
        done = f"ok: {', '.join(args.app)} follow {', '.join(args.like)} and are wired in"
    for p in problems:
        print(p)
    if not problems:
        print(done)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
