"""A poetry-to-uv migration's dependency check (toolchain Python: stdlib tomllib + `packaging`): every dependency
of every poetry group at the base commit ($BV_BASE_COMMIT, through the harness's git) survives in the migrated
pyproject.toml with a compatible constraint, and no poetry section is left.

    python /opt/bv/checktools/poetry_deps_check.py [pyproject.toml]

Where each group goes: poetry's main dependencies to `[project].dependencies`, every other group to
`[dependency-groups].<group>` (PEP 735; what uv uses) or `[project.optional-dependencies].<group>`. `python` to
`[project].requires-python`.
"Compatible" means what poetry meant: the new constraint admits poetry's lowest version and nothing from the next
breaking release (`^2.5.43` is `>=2.5.43,<3.0.0`, `^0.5.7` is `>=0.5.7,<0.6.0`, `~1.2` is `>=1.2,<1.3`). Dropping
the upper bound (`dspy>=2.5.43`) lets `uv lock` pick the next major, a different program: that fails.

Exit 0 when it holds; otherwise 1 with one line per problem.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

_VERSION = re.compile(r"^\s*(\^|~=?|==|>=)?\s*([0-9][0-9A-Za-z.*+-]*)\s*$")


def poetry_range(constraint: str) -> tuple[Version, Version | None] | None:
    """(lowest admitted version, first version of the next breaking release) for a caret, tilde, exact or
    lower-bound poetry constraint; None for forms this check does not model (then only the lower bound counts)."""
    m = _VERSION.match(constraint)
    if not m or "*" in m.group(2):
        return None
    op, text = m.group(1) or "^", m.group(2)
    low = Version(text)
    parts = [int(p) for p in text.split("+")[0].split("-")[0].split(".") if p.isdigit()]
    if op == "^":
        first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        high = parts[: first + 1]
        high[-1] += 1
    elif op in ("~", "~="):  # poetry's ~1.2.3 and ~1.2: <1.3; ~1: <2. PEP 440's ~=1.2: <2, ~=1.2.3: <1.3
        keep = max(1, len(parts) - 1) if op == "~=" else min(len(parts), 2)
        high = parts[:keep]
        high[-1] += 1
    elif op == "==":
        return low, None
    else:  # >=: no upper bound in poetry either
        return low, None
    return low, Version(".".join(map(str, high)))


def poetry_groups(pyproject: dict) -> dict[str, dict[str, str]]:
    """{group: {name: constraint}} of a poetry pyproject: "main" for tool.poetry.dependencies (python included)."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    groups = {"main": poetry.get("dependencies", {})}
    groups.update({g: spec.get("dependencies", {}) for g, spec in poetry.get("group", {}).items()})
    groups.update({"dev-dependencies": poetry["dev-dependencies"]} if "dev-dependencies" in poetry else {})
    return {g: {n: (v if isinstance(v, str) else v.get("version", "*")) for n, v in deps.items()}
            for g, deps in groups.items()}


def migrated(pyproject: dict) -> dict[str, dict[str, SpecifierSet]]:
    """{group: {canonical name: specifier}} of a PEP 621 / PEP 735 pyproject; "main" for project.dependencies."""
    project = pyproject.get("project", {})
    groups: dict[str, list[str]] = {"main": project.get("dependencies", [])}
    for g, reqs in {**project.get("optional-dependencies", {}), **pyproject.get("dependency-groups", {})}.items():
        groups.setdefault(g, []).extend(r for r in reqs if isinstance(r, str))  # {include-group = ...} tables skipped
    out: dict[str, dict[str, SpecifierSet]] = {}
    for g, reqs in groups.items():
        for text in reqs:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue  # reported by problems() through the missing dependency
            out.setdefault(g, {})[canonicalize_name(req.name)] = req.specifier
    return out


def _admits(spec: SpecifierSet, version: Version) -> bool:
    return spec.contains(version, prereleases=True)


def problems(old: dict, new: dict) -> list[str]:
    found: list[str] = []
    if "poetry" in new.get("tool", {}):
        found.append("pyproject.toml still has [tool.poetry] sections")
    backend = new.get("build-system", {}).get("build-backend", "")
    if backend.startswith("poetry"):
        found.append(f"pyproject.toml: build-system.build-backend is still {backend!r}")
    have = migrated(new)
    for group, deps in poetry_groups(old).items():
        for name, constraint in deps.items():
            rng = poetry_range(constraint)
            if name == "python":
                spec = SpecifierSet(new.get("project", {}).get("requires-python", ""))
                where = "project.requires-python"
            else:
                key = canonicalize_name(name)
                targets = ["main"] if group == "main" else [group, "dev"] if group == "dev-dependencies" else [group]
                spec = next((have[t][key] for t in targets if key in have.get(t, {})), None)
                where = f"{name} ({'project.dependencies' if group == 'main' else 'group ' + group})"
                if spec is None:
                    other = next((g for g, d in have.items() if key in d), None)
                    found.append(f"{where}: missing" + (f" (found in group {other!r} instead)" if other else ""))
                    continue
            if rng is None:
                continue
            low, high = rng
            if not _admits(spec, low):
                found.append(f"{where}: {str(spec) or 'no constraint'} excludes {low}, which poetry's {constraint!r} "
                             "admits")
            if high is not None and _admits(spec, high):
                found.append(f"{where}: {str(spec) or 'no constraint'} admits {high}, which poetry's {constraint!r} "
                             f"excludes (keep the upper bound: <{high})")
    return found


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "pyproject.toml"
    base = os.environ.get("BV_BASE_COMMIT", "HEAD")
    old_text = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True, text=True, check=True).stdout
    try:
        with open(path, "rb") as f:
            new = tomllib.load(f)
    except FileNotFoundError:
        print(f"{path}: missing")
        return 1
    except tomllib.TOMLDecodeError as e:
        print(f"{path}: not valid TOML: {e}")
        return 1
    found = problems(tomllib.loads(old_text), new)
    for line in found:
        print(line)
    if not found:
        n = sum(len(d) for d in poetry_groups(tomllib.loads(old_text)).values())
        print(f"all {n} poetry constraints survive with compatible constraints")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
